"""Body of ``unico plan``; the argparse wiring lives in ``unico.cli``, as for the other commands.

Reads the configuration (calendars, queues, operators) like ``unico check``, the input (a history
CSV, a forecast CSV, or the contacts database), runs :func:`wfm.make_plan`, writes the files and
prints a short report. Exit status: 0 done, 1 no plan possible (infeasible, configuration broken,
database unreadable), 2 bad input (each problem printed as ``file:line: message``).

Example::

    unico plan --history history.csv --weeks 1 --step 30 --out plan/
    unico plan --contacts --since 2026-01-05 --roster --rules roster.yaml --time-limit 20
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from contacts.db import safe_url, upgrade
from ivr.config import IvrConfig, load_config
from ivr.source import ConfigError, ConfigErrors, load_yaml
from wfm.errors import InfeasiblePlan, PlanInputError
from wfm.forecast import Forecast, forecast_from_table
from wfm.history import IntervalTable, QueuedCall, load_queued_calls, read_interval_csv, table_from_contacts
from wfm.output import summary, write_outputs
from wfm.plan import PlanRequest, PlanResult, PlanSetup, make_plan
from wfm.roster import RosterRules

#: how far back ``--contacts`` reads when ``--since`` is not given
DEFAULT_HISTORY_WEEKS = 8


def run_plan(
    args: argparse.Namespace, *, db_url: str | None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run ``unico plan`` with parsed ``args``; ``db_url`` is needed only for ``--contacts``."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        config = _config(Path(args.config))
        request = _request(args)
        source = _source(args, config, request, db_url)
        result = make_plan(source, PlanSetup.from_config(config), request)
        files = write_outputs(result, Path(args.out))
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=err)
        print(f"unico plan: the configuration has {len(exc.errors)} problem(s); run 'unico check'", file=err)
        return 1
    except PlanInputError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        return 2
    except InfeasiblePlan as exc:
        print(f"unico plan: no plan meets the requirement:\n{exc}", file=err)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = safe_url(db_url) if db_url else args.out
        print(f"unico plan: {where}: {first_line}", file=err)
        return 1
    out.write(report(result))
    print("wrote " + ", ".join(str(f) for f in files), file=out)
    return 0


def report(result: PlanResult) -> str:
    """The printed report: horizon, accuracy, per-queue totals, roster status, notes."""
    body = summary(result)
    lines = [
        f"plan {body['first_day']} + {body['days']} days, {body['interval_minutes']}-minute intervals, "
        f"{body['shift_minutes'] // 60}-hour shifts starting every {body['step_minutes']} minutes, from {result.source}"
    ]
    for row in body.get("accuracy", []):
        if row["queue"] == "*" or len(body["accuracy"]) == 1:
            lines.append(
                f"accuracy on the held-out week from {row['week_start']}: WAPE {_pct(row['wape'])} (seasonal naive "
                f"{_pct(row['naive_wape'])}), daily WAPE {_pct(row['daily_wape'])}, sMAPE {_pct(row['smape'])}, "
                f"MAPE {_pct(row['mape'])}, bias {_pct(row['bias'])}"
            )
    table = [("QUEUE", "AREA", "CALLS", "PEAK", "SHIFTS", "LP BOUND", "HOURS")]
    for q in body["queues"]:
        table.append(
            (
                q["queue"],
                q["area"],
                f"{q['offered']:.0f}",
                str(q["peak_positions"]),
                str(q["shifts"]),
                "-" if q["lp_bound"] is None else f"{q['lp_bound']:g}",
                f"{q['scheduled_hours']:g}",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table)
    lines.append(f"total shifts: {body['total_shifts']}")
    if "roster" in body:
        r = body["roster"]
        gap = "-" if r["mip_gap"] is None else f"{r['mip_gap']:.4%}"
        lines.append(
            f"roster: {r['status']}, gap {gap}, {r['assigned']} shifts assigned, {r['unfilled']} unfilled, "
            f"{r['seconds']:.2f}s of {r['time_limit']:g}s"
        )
    for text in body["exceptions"]:
        lines.append(f"exception: {text}")
    for text in body["notes"]:
        lines.append(f"note: {text}")
    return "".join(line + "\n" for line in lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _config(path: Path) -> IvrConfig:
    # the same folder rules as 'unico check'
    if path.is_file():
        path = path.parent
    if (path / "dialplan").is_dir():
        return load_config(path / "dialplan", path / "skills")
    return load_config(path, path.parent / "skills")


def _request(args: argparse.Namespace) -> PlanRequest:
    targets: dict[str, Any] = {
        "answer_within": args.answer_within,
        "asa": args.asa,
        "max_occupancy": args.max_occupancy,
        "shrinkage": args.shrinkage,
        "model": None if args.model is None else args.model.replace("-", "_"),
        "patience": args.patience,
        "max_abandon": args.max_abandon,
        "min_agents": args.min_agents,
        "service_level": args.service_level,
    }
    targets = {k: v for k, v in targets.items() if v is not None}
    if args.asa is not None and args.service_level is None:
        targets["service_level"] = None  # an ASA target alone
    shifts: dict[str, Any] = {"step_minutes": args.step, "max_staff": args.max_staff}
    if args.shift_hours is not None:
        shifts["length_minutes"] = round(args.shift_hours * 60)
    values: dict[str, Any] = {
        "interval_minutes": args.interval,
        "start": args.start,
        "weeks": args.weeks,
        "targets": targets,
        "shifts": {k: v for k, v in shifts.items() if v is not None},
        "closed_traffic": "ignore" if args.ignore_closed else "error",
    }
    if args.area is not None:
        values["default_area"] = args.area
    if args.roster or args.rules is not None:
        rules = _roster_rules(Path(args.rules)) if args.rules is not None else RosterRules()
        if args.time_limit is not None:
            rules = rules.model_copy(update={"time_limit": args.time_limit})
        values["roster"] = rules
    try:
        return PlanRequest.model_validate(values)
    except ValidationError as exc:
        raise PlanInputError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None


def _roster_rules(path: Path) -> RosterRules:
    try:
        document = load_yaml(path)
    except ConfigError as exc:
        raise PlanInputError([str(exc)]) from None
    try:
        return RosterRules.model_validate(document.data or {})
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = tuple(p for p in e["loc"] if isinstance(p, str | int))
            problems.append(f"{document.where(loc)}: {'.'.join(map(str, loc))}: {e['msg']}")
        raise PlanInputError(problems) from None


def _source(
    args: argparse.Namespace, config: IvrConfig, request: PlanRequest, db_url: str | None
) -> IntervalTable | Forecast:
    calendar = config.calendars.get(request.default_area)
    zone = calendar.zone if calendar is not None else ZoneInfo("Europe/Rome")
    if args.history is not None:
        return read_interval_csv(Path(args.history), interval_minutes=request.interval_minutes, zone=zone)
    if args.forecast is not None:
        table = read_interval_csv(Path(args.forecast), interval_minutes=request.interval_minutes, zone=zone)
        return forecast_from_table(table, default_aht=request.default_aht)
    if db_url is None:
        raise PlanInputError(["give --history CSV, --forecast CSV or --contacts (with a database)"])
    until: date = args.until or datetime.now(zone).date()
    since: date = args.since or until - timedelta(weeks=DEFAULT_HISTORY_WEEKS)
    if since >= until:
        raise PlanInputError([f"--since ({since}) must be before --until ({until})"])
    calls = asyncio.run(_read(db_url, datetime.combine(since, time(), zone), datetime.combine(until, time(), zone)))
    return table_from_contacts(
        calls,
        interval_minutes=request.interval_minutes,
        zone=zone,
        first_day=since,
        last_day=until - timedelta(days=1),
        wrapup={name: float(spec.wrapup) for name, spec in config.queues.items()},
    )


async def _read(url: str, since: datetime, until: datetime) -> list[QueuedCall]:
    await upgrade(url)
    return await load_queued_calls(url, since=since, until=until)


__all__ = ["report", "run_plan"]
