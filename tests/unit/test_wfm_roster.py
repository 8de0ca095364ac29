"""Named rostering: skills, days off and weekly limits respected; what cannot be filled is counted."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import numpy as np
import pytest

from acd.queues import QueueSpec
from acd.roster import OperatorSpec
from wfm import InfeasiblePlan, OperatorRules, QueueShifts, RosterRules, ShiftPlan, make_roster
from wfm.roster import eligibility

MONDAY = date(2026, 3, 2)
QUEUES = {
    "general": QueueSpec(name="Generale", tier="general", calendar="customers", required_skills={"italiano": 5}),
    "bancoposta": QueueSpec(
        name="BancoPosta", tier="specialist", calendar="customers", required_skills={"bancoposta": 7, "italiano": 5}
    ),
}


def _op(tiers: tuple[str, ...], **skills: int) -> OperatorSpec:
    return OperatorSpec.model_validate({"name": "Operatore", "site": "roma", "tiers": tiers, "skills": skills})


def _plan(starts: dict[str, list[tuple[int, int, int]]]) -> ShiftPlan:
    """A one-week, 30-minute plan with ``(day, slot, count)`` shift starts per queue."""
    queues = {}
    for name, items in starts.items():
        grid = np.zeros((7, 48), dtype=np.int64)
        for day, slot, count in items:
            grid[day, slot] = count
        queues[name] = QueueShifts(name, "customers", grid, grid, grid, float(grid.sum()), True)
    return ShiftPlan(interval_minutes=30, first_day=MONDAY, days=7, length_minutes=360, queues=queues)


WEEK = _plan(
    {
        "bancoposta": [(day, 16, 1) for day in range(6)],  # 08:00-14:00, Monday to Saturday
        "general": [(day, 28, 2) for day in range(6)],  # two at 14:00-20:00
    }
)


def _check_rules(result_operators: dict[str, OperatorSpec], rules: RosterRules, plan: ShiftPlan) -> None:
    result = make_roster(plan, operators=result_operators, queues=QUEUES, rules=rules)
    served = eligibility(result_operators, QUEUES)
    per_day = Counter((a.operator, a.day) for a in result.assignments)
    per_week = Counter(a.operator for a in result.assignments)
    assert max(per_day.values(), default=0) <= 1
    for a in result.assignments:
        assert a.queue in served[a.operator]
        own = rules.rules_for(a.operator)
        assert (
            a.day not in own.days_off
            and ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[a.day.weekday()] not in own.days_off
        )
        assert per_week[a.operator] <= own.max_shifts_per_week
        assert (a.start.hour, a.end.hour) in ((8, 14), (14, 20))
    assert len(result.assignments) + sum(u.missing for u in result.unfilled) == result.planned == 18


def test_given_operators_and_queues_when_eligibility_then_tier_and_every_level_needed() -> None:
    served = eligibility(
        {
            "a": _op(("general",), italiano=9),
            "b": _op(("specialist",), bancoposta=8, italiano=6),
            "c": _op(("specialist",), bancoposta=6, italiano=10),  # below bancoposta 7
            "d": _op(("general", "specialist"), bancoposta=10, italiano=4),  # below italiano 5
        },
        QUEUES,
    )
    assert served == {"a": {"general": 9.0}, "b": {"bancoposta": 7.0}, "c": {}, "d": {}}


def test_given_enough_operators_when_rostered_then_every_shift_filled_optimally_within_rules() -> None:
    operators = {f"g{i}": _op(("general",), italiano=8) for i in range(4)}
    operators |= {f"b{i}": _op(("specialist",), bancoposta=8, italiano=8) for i in range(2)}
    rules = RosterRules()
    result = make_roster(WEEK, operators=operators, queues=QUEUES, rules=rules)

    assert result.unfilled == () and len(result.assignments) == 18
    assert result.status == "optimal" and result.optimal
    assert result.mip_gap is not None and result.mip_gap <= 1e-4
    assert result.dual_bound is not None and result.objective is not None
    assert result.dual_bound <= result.objective + 1e-6
    assert np.array_equal(result.coverage["general"][0], np.where((np.arange(48) >= 28) & (np.arange(48) < 40), 2, 0))
    _check_rules(operators, rules, WEEK)


def test_given_too_few_operators_when_rostered_then_exactly_the_impossible_shifts_are_unfilled() -> None:
    # one general operator, Saturday off, at most 5 a week: 5 of the 12 general shifts; nobody for bancoposta
    operators = {"g0": _op(("general",), italiano=8)}
    rules = RosterRules(operators={"g0": OperatorRules(days_off=("sat",))})
    result = make_roster(WEEK, operators=operators, queues=QUEUES, rules=rules)

    assert len(result.assignments) == 5
    assert {a.day for a in result.assignments} == {MONDAY + timedelta(days=i) for i in range(5)}
    missing = Counter()
    for u in result.unfilled:
        missing[u.queue] += u.missing
    assert missing == {"general": 7, "bancoposta": 6}
    assert rules.rules_for("g0").max_shifts_per_week == 5  # the override keeps the other defaults
    _check_rules(operators, rules, WEEK)


def test_given_date_off_and_weekly_limit_when_rostered_then_both_respected() -> None:
    operators = {f"g{i}": _op(("general",), italiano=8) for i in range(3)}
    rules = RosterRules(
        defaults=OperatorRules(days_off=("sun",), max_shifts_per_week=4),
        operators={"g0": OperatorRules(days_off=(date(2026, 3, 4),))},
    )
    _check_rules(operators, rules, WEEK)
    result = make_roster(WEEK, operators=operators, queues=QUEUES, rules=rules)
    assert len(result.assignments) == 12 and all(
        not (a.operator == "g0" and a.day == date(2026, 3, 4)) for a in result.assignments
    )


def test_given_two_candidates_when_rostered_then_the_more_proficient_gets_the_shift() -> None:
    operators = {
        "weak": _op(("specialist",), bancoposta=7, italiano=5),
        "strong": _op(("specialist",), bancoposta=10, italiano=10),
    }
    result = make_roster(_plan({"bancoposta": [(0, 16, 1)]}), operators=operators, queues=QUEUES, rules=RosterRules())
    assert [a.operator for a in result.assignments] == ["strong"]


def test_given_rules_for_unknown_operator_when_rostered_then_infeasible_names_it() -> None:
    with pytest.raises(InfeasiblePlan, match=r"not in skills/operators\.yaml: ghost"):
        make_roster(WEEK, operators={}, queues=QUEUES, rules=RosterRules(operators={"ghost": OperatorRules()}))


def test_given_no_planned_shift_when_rostered_then_empty_and_optimal() -> None:
    result = make_roster(
        _plan({"general": []}), operators={"g0": _op(("general",), italiano=8)}, queues=QUEUES, rules=RosterRules()
    )
    assert result.assignments == () and result.unfilled == () and result.optimal


def test_given_bad_weekday_in_rules_when_validated_then_error() -> None:
    with pytest.raises(ValueError, match="days_off"):
        OperatorRules.model_validate({"days_off": ["sunday"]})
