"""Summaries, the printed table, the machine description and the result files of a benchmark.

Percentiles interpolate linearly between the two nearest ranks (numpy's default), so p99 of 30
samples lies between the two largest: read it as "about the worst" rather than a precise tail.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PERCENTILES = (50, 95, 99)


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One measured assignment: ``t0`` when the operator was made ready (or, operator idle, when the
    caller sent its INVITE), ``t1`` the INVITE's arrival at the operator's softphone."""

    system: str
    iteration: int
    waited_s: float  # how long the caller had been waiting in the queue (operator idle: the operator) at t0
    t0: float
    t1: float

    @property
    def latency_ms(self) -> float:
        return (self.t1 - self.t0) * 1000


@dataclass(frozen=True, kw_only=True)
class Summary:
    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; ``percentile([1, 2, 3], 50) == 2``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        n=len(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        mean=sum(values) / len(values) if values else math.nan,
        min=min(values, default=math.nan),
        max=max(values, default=math.nan),
    )


def machine(asterisk_version: str) -> dict[str, Any]:
    """CPU model and count, OS, Python and Asterisk versions: what the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "asterisk": asterisk_version,
    }


def table(summaries: dict[str, Summary], baseline: str, subject: str) -> str:
    """A Markdown table: one row per statistic, the subject/baseline ratio in the last column."""
    rows = [
        f"| ms | {subject} | {baseline} | {subject} / {baseline} |",
        "|---|---:|---:|---:|",
    ]
    for name in ("p50", "p95", "p99", "mean", "max"):
        ours, theirs = getattr(summaries[subject], name), getattr(summaries[baseline], name)
        ratio = ours / theirs if theirs else math.nan
        rows.append(f"| {name} | {ours:.1f} | {theirs:.1f} | {ratio:.3f} |")
    rows.append(f"| samples | {summaries[subject].n} | {summaries[baseline].n} | |")
    return "\n".join(rows)


def write_results(
    folder: Path,
    name: str,
    *,
    samples: Sequence[Sample],
    summaries: dict[str, Summary],
    meta: dict[str, Any],
) -> list[Path]:
    """Write ``<name>.json`` (machine, settings, summaries, samples) and ``<name>.csv`` (samples)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{**asdict(s), "latency_ms": round(s.latency_ms, 3)} for s in samples]
    json_path = folder / f"{name}.json"
    body = {**meta, "summary_ms": {k: asdict(v) for k, v in summaries.items()}, "samples": rows}
    json_path.write_text(json.dumps(body, indent=2) + "\n")
    csv_path = folder / f"{name}.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["system", "iteration", "latency_ms", "waited_s", "t0", "t1"])
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row[key] for key in writer.fieldnames})
    return [json_path, csv_path]


def write_chart(
    path: Path,
    samples: Sequence[Sample],
    systems: Sequence[str],
    title: str,
    *,
    xlabel: str = "ready -> INVITE at the softphone (ms, log scale)",
) -> Path | None:
    """Empirical CDFs of the latencies (log scale) and the samples per system; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, (cdf, strip) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for index, system in enumerate(systems):
        values = sorted(s.latency_ms for s in samples if s.system == system)
        if not values:
            continue
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        cdf.step(values, fractions, where="post", label=f"{system} (p50 {percentile(values, 50):.0f} ms)")
        offsets = [index + 0.25 * math.sin(i * 2.399) for i in range(len(values))]  # deterministic jitter
        strip.scatter(offsets, values, s=12, alpha=0.7)
    cdf.set_xscale("log")
    cdf.set_xlabel(xlabel)
    cdf.set_ylabel("fraction of assignments")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(loc="center")
    strip.set_yscale("log")
    strip.set_xticks(range(len(systems)), list(systems))
    strip.set_ylabel("ms (log scale)")
    strip.grid(True, axis="y", which="both", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
