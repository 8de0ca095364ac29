"""Shift plan: how many 6-hour shifts start when, so every interval's requirement is covered.

Theory of operation. For each queue, every shift is ``length_minutes`` of consecutive work (6 hours
by default) starting on a ``step_minutes`` grid (15 or 30 minutes past the hour) and lying wholly
inside one day's opening hours of the queue's area. Choosing how many operators start at each such
time is the classic shift-covering integer program::

    minimise  sum_j x_j                  (shifts, i.e. operator-days)
    such that sum_{j covers t} x_j >= r_t  for every interval t      (never under-covered)
              sum_{j covers t} x_j <= seats  when seats are limited
              x_j integer >= 0

solved with HiGHS through ``scipy.optimize.milp``. Each column has its ones in consecutive rows
(an interval matrix), which is totally unimodular, so the LP relaxation already has an integer
optimum: the plan's total equals the LP bound, and both are reported so that can be seen.

A requirement no shift can cover (traffic while the area is closed, or opening hours shorter than a
shift) and a requirement above the seats are refused with the queue, day and interval named.

Example::

    plan = plan_shifts(staffing, area_of=areas.get, rules=ShiftRules(step_minutes=30))
    shifts = plan.queues["general"]
    shifts.total == shifts.lp_bound        # True: the consecutive-ones matrix is totally unimodular
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse
from scipy.optimize import LinearConstraint, milp

from wfm.errors import InfeasiblePlan
from wfm.opening import Area, slot_label
from wfm.staffing import StaffingTable

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


class ShiftRules(BaseModel):
    """Shift length, the grid shifts start on, and an optional seat limit per queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    length_minutes: Annotated[int, Field(ge=60, le=720)] = 360
    step_minutes: Literal[15, 30, 60] = 30
    #: operators one queue may have on shift at once (seats); None: no limit
    max_staff: Annotated[int | None, Field(ge=1)] = None
    #: seconds HiGHS may spend on one queue's plan
    time_limit: Annotated[float, Field(gt=0, le=3600)] = 60.0


@dataclass(frozen=True, eq=False)
class QueueShifts:
    """One queue's plan: shifts starting per slot, operators on shift per slot, the requirement."""

    queue: str
    area: str
    starts: IntArray
    coverage: IntArray
    required: IntArray
    lp_bound: float
    optimal: bool

    @property
    def total(self) -> int:
        return int(self.starts.sum())


@dataclass(frozen=True, eq=False)
class ShiftPlan:
    interval_minutes: int
    first_day: date
    days: int
    length_minutes: int
    queues: Mapping[str, QueueShifts]

    @property
    def shift_slots(self) -> int:
        return self.length_minutes // self.interval_minutes


def plan_shifts(staffing: StaffingTable, *, area_of: Callable[[str], Area], rules: ShiftRules) -> ShiftPlan:
    """Cover every queue's ``positions`` in its open intervals with the fewest shifts."""
    interval = staffing.interval_minutes
    if rules.length_minutes % interval or rules.step_minutes % interval:
        raise ValueError(
            f"shift length ({rules.length_minutes} min) and step ({rules.step_minutes} min) must be multiples "
            f"of the {interval}-minute interval"
        )
    dates = [staffing.first_day + timedelta(days=i) for i in range(staffing.days)]
    queues: dict[str, QueueShifts] = {}
    problems: list[str] = []
    for name, table in staffing.queues.items():
        area = area_of(name)
        try:
            starts, coverage, bound, optimal = cover(
                table.positions, table.open, dates=dates, interval_minutes=interval, rules=rules, label=name, area=area
            )
        except InfeasiblePlan as exc:
            problems.extend(exc.problems)
            continue
        queues[name] = QueueShifts(
            queue=name,
            area=area.name,
            starts=starts,
            coverage=coverage,
            required=table.positions,
            lp_bound=bound,
            optimal=optimal,
        )
    if problems:
        raise InfeasiblePlan(problems)
    return ShiftPlan(
        interval_minutes=interval,
        first_day=staffing.first_day,
        days=staffing.days,
        length_minutes=rules.length_minutes,
        queues=queues,
    )


def candidate_starts(is_open: BoolArray, *, shift_slots: int, step_slots: int) -> BoolArray:
    """``days x slots`` flags: a shift may start here (on the step grid, wholly inside open slots)."""
    days, slots = is_open.shape
    allowed = np.zeros((days, slots), dtype=np.bool_)
    if shift_slots > slots:
        return allowed
    run = np.concatenate((np.zeros((days, 1), dtype=np.int64), np.cumsum(is_open.astype(np.int64), axis=1)), axis=1)
    window = run[:, shift_slots:] - run[:, :-shift_slots]  # open slots in [s, s + shift_slots)
    allowed[:, : slots - shift_slots + 1] = window == shift_slots
    allowed[:, np.arange(slots) % step_slots != 0] = False
    return allowed


def cover(
    required: IntArray,
    is_open: BoolArray,
    *,
    dates: list[date],
    interval_minutes: int,
    rules: ShiftRules,
    label: str,
    area: Area,
) -> tuple[IntArray, IntArray, float, bool]:
    """Solve one queue's covering problem: (starts, coverage, LP bound, proven optimal)."""
    days, slots = required.shape
    shift_slots = rules.length_minutes // interval_minutes
    allowed = candidate_starts(is_open, shift_slots=shift_slots, step_slots=rules.step_minutes // interval_minutes)
    columns = np.argwhere(allowed)  # (day, start slot) per candidate shift
    reachable = np.zeros((days, slots), dtype=np.bool_)
    for day, start in columns:
        reachable[day, start : start + shift_slots] = True
    _refuse_uncoverable(required, is_open, reachable, dates, interval_minutes, rules, label, area)
    starts = np.zeros((days, slots), dtype=np.int64)
    if not required.any():
        return starts, starts.copy(), 0.0, True
    # rows: every slot a shift can cover (all are bounded when seats are limited), else those with need
    row_mask = reachable if rules.max_staff is not None else required > 0
    row_of = np.full((days, slots), -1, dtype=np.int64)
    row_of[row_mask] = np.arange(int(row_mask.sum()))
    offsets = np.arange(shift_slots)
    cell_rows = row_of[columns[:, :1], columns[:, 1:2] + offsets]  # (candidates, shift_slots)
    cell_cols = np.broadcast_to(np.arange(len(columns))[:, None], cell_rows.shape)
    keep = cell_rows >= 0
    matrix = sparse.csr_array(
        (np.ones(int(keep.sum())), (cell_rows[keep], cell_cols[keep])), shape=(int(row_mask.sum()), len(columns))
    )
    lower = required[row_mask].astype(np.float64)
    upper = np.full(lower.shape, np.inf if rules.max_staff is None else float(rules.max_staff))
    constraint = LinearConstraint(matrix, lower, upper)
    cost = np.ones(len(columns))
    options = {"time_limit": rules.time_limit, "disp": False}
    result = milp(cost, integrality=np.ones(len(columns)), constraints=constraint, options=options)
    if result.status == 2 or result.x is None:
        raise InfeasiblePlan(_diagnose(required, is_open, dates, interval_minutes, rules, label, area, result.message))
    relaxed = milp(cost, integrality=np.zeros(len(columns)), constraints=constraint, options=options)
    bound = float(relaxed.fun) if relaxed.status == 0 else float("nan")
    counts = np.rint(np.asarray(result.x, dtype=np.float64)).astype(np.int64)
    starts[columns[:, 0], columns[:, 1]] = counts
    coverage = coverage_of(starts, shift_slots)
    return starts, coverage, bound, bool(result.status == 0)


def coverage_of(starts: IntArray, shift_slots: int) -> IntArray:
    """Operators on shift per slot, given shifts starting per slot (a shift never crosses midnight)."""
    run = np.concatenate((np.zeros((starts.shape[0], 1), dtype=np.int64), np.cumsum(starts, axis=1)), axis=1)
    slots = starts.shape[1]
    index = np.arange(slots)
    return run[:, index + 1] - run[:, np.maximum(index + 1 - shift_slots, 0)]


def _refuse_uncoverable(
    required: IntArray,
    is_open: BoolArray,
    reachable: BoolArray,
    dates: list[date],
    interval_minutes: int,
    rules: ShiftRules,
    label: str,
    area: Area,
) -> None:
    problems: list[str] = []
    hours = rules.length_minutes / 60
    for day, slot in np.argwhere((required > 0) & ~reachable):
        when = f"{label}, {dates[day]:%a %Y-%m-%d} {slot_label(int(slot), interval_minutes)}"
        need = int(required[day, slot])
        opening = area.hours_text(dates[day])
        if not is_open[day, slot]:
            problems.append(
                f"{when}: {need} operator(s) needed but area {area.name!r} is closed then (hours: {opening}); "
                f"extend its hours in dialplan/hours.yaml or leave out closed-hours traffic (--ignore-closed)"
            )
        else:
            problems.append(
                f"{when}: {need} operator(s) needed but no {hours:g}-hour shift starting every {rules.step_minutes} "
                f"minutes fits in area {area.name!r}'s opening hours ({opening})"
            )
    if rules.max_staff is not None:
        for day, slot in np.argwhere(required > rules.max_staff):
            problems.append(
                f"{label}, {dates[day]:%a %Y-%m-%d} {slot_label(int(slot), interval_minutes)}: "
                f"{int(required[day, slot])} operators needed but only {rules.max_staff} seats"
            )
    if problems:
        raise InfeasiblePlan(problems)


def _diagnose(
    required: IntArray,
    is_open: BoolArray,
    dates: list[date],
    interval_minutes: int,
    rules: ShiftRules,
    label: str,
    area: Area,
    message: object,
) -> list[str]:
    # Every interval fits the seats on its own (checked before), but whole shifts push a neighbour
    # over: days are independent, so solve them one by one to name the days that fail.
    if len(dates) == 1:
        peak = int(required[0].argmax())
        return [
            f"{label}, {dates[0]:%a %Y-%m-%d}: the requirement (peak {int(required[0, peak])} at "
            f"{slot_label(peak, interval_minutes)}) cannot be met by {rules.length_minutes / 60:g}-hour shifts "
            f"within {rules.max_staff} seats ({message})"
        ]
    problems: list[str] = []
    for day in range(len(dates)):
        if not required[day].any():
            continue
        try:
            cover(
                required[day : day + 1],
                is_open[day : day + 1],
                dates=[dates[day]],
                interval_minutes=interval_minutes,
                rules=rules,
                label=label,
                area=area,
            )
        except InfeasiblePlan as exc:
            problems.extend(exc.problems)
    return problems or [f"{label}: no shift plan found ({message})"]


__all__ = ["QueueShifts", "ShiftPlan", "ShiftRules", "candidate_starts", "cover", "coverage_of", "plan_shifts"]
