"""Named rostering: which operator works which planned shift, by skills, days off and weekly limits.

Theory of operation. The shift plan says how many shifts of each queue start at each time; here
each of those is given to a named operator from ``skills/operators.yaml`` who can serve the queue
(the queue's tier is one of theirs and they meet its required skill levels, as the ACD would
route). One binary ``x[o, k]`` per operator and planned shift slot, one integer ``u[k]`` for what
stays unfilled::

    minimise  1000 * sum_k u[k] + sum_{o,k} cost[o, k] * x[o, k]
    such that sum_o x[o, k] + u[k] = planned[k]        every planned slot filled or counted missing
              sum_{k on day d} x[o, k] <= 1            one shift a day
              sum_{k in week w} x[o, k] <= max[o]      at most max shifts a week (ISO weeks)
              x[o, k] = 0 on the operator's days off

``cost`` is slightly lower for a more proficient operator, so among equally good rosters the best
matched one wins. HiGHS solves it under a time limit; the result says whether it is proven
optimal and the relative MIP gap (primal vs dual bound) when it is not. A roster too small for the
plan is not an error: the missing shifts are listed, so a supervisor sees what to hire or move.

Example::

    rules = RosterRules(defaults=OperatorRules(days_off=("sun",), max_shifts_per_week=5))
    result = make_roster(plan, operators=config.operators, queues=config.queues, rules=rules)
    result.status, result.mip_gap, len(result.unfilled)
"""

from __future__ import annotations

import time as clock
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from acd.queues import QueueSpec
from acd.roster import OperatorSpec
from ivr.hours import DAYS
from wfm.errors import InfeasiblePlan
from wfm.opening import slot_time
from wfm.shifts import ShiftPlan, coverage_of

IntArray = npt.NDArray[np.int64]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: an unfilled shift costs this much more than any filled one, so filling always comes first
UNFILLED_PENALTY = 1000.0
_STATUS = {0: "optimal", 1: "time limit reached", 2: "infeasible", 3: "unbounded", 4: "solver error"}


class OperatorRules(BaseModel):
    """Availability of one operator: days off (weekday names or dates) and shifts a week."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    days_off: tuple[date | Weekday, ...] = ()
    max_shifts_per_week: Annotated[int, Field(ge=0, le=7)] = 5


class RosterRules(BaseModel):
    """Rules for every operator, with per-operator overrides of the fields they name."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    defaults: OperatorRules = OperatorRules(days_off=("sun",))
    operators: dict[str, OperatorRules] = {}
    #: seconds HiGHS may spend before returning its best roster so far
    time_limit: Annotated[float, Field(gt=0, le=3600)] = 30.0
    #: stop when the roster is proven within this share of optimal
    mip_rel_gap: Annotated[float, Field(ge=0, lt=1)] = 1e-4

    def rules_for(self, operator: str) -> OperatorRules:
        own = self.operators.get(operator)
        if own is None:
            return self.defaults
        return self.defaults.model_copy(update=own.model_dump(exclude_unset=True))


@dataclass(frozen=True, slots=True)
class Assignment:
    operator: str
    name: str
    queue: str
    day: date
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Unfilled:
    queue: str
    day: date
    start: time
    end: time
    missing: int


@dataclass(frozen=True, eq=False)
class RosterResult:
    assignments: tuple[Assignment, ...]
    unfilled: tuple[Unfilled, ...]
    status: str
    optimal: bool
    objective: float | None
    dual_bound: float | None
    mip_gap: float | None
    seconds: float
    variables: int
    #: per queue, ``days x slots`` named operators on shift
    coverage: Mapping[str, IntArray]

    @property
    def planned(self) -> int:
        return len(self.assignments) + sum(u.missing for u in self.unfilled)


def eligibility(operators: Mapping[str, OperatorSpec], queues: Mapping[str, QueueSpec]) -> dict[str, dict[str, float]]:
    """Per operator, the queues they can serve and how well (mean proficiency of the queue's
    required skills, 1-10; 5 for a queue that requires none)."""
    result: dict[str, dict[str, float]] = {}
    for op_id, operator in operators.items():
        served: dict[str, float] = {}
        for name, queue in queues.items():
            if queue.tier in operator.tiers and operator.has_skills(dict(queue.required_skills)):
                levels = [operator.skills.get(skill, 0) for skill in queue.required_skills]
                served[name] = float(np.mean(levels)) if levels else 5.0
        result[op_id] = served
    return result


def make_roster(
    plan: ShiftPlan,
    *,
    operators: Mapping[str, OperatorSpec],
    queues: Mapping[str, QueueSpec],
    rules: RosterRules,
) -> RosterResult:
    """Give the plan's shifts to named operators (see the module doc)."""
    unknown = sorted(set(rules.operators) - set(operators))
    if unknown:
        raise InfeasiblePlan([f"roster rules name operator(s) not in skills/operators.yaml: {', '.join(unknown)}"])
    began = clock.perf_counter()
    dates = [plan.first_day + timedelta(days=i) for i in range(plan.days)]
    served = eligibility(operators, queues)
    slots: list[tuple[str, int, int, int]] = []  # (queue, day index, start slot, planned count)
    for name in sorted(plan.queues):
        for day, start in np.argwhere(plan.queues[name].starts > 0):
            slots.append((name, int(day), int(start), int(plan.queues[name].starts[day, start])))
    off: dict[str, set[date]] = {}
    limit: dict[str, int] = {}
    for op_id in operators:
        own = rules.rules_for(op_id)
        weekdays = {DAYS.index(d) for d in own.days_off if isinstance(d, str)}
        off[op_id] = {d for d in dates if d.weekday() in weekdays} | {d for d in own.days_off if isinstance(d, date)}
        limit[op_id] = own.max_shifts_per_week

    var_op: list[str] = []
    var_slot: list[int] = []
    cost: list[float] = []
    for k, (queue, day, _, _) in enumerate(slots):
        for op_id in sorted(operators):
            score = served[op_id].get(queue)
            if score is not None and dates[day] not in off[op_id]:
                var_op.append(op_id)
                var_slot.append(k)
                cost.append(1.0 + (10.0 - score) / 100.0)
    n_x, n_u = len(var_op), len(slots)
    if n_u == 0:
        return RosterResult(
            assignments=(),
            unfilled=(),
            status="optimal",
            optimal=True,
            objective=0.0,
            dual_bound=0.0,
            mip_gap=0.0,
            seconds=clock.perf_counter() - began,
            variables=0,
            coverage={name: np.zeros_like(shifts.starts) for name, shifts in plan.queues.items()},
        )

    rows: list[int] = []
    cols: list[int] = []
    lower: list[float] = []
    upper: list[float] = []
    # planned slots: sum_o x + u = planned
    for _, _, _, count in slots:
        lower.append(count)
        upper.append(count)
    rows.extend(var_slot)
    cols.extend(range(n_x))
    rows.extend(range(n_u))
    cols.extend(range(n_x, n_x + n_u))
    # one shift a day and at most max a week, per operator
    per_day: dict[tuple[str, int], list[int]] = defaultdict(list)
    per_week: dict[tuple[str, tuple[int, int]], list[int]] = defaultdict(list)
    for j, (op_id, k) in enumerate(zip(var_op, var_slot, strict=True)):
        day = dates[slots[k][1]]
        per_day[op_id, slots[k][1]].append(j)
        iso = day.isocalendar()
        per_week[op_id, (iso.year, iso.week)].append(j)
    row = n_u
    for members in per_day.values():
        if len(members) > 1:
            rows.extend([row] * len(members))
            cols.extend(members)
            lower.append(0)
            upper.append(1)
            row += 1
    for (op_id, _), members in per_week.items():
        if len(members) > limit[op_id]:
            rows.extend([row] * len(members))
            cols.extend(members)
            lower.append(0)
            upper.append(limit[op_id])
            row += 1
    matrix = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(row, n_x + n_u))
    objective = np.concatenate((np.asarray(cost), np.full(n_u, UNFILLED_PENALTY)))
    bounds_upper = np.concatenate((np.ones(n_x), [float(count) for *_, count in slots]))
    result = milp(
        objective,
        integrality=np.ones(n_x + n_u),
        bounds=Bounds(np.zeros(n_x + n_u), bounds_upper),
        constraints=LinearConstraint(matrix, np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)),
        options={"time_limit": rules.time_limit, "mip_rel_gap": rules.mip_rel_gap, "disp": False},
    )
    seconds = clock.perf_counter() - began
    status = _STATUS.get(int(result.status), f"status {result.status}")
    if result.x is None:
        raise InfeasiblePlan([f"rostering found no roster ({status}: {result.message}); raise the time limit"])
    values = np.rint(np.asarray(result.x, dtype=np.float64)).astype(np.int64)
    length = timedelta(minutes=plan.length_minutes)
    assignments: list[Assignment] = []
    named_starts = {name: np.zeros_like(shifts.starts) for name, shifts in plan.queues.items()}
    for chosen in np.nonzero(values[:n_x])[0].tolist():
        queue, day, start, _ = slots[var_slot[chosen]]
        begins = slot_time(start, plan.interval_minutes)
        ends = (_at(dates[day], begins) + length).time()
        op_id = var_op[chosen]
        assignments.append(Assignment(op_id, operators[op_id].name, queue, dates[day], begins, ends))
        named_starts[queue][day, start] += 1
    unfilled = []
    for short in np.nonzero(values[n_x:])[0].tolist():
        queue, day, start, _ = slots[short]
        begins = slot_time(start, plan.interval_minutes)
        unfilled.append(
            Unfilled(queue, dates[day], begins, (_at(dates[day], begins) + length).time(), int(values[n_x + short]))
        )
    assignments.sort(key=lambda a: (a.day, a.start, a.queue, a.operator))
    fun = getattr(result, "fun", None)
    bound = getattr(result, "mip_dual_bound", None)
    gap = getattr(result, "mip_gap", None)
    return RosterResult(
        assignments=tuple(assignments),
        unfilled=tuple(unfilled),
        status=status,
        optimal=int(result.status) == 0,
        objective=None if fun is None else float(fun),
        dual_bound=None if bound is None else float(bound),
        mip_gap=None if gap is None else float(gap),
        seconds=seconds,
        variables=n_x + n_u,
        coverage={name: coverage_of(starts, plan.shift_slots) for name, starts in named_starts.items()},
    )


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment)


__all__ = ["Assignment", "OperatorRules", "RosterResult", "RosterRules", "Unfilled", "eligibility", "make_roster"]
