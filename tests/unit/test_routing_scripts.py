"""The one-round-trip routing scripts (``LiveState.claim_best_agent``, ``claim_best_call``) against
``acd.routing``, the rules' reference, on the real Redis.

The scripts apply the live half of the rules inside Redis (free, idle longest; most urgent call the
operator fits). Random rosters, live states and calls, with levels one either side of every
minimum, ties in idle time and enqueue time, overflow routes and preferred operators: the scripts
must claim exactly what ``best_operator`` / ``best_call`` choose on the same state, with the same
counts for the reason, or nothing when they choose nothing.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from acd.agents import Agent, AgentState, NotReadyReason
from acd.live import LeaseLost, LiveState, Pick
from acd.routing import (
    OperatorView,
    Route,
    RoutingStrategy,
    WaitingCall,
    best_call,
    best_operator,
    can_serve,
    rank_operators,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
NOW = 50_000.0
SKILLS = ("pacchi", "conto", "carte")
TIERS = ("general", "specialist", "enterprise")


@dataclass(frozen=True)
class Spec:
    tiers: frozenset[str]
    skills: dict[str, int]


@pytest.fixture
async def live() -> AsyncIterator[LiveState]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    state = LiveState(client, prefix=f"test:routescripts:{uuid.uuid4().hex}:")
    try:
        yield state
    finally:
        await state.wipe()
        await client.aclose()


def _levels(rng: random.Random) -> dict[str, int]:
    return {skill: rng.randint(3, 6) for skill in rng.sample(SKILLS, rng.randint(0, 2))}


def _roster(rng: random.Random, size: int) -> dict[str, Spec]:
    return {
        f"op{i:02d}": Spec(
            frozenset(rng.sample(TIERS, rng.randint(1, 2))),
            {skill: rng.randint(2, 7) for skill in rng.sample(SKILLS, rng.randint(0, 3))},
        )
        for i in range(size)
    }


def _agent(rng: random.Random, agent_id: str) -> Agent:
    state = rng.choice((AgentState.READY, AgentState.READY, AgentState.READY, AgentState.NOT_READY, AgentState.WRAP_UP))
    return Agent(
        id=agent_id,
        state=state,
        reason=NotReadyReason.BREAK if state is AgentState.NOT_READY else None,
        since=NOW - rng.choice((1, 30, 30, 300)),  # ties on purpose
        registered=rng.random() < 0.85,
        last_call_end=rng.choice((None, None, NOW - 10, NOW - 30, NOW - 500)),
    )


def _call(rng: random.Random, call_id: str, owner: str) -> WaitingCall:
    also = tuple(Route(rng.choice(TIERS), _levels(rng)) for _ in range(rng.choice((0, 0, 1, 2))))
    return WaitingCall(
        call_id=call_id,
        queue=rng.choice(("q1", "q2", "q3")),
        priority=rng.choice((0, 0, 0, 5, 10)),
        enqueued_at=NOW - rng.choice((5, 20, 20, 60, 300)),  # ties on purpose
        requirements=_levels(rng),
        tier=rng.choice(TIERS),
        also=also,
        owner=owner,
        preferred=rng.choice((None, None, "op03", "op07")),
    )


def _view(agent: Agent, spec: Spec) -> OperatorView:
    return OperatorView(
        id=agent.id,
        tiers=spec.tiers,
        skills=spec.skills,
        state=agent.state,
        idle_since=max(agent.since, agent.last_call_end or 0.0),
        registered=agent.registered,
    )


@pytest.mark.parametrize("seed", range(6))
async def test_given_random_roster_and_states_when_a_call_arrives_then_script_claims_what_best_operator_chooses(
    live: LiveState, seed: int
) -> None:
    rng = random.Random(seed)
    decided = 0
    for round_ in range(80):
        roster = _roster(rng, rng.randint(1, 14))
        agents = {agent_id: _agent(rng, agent_id) for agent_id in roster}
        for agent in agents.values():
            await live.set_agent(agent)
        call = _call(rng, f"c{seed}-{round_}", "ctl-a")
        await live.add_call(call)
        strategy = rng.choice(list(RoutingStrategy))
        views = [_view(agents[agent_id], spec) for agent_id, spec in roster.items()]
        expected = best_operator(call, views, strategy, now=NOW)
        fitting = {agent_id: spec for agent_id, spec in roster.items() if can_serve(spec, call)}

        pick = await live.claim_best_agent(call, rank_operators(call, fitting, strategy), "ctl-a", now=NOW)

        if expected is None:
            assert pick.status is Pick.NOBODY
            assert await live.call_status(call.call_id) == "waiting"
        else:
            decided += 1
            free = [v for v in views if v.state is AgentState.READY and v.registered and can_serve(v, call)]
            assert (pick.status, pick.agent_id, pick.free) == (Pick.WON, expected.choice, len(free))
            chosen = next(v for v in views if v.id == expected.choice)
            assert pick.idle_since == chosen.idle_since
            held = await live.get_agent(expected.choice)
            assert held is not None and (held.state, held.call_id) == (AgentState.RINGING, call.call_id)
            assert await live.call_status(call.call_id) == "claimed"
        await live.wipe()
    assert decided > 15, "too few decisions: the random states never let anyone win"


@pytest.mark.parametrize("seed", range(6))
async def test_given_random_waiting_calls_when_an_operator_frees_up_then_script_claims_what_best_call_chooses(
    live: LiveState, seed: int
) -> None:
    rng = random.Random(1000 + seed)
    decided = 0
    for round_ in range(80):
        spec = _roster(rng, 1)["op00"]
        agent = _agent(rng, "op00")
        await live.set_agent(agent)
        calls = [_call(rng, f"c{seed}-{round_}-{i}", rng.choice(("ctl-a", "ctl-b"))) for i in range(rng.randint(0, 12))]
        for call in calls:
            await live.add_call(call)
        claimed_elsewhere = rng.sample(calls, min(len(calls), rng.choice((0, 0, 1))))
        for call in claimed_elsewhere:  # claimed by another operator meanwhile: not waiting any more
            await live.set_agent(Agent(id="other", state=AgentState.READY, reason=None, since=NOW, registered=True))
            assert await live.claim("other", call.call_id, "ctl-b", now=NOW, queue=call.queue)
        waiting = [call for call in calls if call not in claimed_elsewhere]
        expected = best_call(_view(agent, spec), waiting, now=NOW)

        pick = await live.claim_best_call(
            "op00", spec.tiers, spec.skills, ["q1", "q2", "q3"], "ctl-a", now=NOW, channel_prefix="test:ctl:"
        )

        if expected is None:
            assert pick.status in (Pick.NOBODY, Pick.GONE)
            statuses = [await live.call_status(call.call_id) for call in waiting]
            assert pick.status is Pick.GONE or statuses == ["waiting"] * len(waiting)
        else:
            decided += 1
            servable = [call for call in waiting if can_serve(spec, call)]
            assert pick.status is Pick.WON and pick.call is not None
            assert (pick.call.call_id, pick.servable) == (expected.choice, len(servable))
            assert pick.call == next(call for call in waiting if call.call_id == expected.choice)
            held = await live.get_agent("op00")
            assert held is not None and (held.state, held.call_id) == (AgentState.RINGING, expected.choice)
        await live.wipe()
    assert decided > 15, "too few decisions: the random states never let anyone win"


async def test_given_call_another_owns_or_escalated_when_claim_best_agent_then_hands_back_without_claiming(
    live: LiveState,
) -> None:
    await live.set_agent(Agent(id="op1", state=AgentState.READY, reason=None, since=NOW, registered=True))
    spec = Spec(frozenset({"general"}), {"pacchi": 5})
    call = WaitingCall(
        call_id="c1", queue="q1", priority=0, enqueued_at=NOW, requirements={"pacchi": 3}, tier="general", owner="b"
    )
    await live.add_call(call)
    pick = await live.claim_best_agent(call, [["op1"]], "a", now=NOW)
    assert pick.status is Pick.FOREIGN
    mine = WaitingCall(
        call_id="c2", queue="q1", priority=0, enqueued_at=NOW, requirements={"pacchi": 3}, tier="general", owner="a"
    )
    await live.add_call(mine)
    await live.update_call("c2", requirements={"pacchi": 2}, also=(), priority=0)
    stale = WaitingCall(
        call_id="c2", queue="q1", priority=0, enqueued_at=NOW, requirements={"pacchi": 3}, tier="general", owner="a"
    )
    assert (await live.claim_best_agent(stale, [["op1"]], "a", now=NOW)).status is Pick.STALE
    assert (await live.get_agent("op1")).state is AgentState.READY  # type: ignore[union-attr]
    assert [await live.call_status(c) for c in ("c1", "c2")] == ["waiting", "waiting"]
    current = live.written_call("c2")
    assert current is not None and can_serve(spec, current)
    pick = await live.claim_best_agent(current, [["op1"]], "a", now=NOW)
    assert (pick.status, pick.agent_id, pick.free) == (Pick.WON, "op1", 1)
    assert (await live.claim_best_agent(current, [["op1"]], "a", now=NOW)).status is Pick.GONE


async def test_given_lease_held_by_another_when_routing_scripts_run_then_lease_lost_and_nothing_claimed(
    live: LiveState,
) -> None:
    await live.set_agent(Agent(id="op1", state=AgentState.READY, reason=None, since=NOW, registered=True))
    call = WaitingCall(
        call_id="c1", queue="q1", priority=0, enqueued_at=NOW, requirements={}, tier="general", owner="a"
    )
    await live.add_call(call)
    lease_key = f"{live.prefix}lease:app"
    await live._redis.set(lease_key, "b-token")
    with pytest.raises(LeaseLost):
        await live.claim_best_agent(call, [["op1"]], "a", now=NOW, lease=(lease_key, "a-token"))
    with pytest.raises(LeaseLost):
        await live.claim_best_call(
            "op1", ["general"], {}, ["q1"], "a", now=NOW, channel_prefix="x:", lease=(lease_key, "a-token")
        )
    assert await live.call_status("c1") == "waiting"
    pick = await live.claim_best_call(
        "op1", ["general"], {}, ["q1"], "a", now=NOW, channel_prefix="x:", lease=(lease_key, "b-token")
    )
    assert pick.status is Pick.WON


async def test_given_operators_logged_in_or_out_when_counted_then_only_logged_in_count(live: LiveState) -> None:
    for agent_id, state in (("op1", AgentState.READY), ("op2", AgentState.LOGGED_OUT), ("op3", AgentState.NOT_READY)):
        reason = NotReadyReason.BREAK if state is AgentState.NOT_READY else None
        await live.set_agent(Agent(id=agent_id, state=state, reason=reason, since=NOW, registered=True))
    assert await live.count_logged_in(["op1", "op2", "op3", "op9"]) == 2
    assert await live.count_logged_in([]) == 0
    # "could anyone?" stops at the first: the logged-out and unknown ones before it do not count
    assert await live.count_logged_in(["op2", "op9", "op3", "op1"], up_to=1) == 1
    assert await live.count_logged_in(["op2", "op9"], up_to=1) == 0
    assert await live.count_logged_in(["op1", "op2", "op3"], up_to=5) == 2
