"""Erlang B/C/A against hand-computed values, published examples, identities and each other."""

from __future__ import annotations

import math
from datetime import date
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy.stats import poisson

from ivr.hours import Calendar, CalendarSpec
from wfm import (
    Forecast,
    StaffingTargets,
    erlang_a_agents,
    erlang_a_metrics,
    erlang_b,
    erlang_c,
    erlang_c_agents,
    erlang_c_arrays,
    erlang_c_metrics,
    erlang_c_staff,
    offered_load,
    sqrt_staffing,
    staff,
)
from wfm.opening import Area

MONDAY = date(2026, 3, 2)


def _factorial_erlang_c(n: int, a: Fraction) -> Fraction:
    """The textbook formula with factorials, in exact arithmetic: the reference for small n."""
    top = a**n / math.factorial(n) * Fraction(n) / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def _one_interval(calls: float, aht: float, targets: StaffingTargets) -> tuple[int, int]:
    area = Area("always", Calendar.from_spec(CalendarSpec(hours={"mon-sun": "00:00-24:00"}, holidays=None)))
    offered = np.zeros((1, 48))
    offered[0, 20] = calls
    forecast = Forecast(
        interval_minutes=30,
        first_day=MONDAY,
        days=1,
        zone=ZoneInfo("Europe/Rome"),
        offered={"q": offered},
        aht={"q": np.full((1, 48), aht)},
    )
    table = staff(forecast, area_of=lambda _: area, targets=targets).queues["q"]
    return int(table.agents[0, 20]), int(table.positions[0, 20])


def test_given_pyworkforce_readme_case_when_staffed_then_14_agents_20_positions_and_sl_0888() -> None:
    # 100 calls in 30 minutes, AHT 180 s, 80% answered within 20 s, occupancy <= 85%, shrinkage 30%
    load = offered_load(100, 180, 30 * 60)
    need = erlang_c_agents(load, 180, service_level=0.8, answer_within=20, max_occupancy=0.85)

    assert load == 10.0
    assert need.agents == 14
    assert round(need.service_level, 3) == 0.888
    assert round(need.occupancy, 3) == 0.714
    assert round(need.p_wait, 3) == 0.174
    targets = StaffingTargets(service_level=0.8, answer_within=20, max_occupancy=0.85, shrinkage=0.3)
    assert _one_interval(100, 180, targets) == (14, 20)


def test_given_pyworkforce_case_with_occupancy_cap_070_when_staffed_then_15_agents_22_positions() -> None:
    need = erlang_c_agents(10.0, 180, service_level=0.8, answer_within=20, max_occupancy=0.7)

    assert need.agents == 15
    assert (round(need.service_level, 3), round(need.p_wait, 3), round(need.occupancy, 3)) == (0.941, 0.102, 0.667)
    targets = StaffingTargets(service_level=0.8, answer_within=20, max_occupancy=0.7, shrinkage=0.3)
    assert _one_interval(100, 180, targets) == (15, 22)


def test_given_two_erlangs_on_three_agents_when_computed_then_hand_values_4_19_and_4_9() -> None:
    assert erlang_b(3, 2.0) == pytest.approx(4 / 19, rel=1e-14)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-14)


@pytest.mark.parametrize(
    ("n", "a"), [(1, Fraction(1, 2)), (2, Fraction(3, 2)), (5, Fraction(4)), (12, Fraction(19, 2))]
)
def test_given_small_systems_when_erlang_c_then_equals_factorial_formula(n: int, a: Fraction) -> None:
    assert erlang_c(n, float(a)) == pytest.approx(float(_factorial_erlang_c(n, a)), rel=1e-12)


@pytest.mark.parametrize(("n", "a"), [(30, 25.0), (520, 500.0), (1050, 1000.0), (5100, 5000.0)])
def test_given_large_load_when_erlang_b_then_equals_poisson_ratio_without_overflow(n: int, a: float) -> None:
    # B(n, A) = P(Poisson(A) = n) / P(Poisson(A) <= n): scipy computes that in log space
    expected = float(poisson.pmf(n, a) / poisson.cdf(n, a))

    assert erlang_b(n, a) == pytest.approx(expected, rel=1e-9)
    c = erlang_c(n, a)
    assert 0 < c < 1
    assert c == pytest.approx(expected / (1 - a / n * (1 - expected)), rel=1e-9)  # C from B


def test_given_metrics_when_compared_then_formula_identities_hold() -> None:
    for agents in range(11, 25):
        m = erlang_c_metrics(agents, 10.0, 180, 20)
        assert m.asa == pytest.approx(m.p_wait * 180 / (agents - 10.0))
        assert erlang_c_metrics(agents, 10.0, 180, 0).service_level == pytest.approx(1 - m.p_wait)
        assert m.occupancy == pytest.approx(10.0 / agents)
    levels = [erlang_c_metrics(n, 10.0, 180, 20).service_level for n in range(11, 25)]
    asas = [erlang_c_metrics(n, 10.0, 180, 20).asa for n in range(11, 25)]
    assert levels == sorted(levels) and asas == sorted(asas, reverse=True)


def test_given_too_few_agents_when_erlang_c_then_everybody_waits_forever() -> None:
    m = erlang_c_metrics(10, 10.0, 180, 20)
    assert (m.p_wait, m.service_level, m.asa) == (1.0, 0.0, math.inf)


def test_given_asa_target_when_staffed_then_fewest_agents_meeting_it() -> None:
    need = erlang_c_agents(10.0, 180, service_level=None, asa=15)

    assert need.asa <= 15
    assert erlang_c_metrics(need.agents - 1, 10.0, 180, 20).asa > 15


def test_given_many_intervals_when_staffed_at_once_then_same_as_one_by_one() -> None:
    rng = np.random.default_rng(7)
    loads = np.concatenate(([0.0, 0.01, 0.99, 1.0, 250.0], rng.uniform(0, 60, 200)))
    ahts = rng.uniform(60, 600, loads.size)
    together = erlang_c_staff(loads, ahts, service_level=0.8, answer_within=20, max_occupancy=0.9)
    apart = [
        0 if load == 0 else erlang_c_agents(load, aht, service_level=0.8, answer_within=20, max_occupancy=0.9).agents
        for load, aht in zip(loads, ahts, strict=True)
    ]
    assert together.tolist() == apart
    assert together[0] == 0
    metrics = erlang_c_arrays(together, loads, ahts, 20)
    assert np.all(metrics["service_level"] >= 0.8 - 1e-12)
    assert metrics["service_level"][0] == 1.0 and metrics["occupancy"][0] == 0.0


@pytest.mark.parametrize("load", [2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0])
def test_given_load_when_square_root_staffing_then_within_one_agent_of_erlang_c(load: float) -> None:
    exact = erlang_c_agents(load, 180, service_level=0.8, answer_within=20).agents
    assert abs(sqrt_staffing(load, 180, service_level=0.8, answer_within=20) - exact) <= 1
    exact_asa = erlang_c_agents(load, 180, service_level=None, asa=10).agents
    assert abs(sqrt_staffing(load, 180, service_level=None, asa=10) - exact_asa) <= 1


def test_given_growing_patience_when_erlang_a_then_tends_to_erlang_c() -> None:
    c = erlang_c_metrics(14, 10.0, 180, 20)
    gaps = []
    for patience in (60.0, 600.0, 6_000.0, 60_000.0, 600_000.0):
        a = erlang_a_metrics(14, 10.0, 180, patience, 20)
        gaps.append(abs(a.service_level - c.service_level) + abs(a.p_wait - c.p_wait) + abs(a.asa - c.asa) / 10)
    assert gaps == sorted(gaps, reverse=True)
    a = erlang_a_metrics(14, 10.0, 180, 600_000.0, 20)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-4)
    assert a.p_wait == pytest.approx(c.p_wait, abs=1e-4)
    assert a.asa == pytest.approx(c.asa, rel=1e-3)
    assert a.p_abandon < 1e-4
    assert erlang_a_agents(10.0, 180, 600_000.0, service_level=0.8, answer_within=20).agents == 14


def test_given_erlang_a_when_computed_then_answered_plus_abandoned_is_everyone() -> None:
    for agents, load in ((5, 10.0), (9, 10.0), (14, 10.0), (1100, 1000.0)):
        m = erlang_a_metrics(agents, load, 180, 120, 20)
        answered = m.occupancy * agents / load  # carried load over offered load
        assert answered + m.p_abandon == pytest.approx(1.0, abs=1e-9)
        assert 0 <= m.service_level <= 1 - m.p_abandon + 1e-12


def test_given_overload_when_erlang_a_then_finite_with_abandonment_unlike_erlang_c() -> None:
    m = erlang_a_metrics(9, 10.0, 180, 120, 20)
    assert 0.1 < m.p_abandon < 0.3 and math.isfinite(m.asa)
    assert erlang_c_metrics(9, 10.0, 180, 20).asa == math.inf


def test_given_erlang_a_targets_when_staffed_then_fewest_agents_meeting_every_target() -> None:
    need = erlang_a_agents(10.0, 180, 120, service_level=0.8, answer_within=20, max_abandon=0.02)
    assert need.service_level >= 0.8 and need.p_abandon <= 0.02
    fewer = erlang_a_metrics(need.agents - 1, 10.0, 180, 120, 20)
    assert fewer.service_level < 0.8 or fewer.p_abandon > 0.02


def test_given_zero_traffic_when_staffed_then_nobody_needed() -> None:
    assert erlang_c_agents(0.0, 180).agents == 0
    assert erlang_a_agents(0.0, 180, 120).agents == 0
    assert sqrt_staffing(0.0, 180) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: erlang_c(-1, 1.0), "agents"),
        (lambda: erlang_b(3, -0.5), "load"),
        (lambda: erlang_c_agents(5.0, 180, service_level=None, asa=None), "target"),
        (lambda: erlang_c_agents(5.0, 180, service_level=1.0), "service level"),
        (lambda: erlang_c_agents(5.0, 180, max_occupancy=0), "occupancy"),
        (lambda: erlang_a_metrics(3, 1.0, 180, 0, 20), "patience"),
    ],
)
def test_given_bad_arguments_when_called_then_value_error(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()
