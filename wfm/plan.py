"""One planning run: history or forecast in; forecast, staffing, shift plan and roster out.

Theory of operation. :func:`make_plan` is pure computation on values: the CLI, the admin API and
the benchmark read their input (CSV, JSON, contacts database, YAML config) elsewhere and hand it
over as an :class:`~wfm.history.IntervalTable` (history) or :class:`~wfm.forecast.Forecast`, with
the calendars, queues and operators in a :class:`PlanSetup`. Each queue plans in its area, the
calendar its ``queues.yaml`` entry names; a queue the config does not know (a CSV from another
system) uses ``default_area``.

Order: held-out accuracy (history only), forecast, staffing, traffic in closed intervals refused
or dropped (``closed_traffic``), shift plan, and the named roster when rules are given.

Example::

    setup = PlanSetup.from_config(load_config(Path("dialplan"), Path("skills")))
    result = make_plan(history, setup, PlanRequest(interval_minutes=30, weeks=1))
    result.shifts.queues["general"].total
"""

from __future__ import annotations

import dataclasses
import time as clock
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from acd.queues import QueueSpec
from acd.roster import OperatorSpec
from ivr.config import IvrConfig
from ivr.hours import Calendar
from wfm.errors import PlanInputError
from wfm.forecast import Accuracy, Forecast, ForecastModel, holdout_accuracy, seasonal_forecast
from wfm.history import IntervalTable
from wfm.opening import Area
from wfm.roster import RosterResult, RosterRules, make_roster
from wfm.shifts import ShiftPlan, ShiftRules, plan_shifts
from wfm.staffing import StaffingTable, StaffingTargets, staff


class PlanRequest(BaseModel):
    """Everything a planning run is asked to do; every field has a working default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    interval_minutes: Literal[15, 30, 60] = 30
    #: first planned day; default the first Monday after the history (ignored for a given forecast)
    start: date | None = None
    weeks: Annotated[int, Field(ge=1, le=8)] = 1
    targets: StaffingTargets = StaffingTargets()
    queue_targets: dict[str, StaffingTargets] = {}
    shifts: ShiftRules = ShiftRules()
    forecasting: ForecastModel = ForecastModel()
    #: seconds, where neither the data nor the queue's past give a handle time
    default_aht: Annotated[float, Field(gt=0, le=7200)] = 180.0
    #: calendar for queues the configuration does not know
    default_area: str = "customers"
    #: traffic forecast while an area is closed: refuse the plan ("error") or leave it out
    closed_traffic: Literal["error", "ignore"] = "error"
    #: rules for named rostering; None: shift plan only
    roster: RosterRules | None = None

    @model_validator(mode="after")
    def _grid(self) -> Self:
        if self.shifts.length_minutes % self.interval_minutes:
            raise ValueError(f"shift length must be a multiple of the {self.interval_minutes}-minute interval")
        if self.shifts.step_minutes % self.interval_minutes:
            raise ValueError(
                f"shift step ({self.shifts.step_minutes} min) must be a multiple of the "
                f"{self.interval_minutes}-minute interval"
            )
        return self


@dataclass(frozen=True)
class PlanSetup:
    """The configuration a plan needs: calendars by name, queues and operators."""

    calendars: Mapping[str, Calendar]
    queues: Mapping[str, QueueSpec] = field(default_factory=dict)
    operators: Mapping[str, OperatorSpec] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: IvrConfig) -> PlanSetup:
        return cls(calendars=config.calendars, queues=config.queues, operators=config.operators)


@dataclass(frozen=True, eq=False)
class PlanResult:
    request: PlanRequest
    source: Literal["history", "forecast"]
    history: IntervalTable | None
    accuracy: list[Accuracy] | None
    forecast: Forecast
    staffing: StaffingTable
    shifts: ShiftPlan
    roster: RosterResult | None
    notes: tuple[str, ...]
    timings: Mapping[str, float]


class _Areas:
    def __init__(self, setup: PlanSetup, default_area: str) -> None:
        self._setup = setup
        self._default = default_area
        self._areas: dict[str, Area] = {}
        self.defaulted: set[str] = set()

    def check(self, queues: list[str]) -> None:
        problems = []
        for queue in queues:
            name = self.name_of(queue)
            if name not in self._setup.calendars:
                known = ", ".join(sorted(self._setup.calendars)) or "none"
                problems.append(f"queue {queue!r}: calendar {name!r} is not defined (calendars: {known})")
        if problems:
            raise PlanInputError(problems)

    def name_of(self, queue: str) -> str:
        spec = self._setup.queues.get(queue)
        if spec is None:
            self.defaulted.add(queue)
            return self._default
        return spec.calendar

    def __call__(self, queue: str) -> Area:
        name = self.name_of(queue)
        if name not in self._areas:
            self._areas[name] = Area(name, self._setup.calendars[name])
        return self._areas[name]


def make_plan(source: IntervalTable | Forecast, setup: PlanSetup, request: PlanRequest) -> PlanResult:
    """Run the whole plan (see the module doc). Raises ``PlanInputError`` or ``InfeasiblePlan``."""
    areas = _Areas(setup, request.default_area)
    queues = sorted(source.offered)
    if not queues:
        raise PlanInputError(["the input has no queue with traffic"])
    areas.check(queues)
    if source.interval_minutes != request.interval_minutes:
        raise PlanInputError(
            [f"the input is on {source.interval_minutes}-minute intervals, the plan on {request.interval_minutes}"]
        )
    timings: dict[str, float] = {}
    notes: list[str] = []
    began = clock.perf_counter()
    accuracy: list[Accuracy] | None = None
    history: IntervalTable | None = None
    if isinstance(source, IntervalTable):
        history = source
        accuracy = holdout_accuracy(source, area_of=areas, model=request.forecasting)
        if accuracy is None:
            notes.append(
                f"history of {source.days} day(s): at least 14 are needed to measure accuracy on a held-out week"
            )
        start = request.start or _next_monday(source.last_day + timedelta(days=1))
        forecast = seasonal_forecast(
            source,
            start=start,
            days=request.weeks * 7,
            area_of=areas,
            model=request.forecasting,
            default_aht=request.default_aht,
        )
    else:
        forecast = source
        if request.start is not None and request.start != source.first_day:
            notes.append(f"a forecast was given: planning its own days from {source.first_day}, not {request.start}")
    notes.extend(forecast.notes)
    timings["forecast_s"] = clock.perf_counter() - began

    began = clock.perf_counter()
    staffing = staff(forecast, area_of=areas, targets=request.targets, queue_targets=request.queue_targets)
    if request.closed_traffic == "ignore":
        staffing, dropped = _drop_closed(staffing)
        notes.extend(dropped)
    timings["staffing_s"] = clock.perf_counter() - began

    began = clock.perf_counter()
    shifts = plan_shifts(staffing, area_of=areas, rules=request.shifts)
    timings["shifts_s"] = clock.perf_counter() - began

    roster: RosterResult | None = None
    if request.roster is not None:
        began = clock.perf_counter()
        roster = make_roster(shifts, operators=setup.operators, queues=setup.queues, rules=request.roster)
        timings["roster_s"] = clock.perf_counter() - began
        if roster.unfilled:
            missing = sum(u.missing for u in roster.unfilled)
            notes.append(
                f"{missing} of {roster.planned} planned shifts have nobody who can work them "
                "(skills, days off or weekly limits): see the unfilled list"
            )
    for queue in sorted(areas.defaulted):
        notes.append(f"queue {queue!r} is not in skills/queues.yaml: planned with area {request.default_area!r}")
    return PlanResult(
        request=request,
        source="history" if history is not None else "forecast",
        history=history,
        accuracy=accuracy,
        forecast=forecast,
        staffing=staffing,
        shifts=shifts,
        roster=roster,
        notes=tuple(dict.fromkeys(notes)),
        timings=timings,
    )


def _next_monday(day: date) -> date:
    # plans run Monday to Sunday; a CSV without rows for its closed Sunday still plans a whole week
    return day + timedelta(days=-day.weekday() % 7)


def _drop_closed(staffing: StaffingTable) -> tuple[StaffingTable, list[str]]:
    notes = []
    queues = {}
    for name, table in staffing.queues.items():
        closed = ~table.open & (table.offered > 0)
        if closed.any():
            notes.append(f"{name}: {table.offered[closed].sum():.1f} forecast call(s) in closed intervals left out")
        queues[name] = dataclasses.replace(
            table,
            agents=np.where(table.open, table.agents, 0),
            positions=np.where(table.open, table.positions, 0),
        )
    return dataclasses.replace(staffing, queues=queues), notes


__all__ = ["PlanRequest", "PlanResult", "PlanSetup", "make_plan"]
