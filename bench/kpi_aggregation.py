"""B11, KPI aggregation: N synthetic contact records -> 15-minute KPIs per queue (``reports.compute``).

Generates the records in memory (no database: this measures the aggregation, not the reads),
then times :func:`reports.compute` for 15-minute intervals by queue over the generated month and
prints records per second. The target in ``docs/reference`` B11 is 1M records in under 5 s.

    python -m bench.kpi_aggregation                     # 200k records
    python -m bench.kpi_aggregation --records 1000000

The traffic: 20 queues, calls spread over 30 days of 08:00-20:00 in Rome, 80 % of contacts
reach a queue, 85 % of those are answered after 0-120 s, the rest hang up after 0-180 s; 40 % of
callers are known customers and some call again within the FCR window; one operator state
span per answered call. Results go to ``bench/results/kpi_aggregation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.report import machine
from reports import AgentSpan, ContactRow, KpiOptions, QueueRules, compute

RESULTS = Path(__file__).resolve().parent / "results"
ROME = ZoneInfo("Europe/Rome")
START = datetime(2026, 11, 2, tzinfo=ROME)
DAYS = 30
QUEUES = 20


def synthetic(records: int, seed: int) -> tuple[list[ContactRow], list[AgentSpan]]:
    """``records`` contacts and the operators' on-call and ready spans, reproducible by ``seed``."""
    rng = random.Random(seed)
    contacts: list[ContactRow] = []
    spans: list[AgentSpan] = []
    base = START.astimezone(UTC)
    for i in range(records):
        day, second = rng.randrange(DAYS), rng.randrange(8 * 3600, 20 * 3600)
        started = base + timedelta(days=day, seconds=second)
        queue = f"q{rng.randrange(QUEUES):02d}"
        customer = f"cust{rng.randrange(records // 3)}" if rng.random() < 0.4 else None
        caller = f"+39{rng.randrange(10**9):09d}"
        if rng.random() >= 0.8:
            outcome = "contained" if rng.random() < 0.6 else "abandoned_ivr"
            contacts.append(
                ContactRow(
                    id=f"c{i}",
                    started_at=started,
                    ended_at=started + timedelta(seconds=90),
                    outcome=outcome,
                    customer_id=customer,
                    caller=caller,
                )
            )
            continue
        queued = started + timedelta(seconds=rng.randrange(20, 90))
        if rng.random() < 0.85:
            wait = rng.uniform(0, 120)
            answered = queued + timedelta(seconds=wait)
            talk_end = answered + timedelta(seconds=rng.uniform(60, 600))
            operator = f"op{rng.randrange(200)}"
            contacts.append(
                ContactRow(
                    id=f"c{i}",
                    started_at=started,
                    queued_at=queued,
                    answered_at=answered,
                    talk_ended_at=talk_end,
                    wrapup_ended_at=talk_end + timedelta(seconds=rng.uniform(0, 30)),
                    ended_at=talk_end + timedelta(seconds=20),
                    queue=queue,
                    tier="general",
                    operator=operator,
                    outcome="answered",
                    customer_id=customer,
                    caller=caller,
                    estimated_wait=rng.randrange(0, 180) if rng.random() < 0.7 else None,
                    transferred=rng.random() < 0.05,
                    escalated=rng.random() < 0.1,
                )
            )
            spans.append(
                AgentSpan(agent=operator, state="ready", started_at=answered - timedelta(seconds=60), ended_at=answered)
            )
            spans.append(AgentSpan(agent=operator, state="on_call", started_at=answered, ended_at=talk_end))
        else:
            contacts.append(
                ContactRow(
                    id=f"c{i}",
                    started_at=started,
                    queued_at=queued,
                    ended_at=queued + timedelta(seconds=rng.uniform(0, 180)),
                    queue=queue,
                    tier="general",
                    outcome="abandoned_queue",
                    customer_id=customer,
                    caller=caller,
                )
            )
    return contacts, spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=RESULTS / "kpi_aggregation.json")
    args = parser.parse_args(argv)
    options = KpiOptions(queues={f"q{i:02d}": QueueRules() for i in range(QUEUES)})

    began = time.perf_counter()
    contacts, spans = synthetic(args.records, args.seed)
    generated = time.perf_counter() - began
    print(f"generated {len(contacts):,} contacts and {len(spans):,} operator spans in {generated:.2f} s", flush=True)

    end = START + timedelta(days=DAYS)
    runs: dict[str, float] = {}
    cpu: dict[str, float] = {}
    rows = 0
    for label, with_spans in (("contacts", False), ("contacts+occupancy", True)):
        began, began_cpu = time.perf_counter(), time.process_time()
        report = compute(
            contacts,
            start=START,
            end=end,
            interval="15m",
            by="queue" if not with_spans else "total",
            as_of=end + timedelta(days=30),
            options=options,
            spans=spans if with_spans else (),
        )
        runs[label] = time.perf_counter() - began
        cpu[label] = time.process_time() - began_cpu
        rows = max(rows, len(report.rows))
        rate = len(contacts) / runs[label]
        print(
            f"  compute 15m by {report.by:<6} {label:<20} {runs[label]:7.2f} s (CPU {cpu[label]:.2f} s)"
            f"  {rate:12,.0f} records/s  {len(report.rows):,} rows",
            flush=True,
        )

    result = {
        "machine": machine("not used"),
        "settings": {"records": args.records, "seed": args.seed, "queues": QUEUES, "days": DAYS, "interval": "15m"},
        "generated_s": generated,
        "compute_s": runs,
        "compute_cpu_s": cpu,
        "load_average": os.getloadavg(),
        "records_per_s": {label: len(contacts) / seconds for label, seconds in runs.items()},
        "spans": len(spans),
        "report_rows": rows,
        "target": "1M records < 5 s (B11)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
