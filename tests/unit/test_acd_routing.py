"""Routing decisions on hand-built snapshots: eligibility, ordering, tie-breaks, determinism."""

from __future__ import annotations

import itertools

import pytest

from acd.agents import AgentState
from acd.routing import Decision, OperatorView, RoutingStrategy, WaitingCall, best_call, best_operator

NOW = 1000.0
BEST = RoutingStrategy.BEST_SKILL
IDLE = RoutingStrategy.LONGEST_IDLE


def op(
    op_id: str,
    skills: dict[str, int],
    *,
    idle_since: float = 900.0,
    tiers: frozenset[str] = frozenset({"general"}),
    state: AgentState = AgentState.READY,
    registered: bool = True,
) -> OperatorView:
    return OperatorView(id=op_id, tiers=tiers, skills=skills, state=state, idle_since=idle_since, registered=registered)


def call(
    call_id: str,
    requirements: dict[str, int],
    *,
    queue: str = "bancoposta",
    priority: int = 0,
    enqueued_at: float = 950.0,
    tier: str = "general",
) -> WaitingCall:
    return WaitingCall(
        call_id=call_id, queue=queue, priority=priority, enqueued_at=enqueued_at, requirements=requirements, tier=tier
    )


# --- best_operator -------------------------------------------------------------------------------


def test_skill_filter_drops_operators_below_minimum_or_without_skill() -> None:
    c = call("c1", {"bancoposta": 7, "italiano": 5})
    ops = [
        op("op1", {"bancoposta": 6, "italiano": 9}),
        op("op2", {"italiano": 9}),
        op("op3", {"bancoposta": 7, "italiano": 5}),
    ]
    decision = best_operator(c, ops, BEST, now=NOW)
    assert decision is not None
    assert decision.choice == "op3"


def test_best_skill_prefers_highest_proficiency_sum() -> None:
    c = call("c1", {"bancoposta": 7})
    ops = [op("op1", {"bancoposta": 7}, idle_since=0.0), op("op2", {"bancoposta": 9}), op("op3", {"bancoposta": 8})]
    assert best_operator(c, ops, BEST, now=NOW) == Decision(
        "op2", "op2: bancoposta 9 >= 7, idle 100 s (best of 3 eligible, strategy best_skill)"
    )


def test_best_skill_ties_broken_by_longest_idle_then_id() -> None:
    c = call("c1", {"bancoposta": 7})
    ops = [op("op3", {"bancoposta": 8}, idle_since=500.0), op("op2", {"bancoposta": 8}, idle_since=400.0)]
    assert best_operator(c, ops, BEST, now=NOW) == Decision(
        "op2", "op2: bancoposta 8 >= 7, idle 600 s (best of 2 eligible, strategy best_skill)"
    )
    same_idle = [op("op3", {"bancoposta": 8}), op("op2", {"bancoposta": 8})]
    decision = best_operator(c, same_idle, BEST, now=NOW)
    assert decision is not None
    assert decision.choice == "op2"


def test_longest_idle_ignores_proficiency() -> None:
    c = call("c1", {"bancoposta": 4})
    ops = [op("op1", {"bancoposta": 10}, idle_since=900.0), op("op2", {"bancoposta": 4}, idle_since=800.0)]
    decision = best_operator(c, ops, IDLE, now=NOW)
    assert decision is not None
    assert decision.choice == "op2"


def test_tier_filter() -> None:
    c = call("c1", {"bancoposta": 5}, tier="enterprise")
    ops = [
        op("op1", {"bancoposta": 10}, tiers=frozenset({"general", "specialist"})),
        op("op2", {"bancoposta": 5}, tiers=frozenset({"enterprise"})),
    ]
    decision = best_operator(c, ops, BEST, now=NOW)
    assert decision is not None
    assert decision.choice == "op2"
    assert best_operator(c, ops[:1], BEST, now=NOW) is None


@pytest.mark.parametrize(
    ("state", "registered"),
    [
        (AgentState.READY, False),
        (AgentState.RINGING, True),
        (AgentState.ON_CALL, True),
        (AgentState.WRAP_UP, True),
        (AgentState.NOT_READY, True),
        (AgentState.LOGGED_OUT, True),
    ],
)
def test_only_ready_and_registered_operators_are_chosen(state: AgentState, registered: bool) -> None:
    c = call("c1", {"bancoposta": 1})
    busy = op("op1", {"bancoposta": 10}, state=state, registered=registered, idle_since=0.0)
    assert best_operator(c, [busy], BEST, now=NOW) is None
    decision = best_operator(c, [busy, op("op2", {"bancoposta": 1})], BEST, now=NOW)
    assert decision is not None
    assert decision.choice == "op2"


def test_no_requirements_means_any_operator_of_the_tier() -> None:
    decision = best_operator(call("c1", {}), [op("op2", {}), op("op1", {})], BEST, now=NOW)
    assert decision == Decision("op1", "op1: no skill required, idle 100 s (best of 2 eligible, strategy best_skill)")


@pytest.mark.parametrize("strategy", list(RoutingStrategy))
def test_best_operator_is_deterministic_whatever_the_input_order(strategy: RoutingStrategy) -> None:
    c = call("c1", {"bancoposta": 5, "inglese": 3})
    ops = [
        op("op1", {"bancoposta": 8, "inglese": 3}, idle_since=700.0),
        op("op2", {"bancoposta": 6, "inglese": 5}, idle_since=700.0),
        op("op3", {"bancoposta": 9, "inglese": 2}, idle_since=100.0),
        op("op4", {"bancoposta": 5, "inglese": 6}, idle_since=600.0),
    ]
    results = {best_operator(c, list(order), strategy, now=NOW) for order in itertools.permutations(ops)}
    assert len(results) == 1


# --- best_call -----------------------------------------------------------------------------------


def test_priority_then_wait_across_queues() -> None:
    me = op("op1", {"bancoposta": 8, "spedizioni": 6})
    waiting = [
        call("c1", {"bancoposta": 5}, queue="bancoposta", priority=0, enqueued_at=100.0),
        call("c2", {"spedizioni": 5}, queue="spedizioni", priority=5, enqueued_at=900.0),
        call("c3", {"spedizioni": 5}, queue="spedizioni", priority=5, enqueued_at=800.0),
        call("c4", {"bancoposta": 5}, queue="bancoposta", priority=5, enqueued_at=850.0),
    ]
    assert best_call(me, waiting, now=NOW) == Decision(
        "c3",
        "c3 (queue spedizioni, priority 5, waited 200 s) for op1: spedizioni 6 >= 5 "
        "(first of 4 servable calls across all queues)",
    )
    decision = best_call(me, [c for c in waiting if c.priority == 0 or c.call_id == "c4"], now=NOW)
    assert decision is not None
    assert decision.choice == "c4"


def test_best_call_skips_calls_the_operator_cannot_serve() -> None:
    me = op("op1", {"bancoposta": 4})
    waiting = [
        call("c1", {"bancoposta": 7}, priority=9, enqueued_at=0.0),
        call("c2", {"bancoposta": 4}, tier="enterprise", enqueued_at=1.0),
        call("c3", {"bancoposta": 3}, enqueued_at=500.0),
    ]
    decision = best_call(me, waiting, now=NOW)
    assert decision is not None
    assert decision.choice == "c3"
    assert best_call(me, waiting[:2], now=NOW) is None


def test_best_call_none_for_unavailable_operator() -> None:
    waiting = [call("c1", {})]
    assert best_call(op("op1", {}, state=AgentState.WRAP_UP), waiting, now=NOW) is None
    assert best_call(op("op1", {}, registered=False), waiting, now=NOW) is None


def test_best_call_is_deterministic_with_full_ties() -> None:
    me = op("op1", {})
    waiting = [call(f"c{i}", {}, queue=f"q{i % 2}", enqueued_at=500.0) for i in (3, 1, 2)]
    results = {best_call(me, list(order), now=NOW) for order in itertools.permutations(waiting)}
    assert {r.choice for r in results if r is not None} == {"c1"}
    assert len(results) == 1


# --- the caller's last operator -------------------------------------------------------------------


def test_preferred_operator_wins_when_ready_and_eligible_even_if_not_best() -> None:
    base = call("c1", {"bancoposta": 5})
    preferring = WaitingCall(
        call_id="c1",
        queue=base.queue,
        priority=0,
        enqueued_at=base.enqueued_at,
        requirements=base.requirements,
        tier="general",
        preferred="op2",
    )
    ops = [op("op1", {"bancoposta": 10}, idle_since=100.0), op("op2", {"bancoposta": 6}, idle_since=990.0)]
    assert best_operator(base, ops, BEST, now=NOW) == Decision(
        "op1", "op1: bancoposta 10 >= 5, idle 900 s (best of 2 eligible, strategy best_skill)"
    )
    decision = best_operator(preferring, ops, BEST, now=NOW)
    assert decision is not None and decision.choice == "op2"
    assert decision.reason.startswith("op2: handled this caller's last contact")


@pytest.mark.parametrize(
    "preferred_view",
    [
        op("op2", {"bancoposta": 3}),  # below the minimum
        op("op2", {"bancoposta": 9}, state=AgentState.NOT_READY),  # paused
        op("op2", {"bancoposta": 9}, registered=False),  # softphone gone
    ],
)
def test_preferred_operator_not_eligible_then_strategy_decides(preferred_view: OperatorView) -> None:
    c = WaitingCall(
        call_id="c1",
        queue="q",
        priority=0,
        enqueued_at=950.0,
        requirements={"bancoposta": 5},
        tier="general",
        preferred="op2",
    )
    decision = best_operator(c, [op("op1", {"bancoposta": 7}), preferred_view], BEST, now=NOW)
    assert decision is not None and decision.choice == "op1"
