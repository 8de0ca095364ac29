"""``unico report``: KPIs of a period from the contacts database, as a table, JSON, CSV or PNG.

::

    unico report --from 2026-11-01 --to 2026-11-08 --interval 60m --by queue
    unico report --from 2026-11-01 --to 2026-12-01 --interval day --csv nov.csv --png nov.png
    unico report --from 2026-11-02T08:00 --to 2026-11-02T20:00 --interval 15m --json

``--from`` and ``--to`` are local dates or date-times in ``--timezone`` (default Europe/Rome);
``--to`` is excluded, so a week is ``--from`` Monday ``--to`` the next Monday. Exit codes: 0 done,
1 the configuration or database failed, 2 bad arguments. Thresholds per queue come from the
configuration (``--config``, default the current folder); without one the QueueSpec defaults
apply and a note says so.

This module only imports the standard library at the top, because ``unico`` builds its parser on
every run; the work is imported when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from acd.queues import QueueSpec
    from reports.kpi import KpiOptions, Report

INTERVAL_CHOICES = ("15m", "30m", "60m", "day", "month")
DIMENSION_CHOICES = ("total", "queue", "tier", "operator")
SL_CHOICES = ("answered", "offered", "app_queue_sl2")


def local_time(text: str) -> date | datetime:
    """``--from``/``--to``: ``2026-11-01`` or ``2026-11-01T08:30`` (an offset is allowed)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM, for example 2026-11-01"
        ) from None


def _positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = 0.0
    if not days > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of days")
    return days


def add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``unico report`` on the ``unico`` subcommands."""
    report = sub.add_parser("report", help="KPIs per interval and queue/tier/operator (docs/reports.md)")
    report.add_argument("--from", dest="start", type=local_time, required=True, metavar="DATE", help="first day")
    report.add_argument("--to", dest="end", type=local_time, required=True, metavar="DATE", help="end, excluded")
    report.add_argument("--interval", choices=INTERVAL_CHOICES, default="60m")
    report.add_argument("--by", choices=DIMENSION_CHOICES, default="total")
    report.add_argument("--sl", choices=SL_CHOICES, default="answered", help="service level definition")
    report.add_argument("--fcr-days", type=_positive_days, default=7.0, help="first-contact window (default 7)")
    report.add_argument("--timezone", default="Europe/Rome", help="zone of the intervals and dates")
    report.add_argument("--as-of", type=local_time, metavar="DATE", help="report as it stood then (default now)")
    report.add_argument("--csv", type=Path, metavar="FILE", help="also write the table as CSV")
    report.add_argument("--png", type=Path, metavar="FILE", help="also draw a chart")
    report.add_argument("--metric", default="service_level", help="the chart's line (default service_level)")
    report.add_argument("--json", action="store_true", help="print JSON instead of the table")
    report.add_argument("--db-url", help="contacts database (default: the controller's)")
    report.add_argument("--config", metavar="PATH", help="project, dialplan folder or YAML file (default .)")


def run_report(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``unico report`` with parsed ``args``; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        zone = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"unico report: unknown time zone {args.timezone!r}", file=err)
        return 2
    start, end = _instant(args.start, zone), _instant(args.end, zone)
    if end <= start:
        print(f"unico report: --to ({args.end}) must be after --from ({args.start})", file=err)
        return 2
    as_of = None if args.as_of is None else _instant(args.as_of, zone)
    from reports.kpi import KPI_COLUMNS

    if args.metric not in KPI_COLUMNS:
        print(f"unico report: unknown --metric {args.metric!r}; use one of {', '.join(KPI_COLUMNS)}", file=err)
        return 2
    options = _options(args, err)
    if options is None:
        return 1
    db_url = args.db_url or _settings_db_url(err)
    if db_url is None:
        return 2
    from sqlalchemy.exc import SQLAlchemyError

    from contacts.db import safe_url, sqlite_path

    path = sqlite_path(db_url)
    if path is not None and not path.exists():
        print(f"unico report: no database at {path}; run 'unico db upgrade' or pass --db-url", file=err)
        return 1
    try:
        report = asyncio.run(_load(db_url, start, end, args, options, as_of))
    except SQLAlchemyError as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"unico report: {safe_url(db_url)}: {first_line}", file=err)
        return 1
    return _write(report, args, out, err)


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(), tzinfo=zone)


def _options(args: argparse.Namespace, err: TextIO) -> KpiOptions | None:
    from ivr.source import ConfigErrors
    from reports.kpi import KpiOptions

    queues: dict[str, QueueSpec] = {}
    try:
        queues = _queues(Path(args.config or "."))
    except ConfigErrors as exc:
        if args.config is not None:
            for error in exc.errors:
                print(error, file=err)
            print(f"unico report: the configuration has {len(exc.errors)} problem(s); run 'unico check'", file=err)
            return None
        print("note: no configuration found here (see --config); every queue gets the default thresholds", file=err)
    return KpiOptions.from_queues(
        queues, sl_definition=args.sl, fcr_window=timedelta(days=args.fcr_days), timezone=args.timezone
    )


def _queues(path: Path) -> dict[str, QueueSpec]:
    from ivr.config import load_config

    # the same folder rules as 'unico check' and 'unico plan'
    if path.is_file():
        path = path.parent
    if (path / "dialplan").is_dir():
        return dict(load_config(path / "dialplan", path / "skills").queues)
    return dict(load_config(path, path.parent / "skills").queues)


def _settings_db_url(err: TextIO) -> str | None:
    from unico.settings import SettingsError, load_settings

    try:
        return load_settings().db_url
    except SettingsError as exc:
        print(exc, file=err)
        return None


async def _load(
    db_url: str,
    start: datetime,
    end: datetime,
    args: argparse.Namespace,
    options: KpiOptions,
    as_of: datetime | None,
) -> Report:
    from contacts.store import ContactStore
    from reports.load import load_report

    async with ContactStore(db_url) as store:
        return await load_report(
            store.sessions, start=start, end=end, interval=args.interval, by=args.by, options=options, as_of=as_of
        )


def _write(report: Report, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from reports.output import format_table, write_csv, write_png

    written: list[str] = []
    try:
        if args.csv is not None:
            write_csv(report, args.csv)
            written.append(str(args.csv))
        if args.png is not None:
            write_png(report, args.png, metric=args.metric)
            written.append(str(args.png))
    except OSError as exc:
        print(f"unico report: {exc}", file=err)
        return 1
    if args.json:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        out.write(format_table(report))
    if written:
        print("wrote " + ", ".join(written), file=err if args.json else out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m reports.cli ...``: the same command without the rest of ``unico``."""
    parser = argparse.ArgumentParser(prog="unico")
    add_report_parser(parser.add_subparsers(dest="command", required=True))
    return run_report(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
