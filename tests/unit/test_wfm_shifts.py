"""The shift plan: never under-covered, inside opening hours, optimal, and clear when impossible.

The reference optimum comes from a greedy that is provably optimal for equal-length shifts
(cover the first short interval with shifts starting as late as still covers it), written here
independently of the MILP.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from ivr.hours import Calendar, CalendarSpec
from wfm import InfeasiblePlan, ShiftRules
from wfm.opening import Area
from wfm.shifts import candidate_starts, cover, coverage_of

MONDAY = date(2026, 3, 2)
CUSTOMERS = Area("customers", Calendar.from_spec(CalendarSpec(hours={"mon-sat": "08:00-20:00"})))
INTERNAL = Area("internal", Calendar.from_spec(CalendarSpec(hours={"mon-sat": "08:00-19:00"})))
SHORT = Area("short", Calendar.from_spec(CalendarSpec(hours={"mon-sat": "08:00-15:00"}, holidays=None)))


def _open(area: Area, days: int, interval: int) -> np.ndarray:
    return np.stack([area.open_slots(MONDAY + timedelta(days=i), interval) for i in range(days)])


def _dates(days: int) -> list[date]:
    return [MONDAY + timedelta(days=i) for i in range(days)]


def _greedy(required: np.ndarray, allowed: np.ndarray, length: int) -> int:
    total = 0
    for day in range(required.shape[0]):
        covered = np.zeros(required.shape[1], dtype=np.int64)
        for t in range(required.shape[1]):
            deficit = required[day, t] - covered[t]
            if deficit > 0:
                start = max(s for s in range(max(0, t - length + 1), t + 1) if allowed[day, s])
                covered[start : start + length] += deficit
                total += deficit
    return total


def test_given_two_level_day_when_planned_then_hand_optimum_two_at_8_and_three_at_14() -> None:
    is_open = _open(CUSTOMERS, 1, 60)
    required = np.zeros((1, 24), dtype=np.int64)
    required[0, 8:14] = 2
    required[0, 14:20] = 3
    rules = ShiftRules(step_minutes=60)

    starts, coverage, bound, optimal = cover(
        required, is_open, dates=_dates(1), interval_minutes=60, rules=rules, label="general", area=CUSTOMERS
    )
    assert {int(s): int(starts[0, s]) for s in np.nonzero(starts[0])[0]} == {8: 2, 14: 3}
    assert starts.sum() == 5 and bound == 5 and optimal
    assert np.array_equal(coverage, required)


@pytest.mark.parametrize(("interval", "step"), [(30, 30), (15, 15), (15, 30), (30, 60)])
@pytest.mark.parametrize("area", [CUSTOMERS, INTERNAL], ids=lambda a: a.name)
def test_given_random_requirements_when_planned_then_covered_inside_hours_and_total_equals_lp_bound(
    interval: int, step: int, area: Area
) -> None:
    rng = np.random.default_rng(interval * 100 + step)
    days = 7  # Monday to Sunday: Sunday is closed and must stay empty
    is_open = _open(area, days, interval)
    rules = ShiftRules(step_minutes=step)  # type: ignore[arg-type]
    length = rules.length_minutes // interval
    allowed = candidate_starts(is_open, shift_slots=length, step_slots=step // interval)
    reachable = coverage_of(allowed.astype(np.int64), length) > 0
    for _ in range(5):
        required = np.where(reachable, rng.integers(0, 12, is_open.shape), 0)
        starts, coverage, bound, optimal = cover(
            required, is_open, dates=_dates(days), interval_minutes=interval, rules=rules, label="q", area=area
        )
        assert np.all(coverage >= required)  # never under-covered
        assert np.all(coverage[~is_open] == 0)  # nobody on shift while closed
        assert np.all(allowed[starts > 0])  # on the step grid, the whole shift inside opening hours
        assert starts[6].sum() == 0  # Sunday
        assert optimal and starts.sum() == pytest.approx(bound) == _greedy(required, allowed, length)


def test_given_internal_saturday_evening_need_when_planned_then_shift_ends_at_closing_1900() -> None:
    saturday = 5
    is_open = _open(INTERNAL, 7, 30)
    required = np.zeros(is_open.shape, dtype=np.int64)
    required[saturday, 37] = 1  # 18:30-19:00
    starts, _, _, _ = cover(
        required, is_open, dates=_dates(7), interval_minutes=30, rules=ShiftRules(), label="internal_it", area=INTERNAL
    )
    assert np.argwhere(starts).tolist() == [[saturday, 26]]  # 13:00-19:00, the latest start that fits


def test_given_traffic_after_closing_when_planned_then_infeasible_names_queue_day_and_hours() -> None:
    is_open = _open(CUSTOMERS, 1, 30)
    required = np.zeros(is_open.shape, dtype=np.int64)
    required[0, 42] = 3  # 21:00-21:30
    with pytest.raises(InfeasiblePlan) as info:
        cover(
            required, is_open, dates=_dates(1), interval_minutes=30, rules=ShiftRules(), label="general", area=CUSTOMERS
        )
    assert info.value.problems == [
        "general, Mon 2026-03-02 21:00-21:30: 3 operator(s) needed but area 'customers' is closed then "
        "(hours: 08:00-20:00); extend its hours in dialplan/hours.yaml or leave out closed-hours traffic "
        "(--ignore-closed)"
    ]


def test_given_opening_shorter_than_a_shift_when_planned_then_infeasible_says_no_shift_fits() -> None:
    is_open = _open(SHORT, 1, 30)
    required = np.zeros(is_open.shape, dtype=np.int64)
    required[0, 20] = 1
    with pytest.raises(InfeasiblePlan, match="no 8-hour shift starting every 30 minutes fits in area 'short'"):
        cover(
            required,
            is_open,
            dates=_dates(1),
            interval_minutes=30,
            rules=ShiftRules(length_minutes=480),
            label="q",
            area=SHORT,
        )


def test_given_requirement_above_seats_when_planned_then_infeasible_names_the_interval() -> None:
    is_open = _open(CUSTOMERS, 1, 30)
    required = np.where(is_open, 2, 0)
    required[0, 20] = 5
    with pytest.raises(InfeasiblePlan, match=r"q, Mon 2026-03-02 10:00-10:30: 5 operators needed but only 4 seats"):
        cover(
            required,
            is_open,
            dates=_dates(1),
            interval_minutes=30,
            rules=ShiftRules(max_staff=4),
            label="q",
            area=CUSTOMERS,
        )


def test_given_seats_that_whole_shifts_must_overrun_when_planned_then_the_failing_day_is_named() -> None:
    # open 08:00-15:00, 6-hour shifts start at 08:00 or 09:00 (hourly step): 2 needed at 08:00 and 2
    # at 14:00 put 4 on shift 09:00-14:00 although no single interval asks for more than 2 of 3 seats
    is_open = _open(SHORT, 2, 60)
    required = np.zeros(is_open.shape, dtype=np.int64)
    required[:, 8] = 2
    required[1, 14] = 2
    rules = ShiftRules(step_minutes=60, max_staff=3)
    with pytest.raises(InfeasiblePlan) as info:
        cover(required, is_open, dates=_dates(2), interval_minutes=60, rules=rules, label="q", area=SHORT)
    [problem] = info.value.problems
    assert problem.startswith(
        "q, Tue 2026-03-03: the requirement (peak 2 at 08:00-09:00) cannot be met by 6-hour shifts"
    )
    assert "within 3 seats" in problem


def test_given_seats_enough_when_planned_then_coverage_stays_within_seats() -> None:
    is_open = _open(CUSTOMERS, 1, 30)
    required = np.where(is_open, 3, 0)
    starts, coverage, _, _ = cover(
        required,
        is_open,
        dates=_dates(1),
        interval_minutes=30,
        rules=ShiftRules(max_staff=3),
        label="q",
        area=CUSTOMERS,
    )
    assert coverage.max() == 3 and np.all(coverage[is_open] == 3) and starts.sum() == 6


def test_given_zero_traffic_when_planned_then_no_shifts() -> None:
    is_open = _open(CUSTOMERS, 7, 30)
    starts, coverage, bound, optimal = cover(
        np.zeros(is_open.shape, dtype=np.int64),
        is_open,
        dates=_dates(7),
        interval_minutes=30,
        rules=ShiftRules(),
        label="q",
        area=CUSTOMERS,
    )
    assert starts.sum() == 0 and coverage.sum() == 0 and bound == 0 and optimal
