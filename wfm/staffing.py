"""Agents and scheduled positions per queue and interval, from a forecast and service targets.

Theory of operation. For every interval with traffic, ``load = offered * aht / interval`` erlangs
go through Erlang C (default) or Erlang A (``model: erlang_a``, with the callers' mean patience)
for the fewest *agents* meeting the service level (``service_level`` answered within
``answer_within`` seconds), the ASA target, or both, then the occupancy cap. Shrinkage turns agents
into scheduled *positions*: ``positions = ceil(agents / (1 - shrinkage))``, the staff to roster so
that enough are on the phones after breaks, training and absence. ``min_agents`` keeps somebody on
an open queue even when the forecast says nobody calls.

Closed intervals (out of the area's hours, holidays) get a requirement too if the forecast puts
traffic there; the plan then refuses it or drops it (``closed_traffic``), never hides it.

Example::

    table = staff(forecast, area_of=areas.get, targets=StaffingTargets(service_level=0.8, answer_within=20))
    table.queues["general"].positions[0]     # Monday's positions per slot
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from wfm.erlang import erlang_a_agents, erlang_a_metrics, erlang_c_arrays, erlang_c_staff
from wfm.forecast import Forecast
from wfm.opening import Area

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class StaffingTargets(BaseModel):
    """Service goals for a queue; the defaults are the common 80% in 20 s with 85% occupancy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: share of offered calls to answer within ``answer_within`` seconds; None: no such target
    service_level: Annotated[float | None, Field(gt=0, lt=1)] = 0.8
    answer_within: Annotated[float, Field(ge=0, le=3600)] = 20.0
    #: average speed of answer in seconds; None: no such target
    asa: Annotated[float | None, Field(gt=0, le=3600)] = None
    max_occupancy: Annotated[float, Field(gt=0, le=1)] = 0.85
    shrinkage: Annotated[float, Field(ge=0, lt=1)] = 0.3
    model: Literal["erlang_c", "erlang_a"] = "erlang_c"
    #: mean patience of waiting callers, seconds (Erlang A only)
    patience: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    #: largest share of callers allowed to hang up while waiting (Erlang A only)
    max_abandon: Annotated[float | None, Field(gt=0, lt=1)] = None
    #: agents on an open queue even without forecast traffic
    min_agents: Annotated[int, Field(ge=0, le=1000)] = 0

    @model_validator(mode="after")
    def _some_target(self) -> Self:
        if self.service_level is None and self.asa is None:
            raise ValueError("give a service level target, an ASA target or both")
        return self


@dataclass(frozen=True, eq=False)
class QueueStaffing:
    """One queue's ``days x slots`` requirement and what it achieves."""

    queue: str
    area: str
    offered: FloatArray
    aht: FloatArray
    load: FloatArray
    open: BoolArray
    agents: IntArray
    positions: IntArray
    service_level: FloatArray
    asa: FloatArray
    occupancy: FloatArray
    p_wait: FloatArray
    p_abandon: FloatArray


@dataclass(frozen=True, eq=False)
class StaffingTable:
    interval_minutes: int
    first_day: date
    days: int
    queues: Mapping[str, QueueStaffing]


def staff(
    forecast: Forecast,
    *,
    area_of: Callable[[str], Area],
    targets: StaffingTargets | None = None,
    queue_targets: Mapping[str, StaffingTargets] | None = None,
) -> StaffingTable:
    """The requirement for every queue and interval of ``forecast`` (see the module doc)."""
    default = targets or StaffingTargets()
    queue_targets = queue_targets or {}
    interval_s = forecast.interval_minutes * 60.0
    dates = forecast.dates
    result: dict[str, QueueStaffing] = {}
    for queue in sorted(forecast.offered):
        area = area_of(queue)
        goal = queue_targets.get(queue, default)
        offered = forecast.offered[queue]
        aht = forecast.aht[queue]
        load = offered * aht / interval_s
        is_open = np.stack([area.open_slots(day, forecast.interval_minutes) for day in dates])
        if goal.model == "erlang_c":
            agents = erlang_c_staff(
                load,
                aht,
                service_level=goal.service_level,
                answer_within=goal.answer_within,
                asa=goal.asa,
                max_occupancy=goal.max_occupancy,
            )
            agents = np.where(is_open, np.maximum(agents, goal.min_agents), agents)
            metrics = erlang_c_arrays(agents, load, aht, goal.answer_within)
            p_abandon = np.zeros_like(load)
        else:
            agents, metrics, p_abandon = _erlang_a(load, aht, is_open, goal)
        positions = np.ceil(agents / (1 - goal.shrinkage) - 1e-9).astype(np.int64)
        result[queue] = QueueStaffing(
            queue=queue,
            area=area.name,
            offered=offered,
            aht=aht,
            load=load,
            open=is_open,
            agents=agents,
            positions=positions,
            service_level=metrics["service_level"],
            asa=metrics["asa"],
            occupancy=metrics["occupancy"],
            p_wait=metrics["p_wait"],
            p_abandon=p_abandon,
        )
    return StaffingTable(
        interval_minutes=forecast.interval_minutes, first_day=forecast.first_day, days=forecast.days, queues=result
    )


def _erlang_a(
    load: FloatArray, aht: FloatArray, is_open: BoolArray, goal: StaffingTargets
) -> tuple[IntArray, dict[str, FloatArray], FloatArray]:
    agents = np.zeros(load.shape, dtype=np.int64)
    metrics = {name: np.zeros(load.shape) for name in ("service_level", "asa", "occupancy", "p_wait")}
    metrics["service_level"][:] = 1.0
    p_abandon = np.zeros(load.shape)
    seen: dict[tuple[float, float, int], tuple[int, float, float, float, float, float]] = {}
    # Erlang C's answers for every interval in one vectorised pass: where each Erlang A search starts
    starts = erlang_c_staff(load, aht, service_level=goal.service_level, answer_within=goal.answer_within, asa=goal.asa)
    for index in zip(*np.nonzero(load > 0), strict=True):
        floor = goal.min_agents if is_open[index] else 0
        key = (round(float(load[index]), 9), round(float(aht[index]), 6), floor)
        if key not in seen:
            found = erlang_a_agents(
                key[0],
                key[1],
                goal.patience,
                service_level=goal.service_level,
                answer_within=goal.answer_within,
                asa=goal.asa,
                max_occupancy=goal.max_occupancy,
                max_abandon=goal.max_abandon,
                start=int(starts[index]),
            )
            if found.agents < floor:
                found = erlang_a_metrics(floor, key[0], key[1], goal.patience, goal.answer_within)
            seen[key] = (found.agents, found.service_level, found.asa, found.occupancy, found.p_wait, found.p_abandon)
        n, sl, asa, occupancy, p_wait, abandon = seen[key]
        agents[index] = n
        metrics["service_level"][index] = sl
        metrics["asa"][index] = asa if math.isfinite(asa) else np.inf
        metrics["occupancy"][index] = occupancy
        metrics["p_wait"][index] = p_wait
        p_abandon[index] = abandon
    agents = np.where(is_open, np.maximum(agents, goal.min_agents), agents)
    return agents, metrics, p_abandon


__all__ = ["QueueStaffing", "StaffingTable", "StaffingTargets", "staff"]
