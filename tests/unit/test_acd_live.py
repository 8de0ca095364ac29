"""Live ACD state against the real Redis on 127.0.0.1:6379: claims, releases, races, no leaks.

Each test uses its own key prefix and ends by checking that nothing is left under it.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from unittest import mock

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError

from acd.agents import Agent, AgentState, NotReadyReason
from acd.live import LiveState, Pick
from acd.routing import Route, WaitingCall

REDIS_URL = "redis://127.0.0.1:6379/0"
NOW = 1000.0


@pytest.fixture
async def prefix() -> str:
    return f"test:acd:{uuid.uuid4().hex}:"


@pytest.fixture
async def live(prefix: str) -> AsyncIterator[LiveState]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.ping()
    except RedisConnectionError:
        await client.aclose()
        pytest.fail("no Redis on 127.0.0.1:6379: `make test` starts it (scripts/bootstrap.sh)")
    state = LiveState(client, prefix)
    yield state
    await state.wipe()
    assert await state.keys() == []
    await client.aclose()


def ready(agent_id: str, *, registered: bool = True) -> Agent:
    return Agent(id=agent_id, state=AgentState.READY, since=NOW - 60, registered=registered)


def waiting_call(
    call_id: str, *, queue: str = "bancoposta", enqueued_at: float = 900.0, priority: int = 0
) -> WaitingCall:
    return WaitingCall(
        call_id=call_id,
        queue=queue,
        priority=priority,
        enqueued_at=enqueued_at,
        requirements={"bancoposta": 7},
        tier="general",
    )


async def test_agent_round_trip_and_compare_and_set(live: LiveState) -> None:
    agent = Agent(
        id="op1",
        state=AgentState.NOT_READY,
        reason=NotReadyReason.LUNCH,
        since=12.5,
        registered=True,
        last_call_end=10.25,
    )
    assert await live.set_agent(agent)
    assert await live.get_agent("op1") == agent
    assert await live.get_agent("nobody") is None
    assert not await live.set_agent(ready("op1"), expected=AgentState.READY)
    assert await live.set_agent(ready("op1"), expected=AgentState.NOT_READY)
    assert await live.agent_ids() == ["op1"]


async def test_call_round_trip_and_removal_leaves_no_keys(live: LiveState) -> None:
    call = waiting_call("c1")
    await live.add_call(call)
    assert await live.waiting("bancoposta") == [call]
    assert await live.remove_call("c1")
    assert not await live.remove_call("c1")
    assert await live.waiting("bancoposta") == []
    assert await live.keys() == []


async def test_given_a_snapshot_when_a_call_joins_its_line_then_line_snapshot_and_owner_in_one_round_trip(
    live: LiveState,
) -> None:
    sent: list[int] = []
    execute = Pipeline.execute

    async def counted(pipe: Pipeline, *args: Any, **kwargs: Any) -> Any:
        sent.append(len(pipe.command_stack))
        return await execute(pipe, *args, **kwargs)

    call = replace(waiting_call("c1"), owner="ctl-a")
    with mock.patch.object(Pipeline, "execute", counted):
        await live.add_call(call, snapshot='{"call_id": "c1"}')
    assert len(sent) == 1, "one round trip"
    assert await live.waiting("bancoposta") == [call]
    assert (await live.sessions(), await live.owner("c1")) == ({"c1": '{"call_id": "c1"}'}, "ctl-a")
    with pytest.raises(ValueError, match="owner"):
        await live.add_call(waiting_call("c2"), snapshot="{}")
    assert await live.waiting("bancoposta") == [call], "refused before anything was written"
    await live.drop_session("c1")
    assert await live.remove_call("c1")


async def test_given_ready_agent_and_waiting_call_when_claimed_then_ringing_once(live: LiveState) -> None:
    await live.set_agent(ready("op1"))
    await live.add_call(waiting_call("c1"))
    await live.add_call(waiting_call("c2", enqueued_at=950.0))

    assert await live.claim("op1", "c1", "ctl-a", "t1", now=NOW)
    assert not await live.claim("op1", "c2", "ctl-a", "t1", now=NOW)  # agent already ringing
    assert not await live.claim("op1", "c1", "ctl-b", now=NOW)

    agent = await live.get_agent("op1")
    assert agent is not None
    assert (agent.state, agent.call_id, agent.since) == (AgentState.RINGING, "c1", NOW)
    assert await live.claim_holder("op1") == ("ctl-a", "t1")
    assert [c.call_id for c in await live.waiting("bancoposta")] == ["c2"]

    await live.set_agent(ready("op2"))
    assert not await live.claim("op2", "c1", "ctl-b", now=NOW)  # call already claimed


@pytest.mark.parametrize(
    "agent",
    [
        ready("op1", registered=False),
        Agent(id="op1", state=AgentState.NOT_READY, reason=NotReadyReason.BREAK, registered=True),
        Agent(id="op1", state=AgentState.WRAP_UP, registered=True),
        Agent(id="op1", state=AgentState.LOGGED_OUT, registered=True),
    ],
)
async def test_given_unavailable_agent_when_claimed_then_refused(live: LiveState, agent: Agent) -> None:
    await live.set_agent(agent)
    await live.add_call(waiting_call("c1"))
    assert not await live.claim("op1", "c1", "ctl-a", now=NOW)
    assert not await live.claim("ghost", "c1", "ctl-a", now=NOW)
    assert not await live.claim("op1", "no-such-call", "ctl-a", now=NOW)
    assert [c.call_id for c in await live.waiting("bancoposta")] == ["c1"]


async def test_given_ring_no_answer_when_released_then_call_back_at_head_with_original_time(live: LiveState) -> None:
    await live.set_agent(ready("op1"))
    for call_id, at in (("c0", 50.0), ("c1", 100.0), ("c2", 200.0), ("c3", 300.0)):
        await live.add_call(waiting_call(call_id, enqueued_at=at))
    assert await live.claim("op1", "c1", "ctl-a", "t1", now=NOW)
    await live.remove_call("c0")  # served elsewhere meanwhile: c1 is now first in line

    assert not await live.release("op1", "c1", "ctl-b", "t1", now=NOW + 15)  # not their claim
    assert not await live.release("op1", "c1", "ctl-a", "stale", now=NOW + 15)  # fenced out
    assert await live.release("op1", "c1", "ctl-a", "t1", now=NOW + 15)
    assert not await live.release("op1", "c1", "ctl-a", "t1", now=NOW + 15)  # only once

    line = await live.waiting("bancoposta")
    assert [(c.call_id, c.enqueued_at) for c in line] == [("c1", 100.0), ("c2", 200.0), ("c3", 300.0)]
    agent = await live.get_agent("op1")
    assert agent is not None
    assert (agent.state, agent.reason, agent.call_id, agent.since) == (
        AgentState.NOT_READY,
        NotReadyReason.RING_NO_ANSWER,
        None,
        NOW + 15,
    )
    assert await live.claim_holder("op1") is None


async def test_given_caller_gone_while_ringing_when_released_then_call_forgotten_and_nothing_leaks(
    live: LiveState,
) -> None:
    await live.set_agent(ready("op1"))
    await live.add_call(waiting_call("c1"))
    assert await live.claim("op1", "c1", "ctl-a", now=NOW)
    assert await live.release(
        "op1", "c1", "ctl-a", now=NOW + 3, agent_state=AgentState.READY, reason=None, requeue=False
    )
    agent = await live.get_agent("op1")
    assert agent is not None
    assert (agent.state, agent.reason, agent.call_id) == (AgentState.READY, None, None)
    assert await live.waiting("bancoposta") == []

    await live.remove_agent("op1")
    assert await live.keys() == []


async def test_given_claim_when_pause_written_with_stale_state_then_refused(live: LiveState) -> None:
    await live.set_agent(ready("op1"))
    await live.add_call(waiting_call("c1"))
    assert await live.claim("op1", "c1", "ctl-a", now=NOW)
    paused = Agent(id="op1", state=AgentState.NOT_READY, reason=NotReadyReason.BREAK, since=NOW, registered=True)
    assert not await live.set_agent(paused, expected=AgentState.READY)
    agent = await live.get_agent("op1")
    assert agent is not None
    assert agent.state is AgentState.RINGING


async def _controllers(prefix: str, count: int) -> list[tuple[aioredis.Redis, LiveState]]:
    clients = [aioredis.Redis.from_url(REDIS_URL, decode_responses=True) for _ in range(count)]
    return [(client, LiveState(client, prefix)) for client in clients]


async def test_given_many_controllers_racing_then_no_agent_gets_two_calls_and_no_call_two_agents(
    live: LiveState, prefix: str
) -> None:
    agents = [f"op{i}" for i in range(10)]
    calls = [f"c{i}" for i in range(20)]
    for agent_id in agents:
        await live.set_agent(ready(agent_id))
    for i, call_id in enumerate(calls):
        await live.add_call(waiting_call(call_id, queue=f"q{i % 3}", enqueued_at=float(i)))

    controllers = await _controllers(prefix, 5)
    wins: list[tuple[str, str, str]] = []
    start = asyncio.Event()

    async def claimer(task: int) -> None:
        _, state = controllers[task % len(controllers)]
        controller = f"ctl{task % len(controllers)}"
        rng = random.Random(task)
        pairs = [(a, c) for a in agents for c in calls]
        rng.shuffle(pairs)
        await start.wait()
        for agent_id, call_id in pairs[:60]:
            if await state.claim(agent_id, call_id, controller, str(task), now=NOW):
                wins.append((agent_id, call_id, controller))

    try:
        tasks = [asyncio.create_task(claimer(i)) for i in range(50)]
        start.set()
        await asyncio.gather(*tasks)
    finally:
        for client, _ in controllers:
            await client.aclose()

    won_agents = [a for a, _, _ in wins]
    won_calls = [c for _, c, _ in wins]
    assert wins, "nobody won anything: the race did not happen"
    assert len(set(won_agents)) == len(won_agents)
    assert len(set(won_calls)) == len(won_calls)

    # Redis agrees with what the winners were told, and no call was lost
    for agent_id, call_id, controller in wins:
        agent = await live.get_agent(agent_id)
        assert agent is not None
        assert (agent.state, agent.call_id) == (AgentState.RINGING, call_id)
        holder = await live.claim_holder(agent_id)
        assert holder is not None
        assert holder[0] == controller
    still_waiting = {c.call_id for c in await live.all_waiting(["q0", "q1", "q2"])}
    assert still_waiting | set(won_calls) == set(calls)
    assert not still_waiting & set(won_calls)


async def test_given_one_agent_and_fifty_controllers_then_exactly_one_call_claimed(
    live: LiveState, prefix: str
) -> None:
    await live.set_agent(ready("op1"))
    for i in range(50):
        await live.add_call(waiting_call(f"c{i}", enqueued_at=float(i)))
    controllers = await _controllers(prefix, 5)
    try:
        results = await asyncio.gather(
            *(controllers[i % 5][1].claim("op1", f"c{i}", f"ctl{i % 5}", now=NOW) for i in range(50))
        )
    finally:
        for client, _ in controllers:
            await client.aclose()
    assert results.count(True) == 1
    assert len(await live.waiting("bancoposta")) == 49


async def test_given_one_call_and_many_agents_then_exactly_one_agent_claims_it(live: LiveState, prefix: str) -> None:
    for i in range(10):
        await live.set_agent(ready(f"op{i}"))
    await live.add_call(waiting_call("c1"))
    controllers = await _controllers(prefix, 5)
    try:
        results = await asyncio.gather(
            *(controllers[i % 5][1].claim(f"op{i % 10}", "c1", f"ctl{i % 5}", now=NOW) for i in range(50))
        )
    finally:
        for client, _ in controllers:
            await client.aclose()
    assert results.count(True) == 1
    ringing = [a for a in [await live.get_agent(f"op{i}") for i in range(10)] if a and a.state is AgentState.RINGING]
    assert len(ringing) == 1
    assert ringing[0].call_id == "c1"


async def test_given_calls_in_several_queues_when_snapshot_taken_then_same_as_all_waiting_in_one_round_trip(
    live: LiveState, monkeypatch: pytest.MonkeyPatch
) -> None:
    await live.add_call(waiting_call("c1", queue="q1", enqueued_at=300.0))
    await live.add_call(waiting_call("c2", queue="q1", enqueued_at=100.0, priority=5))
    await live.add_call(waiting_call("c3", queue="q0", enqueued_at=200.0))
    escalated = WaitingCall(
        call_id="c4",
        queue="q2",
        priority=1,
        enqueued_at=50.0,
        requirements={},
        tier="general",
        also=(Route("specialist", {"bancoposta": 3}),),
        owner="ctl-a",
        preferred="op7",
    )
    await live.add_call(escalated)
    await live.set_agent(ready("op1"))
    assert await live.claim("op1", "c3", "ctl-a", now=NOW)  # claimed calls are not waiting

    queues = ["q2", "q1", "q0", "q1", "empty"]
    assert await live.snapshot_waiting(queues) == await live.all_waiting(queues)  # also loads the script

    sent: list[str] = []
    send = live._redis.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await send(*args, **options)

    monkeypatch.setattr(live._redis, "execute_command", counting)
    snapshot = await live.snapshot_waiting(queues)
    assert sent == ["EVALSHA"]
    assert [c.call_id for c in snapshot] == ["c2", "c1", "c4"]
    assert snapshot[2] == escalated
    assert await live.snapshot_waiting([]) == []
    assert await live.snapshot_waiting(["empty"]) == []


async def test_given_a_long_line_when_its_length_is_asked_then_one_command_whatever_the_length(
    live: LiveState, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(40):
        await live.add_call(waiting_call(f"c{i}", enqueued_at=float(i)))
    await live.add_call(waiting_call("other", queue="q9"))
    await live.set_agent(ready("op1"))
    assert await live.claim("op1", "c0", "ctl-a", now=NOW)  # claimed: out of the line
    sent: list[str] = []
    send = live._redis.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await send(*args, **options)

    monkeypatch.setattr(live._redis, "execute_command", counting)
    assert await live.queue_length("bancoposta") == 39
    assert await live.queue_length("nobody-here") == 0
    assert sent == ["ZCARD", "ZCARD"]


async def test_given_claimed_or_gone_call_when_read_as_waiting_then_none(live: LiveState) -> None:
    call = waiting_call("c1")
    await live.add_call(call)
    assert await live.get_waiting_call("c1") == call
    await live.set_agent(ready("op1"))
    assert await live.claim("op1", "c1", "ctl-a", now=NOW, queue="bancoposta")
    assert await live.get_call("c1") is not None
    assert await live.get_waiting_call("c1") is None
    assert await live.get_waiting_call("nobody") is None


async def test_given_call_moved_to_another_queue_when_claimed_with_old_queue_then_refused(live: LiveState) -> None:
    await live.set_agent(ready("op1"))
    await live.add_call(waiting_call("c1", queue="q1"))
    await live.remove_call("c1")
    await live.add_call(waiting_call("c1", queue="q2"))  # a transfer: same call, new line
    assert not await live.claim("op1", "c1", "ctl-a", now=NOW, queue="q1")
    assert await live.claim("op1", "c1", "ctl-a", now=NOW, queue="q2")
    assert await live.get_waiting_call("c1") is None


async def test_given_a_subscriber_when_agents_and_calls_change_then_each_change_is_announced(
    live: LiveState,
) -> None:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.subscribe(live.events_channel)
    confirmed = await pubsub.get_message(timeout=2.0)  # the subscription is in place
    assert confirmed is not None and confirmed["type"] == "subscribe"
    try:
        await live.set_agent(ready("op1"))
        await live.add_call(waiting_call("c1"))
        await live.update_call("c1", requirements={"bancoposta": 5}, also=(), priority=1)
        assert await live.claim("op1", "c1", "ctl", now=NOW)
        assert await live.release("op1", "c1", "ctl", now=NOW, requeue=True)
        assert not await live.set_agent(ready("op1"), expected=AgentState.ON_CALL)  # refused: no message
        await live.remove_call("c1")

        messages = []
        while len(messages) < 8:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
            assert message is not None, f"only {messages}"
            messages.append(message["data"])
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    finally:
        await pubsub.aclose()
        await client.aclose()
        await live.remove_agent("op1")

    assert messages == [
        "agent:op1",
        "queue:bancoposta",
        "call:c1",
        "agent:op1",
        "queue:bancoposta",  # claimed: the call left the line
        "agent:op1",
        "queue:bancoposta",  # released: back at the head of the line
        "queue:bancoposta",  # removed
    ]


async def test_given_many_fitting_operators_when_routing_a_call_then_the_request_does_not_grow_with_them(
    live: LiveState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidates travel as one argument, not as one key each: packing a few hundred keys per
    call cost the controller more than the routing itself (bench/capacity.py, py-spy)."""
    operators = [f"op{i:03d}" for i in range(200)]
    for agent_id in operators[:-1]:
        await live.set_agent(Agent(id=agent_id, state=AgentState.ON_CALL, since=NOW, registered=True))
    await live.set_agent(ready(operators[-1]))
    call = replace(waiting_call("c1"), owner="ctl-a")
    await live.add_call(call)
    sent: list[tuple[Any, ...]] = []
    send = live._redis.execute_command

    async def recording(*args: Any, **options: Any) -> Any:
        sent.append(args)
        return await send(*args, **options)

    monkeypatch.setattr(live._redis, "execute_command", recording)
    assert await live.count_logged_in(operators, up_to=0) == 200
    assert await live.count_logged_in(["op-nobody", operators[5]], up_to=1) == 1
    pick = await live.claim_best_agent(call, [operators[:100], operators[100:]], "ctl-a", now=NOW)
    assert (pick.status, pick.agent_id, pick.free) == (Pick.WON, operators[-1], 1)
    assert [args[0] for args in sent] == ["EVALSHA"] * 3
    assert max(len(args) for args in sent) < 20, [len(args) for args in sent]


async def test_given_conversations_ending_at_once_when_handle_times_recorded_then_none_is_lost(live: LiveState) -> None:
    """Two controllers (or two calls of one) ending conversations of one queue at the same moment
    both count in its average: the read and the write are one step in Redis."""
    await asyncio.gather(*(live.record_handle_time("bancoposta", 100.0, 200.0, weight=0.5) for _ in range(8)))
    # each fold halves the distance to 100 s: 200 -> 150 -> 125 -> ... -> 100 + 100 / 2**8
    assert await live.handle_time("bancoposta", 200.0) == pytest.approx(100.0 + 100.0 / 2**8)


async def test_given_a_call_when_removed_or_forgotten_then_one_round_trip_each(
    live: LiveState, monkeypatch: pytest.MonkeyPatch
) -> None:
    await live.add_call(waiting_call("c1"))
    await live.set_owner("c1", "ctl-a")
    await live.add_call(waiting_call("c2", queue="q9"))
    await live.set_owner("c2", "ctl-a")
    sent: list[str] = []
    send = live._redis.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await send(*args, **options)

    monkeypatch.setattr(live._redis, "execute_command", counting)
    assert await live.remove_call("c1")  # the conversation began: out of the line, still owned
    assert not await live.remove_call("c1")
    await live.forget_call("c2")  # the call is over: out of its line and of the owners
    await live.forget_call("c1")
    assert sent == ["EVALSHA"] * 4
    monkeypatch.undo()
    assert await live.waiting("bancoposta") == [] and await live.waiting("q9") == []
    assert await live.owners_of(["c1", "c2"]) == {}
    assert await live.get_call("c2") is None
