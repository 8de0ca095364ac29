"""``GET /api/reports/kpi``: the contact centre's KPIs over a period, as JSON, CSV or a PNG chart.

The numbers come from the ``reports`` package (``reports.load_report``, ``KpiOptions`` with the
queues' service-level rules, and ``reports.output`` for CSV and PNG), imported on a worker thread
at the first request; matplotlib loads only for a PNG. Without the package the route answers 503.
Definitions of every KPI: docs/reports.md.

``from`` and ``to`` are ISO 8601 dates or times in the controller's time zone (``to`` excluded),
at most :data:`MAX_DAYS` apart.

Example::

    curl -H "Authorization: Bearer $TOKEN" \\
         'http://127.0.0.1:8780/api/reports/kpi?from=2026-03-01&to=2026-04-01&interval=day&by=queue&format=csv'
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field

from unico.api.auth import SUPERVISORS, Principal
from unico.api.context import controller, sessions
from unico.api.errors import ApiError
from unico.api.history import to_utc, zone_of
from unico.api.routing import ApiModel, Route, query

log = logging.getLogger(__name__)

MAX_DAYS = 400
_MEDIA = {"csv": "text/csv", "png": "image/png"}


class KpiQuery(ApiModel):
    start: datetime = Field(alias="from", description="first day or time (ISO 8601)")
    end: datetime = Field(alias="to", description="end, excluded (ISO 8601)")
    interval: Literal["15m", "30m", "60m", "day", "month"] = "day"
    by: Literal["total", "queue", "tier", "operator"] = "total"
    sl: Literal["answered", "offered", "app_queue_sl2"] = Field(
        default="answered", description="service level definition (docs/reports.md)"
    )
    format: Literal["json", "csv", "png"] = "json"


def _load_reports() -> tuple[ModuleType, ModuleType, ModuleType]:
    """``reports.load``, ``reports.kpi`` and ``reports.output``, imported off the event loop."""
    load, kpis, output = (importlib.import_module(f"reports.{name}") for name in ("load", "kpi", "output"))
    return load, kpis, output


async def kpi(request: web.Request, principal: Principal) -> web.StreamResponse:
    given = query(request, KpiQuery)
    zone = zone_of(request)
    start, end = to_utc(given.start, zone), to_utc(given.end, zone)
    if end <= start:
        raise ApiError(400, "to must be after from")
    if end - start > timedelta(days=MAX_DAYS):
        raise ApiError(400, f"at most {MAX_DAYS} days from 'from' to 'to'")
    try:
        load, kpis, output = await asyncio.to_thread(_load_reports)
    except ImportError as exc:
        log.warning("KPI report asked for, but the reports package is not importable: %s", exc)
        raise ApiError(503, "reports not available") from None
    try:
        options = kpis.KpiOptions.from_queues(controller(request).config.queues, sl_definition=given.sl, timezone=zone)
        report = await load.load_report(
            sessions(request), start=start, end=end, interval=given.interval, by=given.by, options=options
        )
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    if given.format == "json":
        return web.json_response(report.to_json())
    writer = output.write_csv if given.format == "csv" else output.write_png
    content = await asyncio.to_thread(_render, writer, report, given.format)
    local = ZoneInfo(zone)
    name = f"kpi-{start.astimezone(local):%Y-%m-%d}-{end.astimezone(local):%Y-%m-%d}.{given.format}"
    return web.Response(
        body=content,
        content_type=_MEDIA[given.format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _render(writer: Callable[[Any, Path], Any], report: Any, suffix: str) -> bytes:
    """The writers write files (the CLI's way); the API sends the bytes."""
    with tempfile.TemporaryDirectory(prefix="unico-kpi-") as folder:
        path = Path(folder) / f"kpi.{suffix}"
        writer(report, path)
        return path.read_bytes()


ROUTES = [
    Route(
        "GET",
        "/api/reports/kpi",
        kpi,
        summary="KPIs over a period: service level, waits, abandons, handle times, occupancy",
        roles=SUPERVISORS,
        query=KpiQuery,
        response="the report as JSON, CSV (format=csv) or a PNG chart (format=png)",
        produces=("application/json", "text/csv", "image/png"),
        tag="reports",
        errors=(503,),
    ),
]
