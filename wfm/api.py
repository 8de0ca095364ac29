"""Body of ``POST /api/plan``: JSON in, JSON out; the aiohttp route lives in ``unico.web``.

The request is a :class:`~wfm.plan.PlanRequest` (every field optional) plus exactly one of
``history`` or ``forecast``, each a list of ``{timestamp, queue, offered, aht}`` rows (intervals
without calls may be left out), and ``chart: true`` for the PNG. The answer carries the summary
(accuracy, per-queue totals, roster status and gap), the staffing table, the shift plan as rows
and as CSV, the roster when asked, and the chart as base64 PNG when asked.

Pure and synchronous: the web handler runs it on a worker thread, so a long rostering never
stalls the controller's event loop.

Example::

    body = {"forecast": [{"timestamp": "2026-03-02T09:00:00+01:00", "queue": "general", "offered": 40, "aht": 200}]}
    answer = plan_json(body, PlanSetup.from_config(config))
    answer["shifts_csv"]
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Self
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, ValidationError, model_validator

from wfm.errors import PlanInputError
from wfm.forecast import forecast_from_table
from wfm.history import IntervalRow, table_from_rows
from wfm.output import SHIFT_COLUMNS, chart_png, roster_rows, shift_rows, staffing_rows, summary, to_csv, unfilled_rows
from wfm.plan import PlanRequest, PlanSetup, make_plan


class PlanBody(PlanRequest):
    """``POST /api/plan``'s JSON body."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    history: list[IntervalRow] | None = None
    forecast: list[IntervalRow] | None = None
    chart: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.history is None) == (self.forecast is None):
            raise ValueError("give exactly one of 'history' or 'forecast' (lists of {timestamp, queue, offered, aht})")
        return self


def plan_json(body: Mapping[str, Any], setup: PlanSetup) -> dict[str, Any]:
    """Validate ``body``, plan, and return the JSON answer. Raises ``PlanInputError`` (bad body,
    every problem as ``history[3].offered: ...``) or ``InfeasiblePlan``."""
    try:
        parsed = PlanBody.model_validate(body)
    except ValidationError as exc:
        raise PlanInputError([f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    request = PlanRequest.model_validate(
        parsed.model_dump(exclude={"history", "forecast", "chart"}, exclude_unset=True)
    )
    calendar = setup.calendars.get(request.default_area)
    zone = calendar.zone if calendar is not None else ZoneInfo("Europe/Rome")
    name, rows = ("history", parsed.history) if parsed.history is not None else ("forecast", parsed.forecast or [])
    table = table_from_rows(
        ((f"{name}[{i}]", row) for i, row in enumerate(rows)), interval_minutes=request.interval_minutes, zone=zone
    )
    source = table if name == "history" else forecast_from_table(table, default_aht=request.default_aht)
    result = make_plan(source, setup, request)
    shifts = list(shift_rows(result))
    answer: dict[str, Any] = {
        "summary": summary(result),
        "staffing": list(staffing_rows(result)),
        "shifts": shifts,
        "shifts_csv": to_csv(iter(shifts), SHIFT_COLUMNS),
    }
    if result.roster is not None:
        answer["roster"] = list(roster_rows(result))
        answer["unfilled"] = list(unfilled_rows(result))
    if parsed.chart:
        answer["chart_png"] = base64.b64encode(chart_png(result)).decode("ascii")
    return answer


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


__all__ = ["PlanBody", "plan_json"]
