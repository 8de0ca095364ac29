"""What a plan gives back: CSV tables, a JSON summary and a PNG of requirement versus coverage.

The forecast CSV has the same columns as the history CSV (``timestamp,queue,offered,aht``), so a
reviewed forecast can be fed back with ``unico plan --forecast``. Times are local (the area's
zone) and written with their UTC offset. The chart is drawn on matplotlib's Agg canvas directly,
with no pyplot global state, so the admin API can draw it on a worker thread.

Example::

    files = write_outputs(result, Path("plan"))    # staffing.csv, shifts.csv, ..., coverage.png
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from wfm.opening import slot_time
from wfm.plan import PlanResult

STAFFING_COLUMNS = (
    "queue",
    "area",
    "date",
    "start",
    "end",
    "open",
    "offered",
    "aht",
    "erlangs",
    "agents",
    "positions",
    "scheduled",
    "service_level",
    "asa",
    "occupancy",
    "p_wait",
    "p_abandon",
)
SHIFT_COLUMNS = ("queue", "area", "date", "start", "end", "operators")
ROSTER_COLUMNS = ("date", "start", "end", "operator", "name", "queue")
UNFILLED_COLUMNS = ("date", "start", "end", "queue", "missing")
FORECAST_COLUMNS = ("timestamp", "queue", "offered", "aht")
#: panels drawn at most (one per area, then the busiest queues)
MAX_PANELS = 6


def _clock(slot: int, interval: int) -> str:
    return f"{slot_time(slot, interval):%H:%M}" if slot * interval < 1440 else "24:00"


def _num(value: float, digits: int = 3) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None


def staffing_rows(result: PlanResult) -> Iterator[dict[str, Any]]:
    """One row per queue and interval that is open or has forecast traffic."""
    plan = result.staffing
    interval = plan.interval_minutes
    for name, table in plan.queues.items():
        scheduled = result.shifts.queues[name].coverage
        for day, slot in np.argwhere(table.open | (table.offered > 0)):
            when = plan.first_day + timedelta(days=int(day))
            yield {
                "queue": name,
                "area": table.area,
                "date": when.isoformat(),
                "start": _clock(int(slot), interval),
                "end": _clock(int(slot) + 1, interval),
                "open": bool(table.open[day, slot]),
                "offered": _num(table.offered[day, slot], 2),
                "aht": _num(table.aht[day, slot], 1),
                "erlangs": _num(table.load[day, slot]),
                "agents": int(table.agents[day, slot]),
                "positions": int(table.positions[day, slot]),
                "scheduled": int(scheduled[day, slot]),
                "service_level": _num(table.service_level[day, slot]),
                "asa": _num(table.asa[day, slot], 1),
                "occupancy": _num(table.occupancy[day, slot]),
                "p_wait": _num(table.p_wait[day, slot]),
                "p_abandon": _num(table.p_abandon[day, slot]),
            }


def shift_rows(result: PlanResult) -> Iterator[dict[str, Any]]:
    """One row per queue, day and start time with the number of shifts starting then."""
    plan = result.shifts
    length = timedelta(minutes=plan.length_minutes)
    for name, shifts in plan.queues.items():
        for day, slot in np.argwhere(shifts.starts > 0):
            when = plan.first_day + timedelta(days=int(day))
            begins = datetime.combine(when, slot_time(int(slot), plan.interval_minutes))
            yield {
                "queue": name,
                "area": shifts.area,
                "date": when.isoformat(),
                "start": f"{begins:%H:%M}",
                "end": f"{begins + length:%H:%M}",
                "operators": int(shifts.starts[day, slot]),
            }


def roster_rows(result: PlanResult) -> Iterator[dict[str, Any]]:
    if result.roster is None:
        return
    for a in result.roster.assignments:
        yield {
            "date": a.day.isoformat(),
            "start": f"{a.start:%H:%M}",
            "end": f"{a.end:%H:%M}",
            "operator": a.operator,
            "name": a.name,
            "queue": a.queue,
        }


def unfilled_rows(result: PlanResult) -> Iterator[dict[str, Any]]:
    if result.roster is None:
        return
    for u in result.roster.unfilled:
        yield {
            "date": u.day.isoformat(),
            "start": f"{u.start:%H:%M}",
            "end": f"{u.end:%H:%M}",
            "queue": u.queue,
            "missing": u.missing,
        }


def forecast_rows(result: PlanResult) -> Iterator[dict[str, Any]]:
    """The forecast in the input CSV's shape; intervals without traffic are left out."""
    forecast = result.forecast
    for name in sorted(forecast.offered):
        offered = forecast.offered[name]
        for day, slot in np.argwhere(offered > 0):
            when = forecast.first_day + timedelta(days=int(day))
            moment = datetime.combine(when, slot_time(int(slot), forecast.interval_minutes), tzinfo=forecast.zone)
            yield {
                "timestamp": moment.isoformat(),
                "queue": name,
                "offered": round(float(offered[day, slot]), 3),
                "aht": round(float(forecast.aht[name][day, slot]), 1),
            }


def to_csv(rows: Iterator[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summary(result: PlanResult) -> dict[str, Any]:
    """JSON-safe overview: horizon, per-queue totals, accuracy, roster status and gap, notes."""
    interval_h = result.staffing.interval_minutes / 60
    shift_h = result.shifts.length_minutes / 60
    queues = []
    for name, shifts in result.shifts.queues.items():
        table = result.staffing.queues[name]
        queues.append(
            {
                "queue": name,
                "area": shifts.area,
                "offered": round(float(table.offered.sum()), 1),
                "required_position_hours": round(float(shifts.required.sum()) * interval_h, 2),
                "shifts": shifts.total,
                "lp_bound": _num(shifts.lp_bound, 6),
                "optimal": shifts.optimal,
                "scheduled_hours": round(shifts.total * shift_h, 2),
                "peak_positions": int(shifts.required.max(initial=0)),
            }
        )
    body: dict[str, Any] = {
        "source": result.source,
        "interval_minutes": result.staffing.interval_minutes,
        "first_day": result.staffing.first_day.isoformat(),
        "days": result.staffing.days,
        "shift_minutes": result.shifts.length_minutes,
        "step_minutes": result.request.shifts.step_minutes,
        "targets": result.request.targets.model_dump(),
        "queues": queues,
        "total_shifts": sum(q["shifts"] for q in queues),
        "exceptions": list(result.forecast.exceptions),
        "notes": list(result.notes),
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
    }
    if result.history is not None:
        body["history"] = {"first_day": result.history.first_day.isoformat(), "days": result.history.days}
    if result.accuracy is not None:
        body["accuracy"] = [
            {
                "queue": a.queue,
                "week_start": a.week_start.isoformat(),
                "actual_calls": round(a.actual_calls, 1),
                "forecast_calls": round(a.forecast_calls, 1),
                **{k: _num(getattr(a, k), 4) for k in ("wape", "mape", "smape", "bias", "daily_wape", "naive_wape")},
            }
            for a in result.accuracy
        ]
    if result.roster is not None:
        r = result.roster
        body["roster"] = {
            "status": r.status,
            "optimal": r.optimal,
            "mip_gap": None if r.mip_gap is None else _num(r.mip_gap, 6),
            "objective": None if r.objective is None else _num(r.objective, 3),
            "dual_bound": None if r.dual_bound is None else _num(r.dual_bound, 3),
            "seconds": round(r.seconds, 3),
            "variables": r.variables,
            "assigned": len(r.assignments),
            "unfilled": sum(u.missing for u in r.unfilled),
            "time_limit": result.request.roster.time_limit if result.request.roster else None,
        }
    return body


def chart_png(result: PlanResult) -> bytes:
    """Requirement (positions) versus scheduled coverage per interval: one panel per area (its
    queues summed), then the busiest queues, at most :data:`MAX_PANELS`."""
    plan = result.staffing
    panels: list[tuple[str, Any, Any, Any]] = []
    by_area: dict[str, list[str]] = {}
    for name, table in plan.queues.items():
        by_area.setdefault(table.area, []).append(name)
    for area, names in sorted(by_area.items()):
        required = sum(result.shifts.queues[n].required for n in names)
        scheduled = sum(result.shifts.queues[n].coverage for n in names)
        named = sum(result.roster.coverage[n] for n in names) if result.roster is not None else None
        panels.append((f"area {area} ({len(names)} queues)", required, scheduled, named))
    busiest = sorted(plan.queues, key=lambda n: -int(result.shifts.queues[n].required.sum()))
    for name in busiest[: max(0, MAX_PANELS - len(panels))] if len(plan.queues) > 1 else []:
        q = result.shifts.queues[name]
        named = result.roster.coverage[name] if result.roster is not None else None
        panels.append((f"queue {name}", q.required, q.coverage, named))
    slots = plan.days * (1440 // plan.interval_minutes)
    times = [
        datetime.combine(plan.first_day, datetime.min.time()) + timedelta(minutes=i * plan.interval_minutes)
        for i in range(slots + 1)
    ]
    width = min(24.0, 6.0 + 1.2 * plan.days)
    figure = Figure(figsize=(width, 2.6 * len(panels)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (title, required, scheduled, named) in zip(axes, panels, strict=True):
        ax.stairs(np.asarray(required).ravel(), times, label="required positions", color="tab:red", linewidth=1.4)
        ax.stairs(np.asarray(scheduled).ravel(), times, label="scheduled (shift plan)", color="tab:blue", linewidth=1.0)
        if named is not None:
            ax.stairs(np.asarray(named).ravel(), times, label="rostered (named)", color="tab:green", linestyle="--")
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel("operators")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel(f"local time ({result.forecast.zone.key}), {plan.interval_minutes}-minute intervals")
    figure.suptitle(
        f"Requirement vs coverage, {plan.first_day} + {plan.days} days, "
        f"{result.shifts.length_minutes / 60:g}-hour shifts"
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_outputs(result: PlanResult, folder: Path) -> list[Path]:
    """Write every table, the summary and the chart into ``folder`` (created); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "staffing.csv": to_csv(staffing_rows(result), STAFFING_COLUMNS),
        "shifts.csv": to_csv(shift_rows(result), SHIFT_COLUMNS),
        "forecast.csv": to_csv(forecast_rows(result), FORECAST_COLUMNS),
        "summary.json": json.dumps(summary(result), indent=2, ensure_ascii=False) + "\n",
    }
    if result.roster is not None:
        files["roster.csv"] = to_csv(roster_rows(result), ROSTER_COLUMNS)
        files["unfilled.csv"] = to_csv(unfilled_rows(result), UNFILLED_COLUMNS)
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    chart = folder / "coverage.png"
    chart.write_bytes(chart_png(result))
    written.append(chart)
    return written


__all__ = [
    "chart_png",
    "forecast_rows",
    "roster_rows",
    "shift_rows",
    "staffing_rows",
    "summary",
    "to_csv",
    "unfilled_rows",
    "write_outputs",
]
