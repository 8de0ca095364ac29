"""Contact-centre KPIs and reports: per interval (15/30/60 minutes, day, month in local time) and
per queue, tier, operator or in total; CSV, PNG and the ``unico report`` command.

Public surface (definitions in ``docs/reports.md``)::

    from reports import KpiOptions, compute, load_report, write_csv, write_png

    options = KpiOptions.from_queues(config.queues, sl_definition="offered")
    report = await load_report(store.sessions, start=start, end=end, interval="60m", by="queue",
                               options=options)
    body = report.to_json()            # plain JSON-safe dicts, for the API
    write_csv(report, Path("kpi.csv"))
    write_png(report, Path("kpi.png"))

:func:`compute` is the pure part: the same report from rows already in memory.

The names load on first use (PEP 562): ``unico`` registers ``unico report`` on every run, and
importing the database layer and matplotlib up front would slow down every other command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reports.buckets import INTERVALS, Buckets, Interval, parse_interval
    from reports.cli import add_report_parser, run_report
    from reports.kpi import compute
    from reports.load import load_report
    from reports.model import (
        AVAILABLE_STATES,
        BUSY_STATES,
        DIMENSIONS,
        KPI_COLUMNS,
        RATIO_COLUMNS,
        SECONDS_COLUMNS,
        SL_DEFINITIONS,
        TOTAL_KEY,
        AgentSpan,
        ComplaintRow,
        ContactRow,
        Dimension,
        KpiOptions,
        QueueRules,
        Report,
        ReportRow,
        SlDefinition,
        SurveyRow,
        path_flags,
    )
    from reports.output import CSV_COLUMNS, csv_value, format_table, table_value, write_csv, write_png

_HOMES = {
    "reports.buckets": ("INTERVALS", "Buckets", "Interval", "parse_interval"),
    "reports.cli": ("add_report_parser", "run_report"),
    "reports.kpi": ("compute",),
    "reports.model": (
        "AVAILABLE_STATES",
        "BUSY_STATES",
        "DIMENSIONS",
        "KPI_COLUMNS",
        "RATIO_COLUMNS",
        "SECONDS_COLUMNS",
        "SL_DEFINITIONS",
        "TOTAL_KEY",
        "AgentSpan",
        "ComplaintRow",
        "ContactRow",
        "Dimension",
        "KpiOptions",
        "QueueRules",
        "Report",
        "ReportRow",
        "SlDefinition",
        "SurveyRow",
        "path_flags",
    ),
    "reports.load": ("load_report",),
    "reports.output": ("CSV_COLUMNS", "csv_value", "format_table", "table_value", "write_csv", "write_png"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'reports' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AVAILABLE_STATES",
    "BUSY_STATES",
    "CSV_COLUMNS",
    "DIMENSIONS",
    "INTERVALS",
    "KPI_COLUMNS",
    "RATIO_COLUMNS",
    "SECONDS_COLUMNS",
    "SL_DEFINITIONS",
    "TOTAL_KEY",
    "AgentSpan",
    "Buckets",
    "ComplaintRow",
    "ContactRow",
    "Dimension",
    "Interval",
    "KpiOptions",
    "QueueRules",
    "Report",
    "ReportRow",
    "SlDefinition",
    "SurveyRow",
    "add_report_parser",
    "compute",
    "csv_value",
    "format_table",
    "load_report",
    "parse_interval",
    "path_flags",
    "run_report",
    "table_value",
    "write_csv",
    "write_png",
]
