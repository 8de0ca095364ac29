"""A report as a CSV file, a printed table or a PNG chart.

The CSV has one line per bucket and key: ``start,end,key`` (local ISO 8601 times with their UTC
offset, so the two 02:00 hours of the October DST night stay apart) and then every KPI of
:data:`reports.kpi.KPI_COLUMNS`; a missing ratio is an empty cell. The chart is drawn on
matplotlib's Agg canvas directly, with no pyplot global state, so a web handler can draw it on a
worker thread; matplotlib is imported only when a chart is drawn.

Example::

    write_csv(report, Path("kpi.csv"))
    print(format_table(report))
    write_png(report, Path("kpi.png"), metric="service_level")
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from reports.model import KPI_COLUMNS, RATIO_COLUMNS, SECONDS_COLUMNS, KpiValue, Report, ReportRow

CSV_COLUMNS: tuple[str, ...] = ("start", "end", "key", *KPI_COLUMNS)
#: the printed table: (heading, KPI)
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("CONTACTS", "contacts"),
    ("OFFERED", "offered"),
    ("ANSWERED", "answered"),
    ("ABANDONED", "abandoned"),
    ("SHORT", "short_abandoned"),
    ("SL", "service_level"),
    ("ASA", "asa"),
    ("AHT", "aht"),
    ("OCCUPANCY", "occupancy"),
    ("CONTAINMENT", "ivr_containment"),
    ("FCR", "fcr"),
    ("SCORE", "survey_score"),
)
#: lines drawn at most in a chart of many keys (the busiest ones)
MAX_LINES = 8
_TITLES = {"15m": "15-minute", "30m": "30-minute", "60m": "hourly", "day": "daily", "month": "monthly"}


def csv_value(value: KpiValue) -> str:
    """A KPI as a CSV cell: ``None`` -> ``""``, ``0.8333333`` -> ``"0.8333"``, ``12`` -> ``"12"``."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return str(value)


def write_csv(report: Report, file: TextIO | Path | str) -> None:
    """Write the report as CSV to an open text file or a path (created or replaced)."""
    if isinstance(file, Path | str):
        with Path(file).open("w", newline="", encoding="utf-8") as handle:
            _write_csv(report, handle)
    else:
        _write_csv(report, file)


def _write_csv(report: Report, handle: TextIO) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        writer.writerow(
            [row.start.isoformat(), row.end.isoformat(), row.key or "", *(csv_value(row.kpis[k]) for k in KPI_COLUMNS)]
        )


def table_value(name: str, value: KpiValue) -> str:
    """A KPI for people: shares as ``85.0%``, seconds as ``12.5s``, ``-`` when there is none."""
    if value is None:
        return "-"
    if name in RATIO_COLUMNS:
        return f"{value:.1%}"
    if name in SECONDS_COLUMNS:
        return f"{value:.1f}s"
    if name == "survey_score":
        return f"{value:.2f}"
    return str(value)


def format_table(report: Report) -> str:
    """The report as an aligned text table with a heading line; one line per bucket and key."""
    zone = report.rows[0].start.tzinfo if report.rows else None
    lines = [
        f"KPIs {report.start.astimezone(zone):%Y-%m-%d %H:%M} to {report.end.astimezone(zone):%Y-%m-%d %H:%M} "
        f"({report.timezone}), {_TITLES[report.interval]} by {report.by}; service level '{report.sl_definition}', "
        f"first-contact window {report.fcr_window.days} day(s)"
    ]
    time_format = "%Y-%m-%d" if report.interval in ("day", "month") else "%Y-%m-%d %H:%M%z"
    table = [("START", report.by.upper(), *(heading for heading, _ in TABLE_COLUMNS))]
    for row in report.rows:
        cells = (table_value(name, row.kpis[name]) for _, name in TABLE_COLUMNS)
        table.append((row.start.strftime(time_format), "-" if row.key is None else row.key, *cells))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        lines.append(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
    return "".join(line + "\n" for line in lines)


def write_png(report: Report, path: Path | str, *, metric: str = "service_level") -> Path:
    """Draw offered, answered and abandoned calls per bucket (bars, all keys together) and
    ``metric`` per key (lines, right axis); returns the path written.

    Example::

        write_png(report, "sl.png")               # service level per queue over the week
        write_png(report, "asa.png", metric="asa")
    """
    if metric not in KPI_COLUMNS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(KPI_COLUMNS)}")
    # lazy: matplotlib costs a second to import and only charts need it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    time_format = "%d %b" if report.interval in ("day", "month") else "%d %b %H:%M\n%z"
    index: dict[datetime, int] = {}  # bucket start in UTC: the two 02:00 of October stay apart
    labels: list[str] = []
    for row in report.rows:
        if index.setdefault(row.start.astimezone(UTC), len(labels)) == len(labels):
            labels.append(row.start.strftime(time_format))
    totals = {name: [0] * len(labels) for name in ("offered", "answered", "abandoned")}
    lines: dict[str | None, list[float | None]] = {}
    for row in report.rows:
        i = index[row.start.astimezone(UTC)]
        for name, values in totals.items():
            values[i] += int(row.kpis[name] or 0)
        value = row.kpis[metric]
        lines.setdefault(row.key, [None] * len(labels))[i] = None if value is None else float(value)

    figure = Figure(figsize=(max(8.0, min(24.0, 0.25 * len(labels) + 4)), 5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(labels)))
    width = 0.28
    colours = {"offered": "#9db4d0", "answered": "#3b7dd8", "abandoned": "#d8573b"}
    for shift, (name, values) in zip((-width, 0.0, width), totals.items(), strict=True):
        axes.bar([p + shift for p in positions], values, width=width, label=name, color=colours[name])
    axes.set_ylabel("calls")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    right = axes.twinx()
    for key in _busiest(report.rows, lines)[:MAX_LINES]:
        # NaN breaks the line: a bucket without calls has no value, and joining across it would lie
        points = [math.nan if v is None else v for v in lines[key]]
        right.plot(positions, points, marker="o", markersize=3, linewidth=1.5, label=f"{metric} ({key or 'none'})")
    if metric in RATIO_COLUMNS:
        right.set_ylim(0, 1.05)
        right.yaxis.set_major_formatter(PercentFormatter(1.0))
    right.set_ylabel(metric.replace("_", " ") + (" (s)" if metric in SECONDS_COLUMNS else ""))
    step = max(1, len(labels) // 16)
    axes.set_xticks(positions[::step], labels[::step], fontsize=7)
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.set_title(
        f"Calls and {metric.replace('_', ' ')}, {_TITLES[report.interval]} by {report.by} "
        f"({report.timezone}, service level '{report.sl_definition}')"
    )
    handles, names = axes.get_legend_handles_labels()
    more_handles, more_names = right.get_legend_handles_labels()
    axes.legend(
        handles + more_handles,
        names + more_names,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=min(4, len(names) + len(more_names)),
        fontsize=8,
        frameon=False,
    )
    target = Path(path)
    figure.savefig(target, format="png", dpi=100)
    return target


def _busiest(rows: Sequence[ReportRow], lines: dict[str | None, list[float | None]]) -> list[str | None]:
    offered: dict[str | None, int] = dict.fromkeys(lines, 0)
    for row in rows:
        offered[row.key] += int(row.kpis["offered"] or 0) + int(row.kpis["contacts"] or 0)
    return sorted(lines, key=lambda k: (-offered[k], k is None, k or ""))


__all__ = ["CSV_COLUMNS", "TABLE_COLUMNS", "csv_value", "format_table", "table_value", "write_csv", "write_png"]
