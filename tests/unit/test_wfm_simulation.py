"""The discrete-event simulation of one interval agrees with Erlang C and Erlang A.

Tolerances are about four standard deviations of the simulated figures over seeds (SL and waiting
probability +-0.015, ASA +-15%); the seeds are fixed, so the tests give the same answer every run.
"""

from __future__ import annotations

import pytest

from wfm import erlang_a_metrics, erlang_c_agents, erlang_c_metrics, simulate

RATE = 100 / 1800  # the pyworkforce case: 100 calls in 30 minutes, AHT 180 s


def test_given_pyworkforce_case_when_simulated_then_agrees_with_erlang_c() -> None:
    need = erlang_c_agents(10.0, 180, service_level=0.8, answer_within=20, max_occupancy=0.85)
    sim = simulate(arrival_rate=RATE, aht=180, agents=need.agents, answer_within=20, seed=1)

    assert sim.service_level == pytest.approx(need.service_level, abs=0.015)
    assert sim.p_wait == pytest.approx(need.p_wait, abs=0.015)
    assert sim.asa == pytest.approx(need.asa, rel=0.15)
    assert sim.occupancy == pytest.approx(need.occupancy, abs=0.01)
    assert sim.p_abandon == 0.0


@pytest.mark.parametrize(("agents", "patience"), [(14, 60.0), (11, 300.0), (9, 120.0)])
def test_given_impatient_callers_when_simulated_then_agrees_with_erlang_a(agents: int, patience: float) -> None:
    model = erlang_a_metrics(agents, 10.0, 180, patience, 20)
    sim = simulate(arrival_rate=RATE, aht=180, agents=agents, answer_within=20, patience=patience, seed=2)

    assert sim.service_level == pytest.approx(model.service_level, abs=0.015)
    assert sim.p_wait == pytest.approx(model.p_wait, abs=0.015)
    assert sim.p_abandon == pytest.approx(model.p_abandon, abs=0.01)
    assert sim.asa == pytest.approx(model.asa, rel=0.15)


def test_given_one_agent_when_simulated_then_matches_mm1_closed_form() -> None:
    # M/M/1 with rho = 0.5: P(wait) = rho, ASA = rho / (mu - lambda)
    sim = simulate(arrival_rate=0.5 / 180, aht=180, agents=1, answer_within=20, seed=3)
    exact = erlang_c_metrics(1, 0.5, 180, 20)

    assert exact.p_wait == pytest.approx(0.5)
    assert exact.asa == pytest.approx(0.5 * 180 / 0.5)
    assert sim.p_wait == pytest.approx(0.5, abs=0.015)
    assert sim.asa == pytest.approx(exact.asa, rel=0.15)


def test_given_same_seed_when_simulated_twice_then_same_figures() -> None:
    first = simulate(arrival_rate=RATE, aht=180, agents=12, answer_within=20, calls=20_000, warmup=1_000, seed=9)
    again = simulate(arrival_rate=RATE, aht=180, agents=12, answer_within=20, calls=20_000, warmup=1_000, seed=9)
    assert first == again


def test_given_bad_arguments_when_simulated_then_value_error() -> None:
    with pytest.raises(ValueError, match="agents"):
        simulate(arrival_rate=RATE, aht=180, agents=0, answer_within=20)
