"""The ACD service against the real Redis: agent actions, routing both ways, offers across
controllers, healing, with an injected clock (no Asterisk: offers are collected, not rung)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from acd.agents import (
    Agent,
    AgentState,
    IllegalTransition,
    Login,
    Logout,
    NotReadyReason,
    Pause,
    Ready,
    Registered,
    Unregistered,
)
from acd.routing import can_serve
from ivr.config import IvrConfig, load_config
from unico.acd_service import AcdService, AgentInterrupt, CallMessage, Offer, TransferRequest, UnknownAgent
from unico.acd_service import _decode as decode
from unico.acd_service import _encode as encode
from unico.feature_codes import operator_of

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def config() -> IvrConfig:
    return load_config(ROOT / "dialplan", ROOT / "skills")


class Harness:
    def __init__(self, redis: aioredis.Redis, prefix: str, config: IvrConfig, name: str, clock: Clock) -> None:
        self.inbox: list[CallMessage] = []
        self.calls: set[str] = set()
        self.acd = AcdService(
            redis=redis,
            prefix=prefix,
            controller_id=name,
            config=lambda: config,
            deliver=self.deliver,
            clock=clock,
            sweep_interval=3600,
        )

    def deliver(self, call_id: str, message: CallMessage) -> bool:
        if call_id not in self.calls:
            return False
        self.inbox.append(message)
        return True

    async def enqueue(self, call_id: str, queue: str, *, waited: float = 0.0, priority: int = 0) -> None:
        spec = self.acd.config.queues[queue]
        now = self.acd.clock()
        call = self.acd.waiting_call(call_id, spec, queue, priority=priority, enqueued_at=now - waited, waited=waited)
        self.calls.add(call_id)
        await self.acd.live.add_call(call)


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def site(redis: aioredis.Redis, config: IvrConfig) -> AsyncIterator[tuple[Harness, Harness, Clock]]:
    prefix = f"test:acdsvc:{uuid.uuid4().hex}:"
    clock = Clock()
    a, b = (Harness(redis, prefix, config, name, clock) for name in ("ctl-a", "ctl-b"))
    await a.acd.start()
    await b.acd.start()
    try:
        yield a, b, clock
    finally:
        await a.acd.close()
        await b.acd.close()
        await a.acd.live.wipe()


async def online(h: Harness, *ids: str) -> None:
    for agent_id in ids:
        await h.acd.agent_event(agent_id, Registered())
        await h.acd.agent_event(agent_id, Login())


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_given_roster_when_started_then_every_operator_logged_out_and_unknown_refused(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    agents = await a.acd.live.agents(a.acd.config.operators)
    assert set(agents) == set(a.acd.config.operators)
    assert {agent.state for agent in agents.values()} == {AgentState.LOGGED_OUT}
    with pytest.raises(UnknownAgent):
        await a.acd.agent_event("op9999", Login())
    with pytest.raises(IllegalTransition):
        await a.acd.agent_event("op1001", Ready())  # must log in first


async def test_given_operators_online_when_one_view_read_then_same_as_in_all_views(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    await online(a, "op1001", "op1006")
    await settle()
    views = {view.id: view for view in await a.acd.operator_views()}
    for agent_id in a.acd.config.operators:
        assert await a.acd.operator_view(agent_id) == views[agent_id]
    assert await a.acd.operator_view("op9999") is None

    for queue in ("bancoposta", "general"):
        await a.enqueue(f"c-{queue}", queue, waited=95)
        call = await a.acd.live.get_call(f"c-{queue}")
        assert call is not None
        serving = await a.acd.operator_views(serving=call)
        assert serving == [view for view in views.values() if can_serve(view, call)]
        await a.acd.live.forget_call(call.call_id)


async def test_given_unregistered_softphone_when_login_then_not_ready_until_it_registers(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    agent = await a.acd.agent_event("op1001", Login())
    assert (agent.state, agent.reason) == (AgentState.NOT_READY, NotReadyReason.UNREGISTERED)
    agent = await a.acd.agent_event("op1001", Registered())
    assert agent.state is AgentState.READY
    assert (await a.acd.agent_event("op1001", Login())).state is AgentState.READY, "logging in twice is harmless"


async def test_given_waiting_call_when_operator_becomes_ready_then_offer_with_reason(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    await a.enqueue("c1", "bancoposta", waited=5)
    assert not await a.acd.route_call("c1"), "nobody ready yet"
    await online(a, "op1001")  # bancoposta 9
    await settle()
    (offer,) = a.inbox
    assert isinstance(offer, Offer) and (offer.call_id, offer.agent_id) == ("c1", "op1001")
    assert "c1 (queue bancoposta" in offer.reason and "bancoposta 9 >= 7" in offer.reason
    agent = await a.acd.live.get_agent("op1001")
    assert agent is not None and (agent.state, agent.call_id) == (AgentState.RINGING, "c1")


async def test_given_calls_in_several_queues_when_operator_frees_up_then_highest_priority_then_longest_wait(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    await a.enqueue("old-general", "general", waited=100)
    await a.enqueue("vip-bancoposta", "bancoposta", waited=10, priority=15)
    await a.enqueue("new-bancoposta", "bancoposta", waited=50, priority=5)
    await online(a, "op1001")  # general + specialist: can serve all three
    await settle()
    assert [m.call_id for m in a.inbox] == ["vip-bancoposta"]


async def test_given_call_owned_by_other_controller_when_claimed_here_then_offer_reaches_owner(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, b, _ = site
    await b.enqueue("cb", "general", waited=1)  # b holds the caller's channel
    await online(a, "op1002")  # the operator's login arrives at a
    for _ in range(100):
        if b.inbox:
            break
        await asyncio.sleep(0.02)
    assert [type(m) for m in b.inbox] == [Offer] and a.inbox == []
    assert b.inbox[0].agent_id == "op1002"  # type: ignore[union-attr]


async def test_given_operator_ringing_when_pausing_then_interrupt_goes_to_the_owner(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    await a.enqueue("c1", "general")
    await online(a, "op1002")
    await settle()
    agent = await a.acd.agent_event("op1002", Pause(NotReadyReason.BREAK))
    assert agent.state is AgentState.RINGING, "the owner decides; the state is unchanged until it does"
    interrupt = a.inbox[-1]
    assert isinstance(interrupt, AgentInterrupt) and interrupt.event == Pause(NotReadyReason.BREAK)
    # the owner releases: back to the head of the line, operator paused
    assert await a.acd.release_offer(
        "op1002", "c1", requeue=True, agent_state=AgentState.NOT_READY, reason=NotReadyReason.BREAK
    )
    assert [c.call_id for c in await a.acd.live.waiting("general")] == ["c1"]


async def test_given_operator_on_a_call_when_softphone_reported_again_then_no_write_until_it_changes(
    site: tuple[Harness, Harness, Clock],
) -> None:
    """Asterisk reports an operator's endpoint on each change of its channels: while the operator
    rings or talks, "still online" is not a change, so it costs no write (and no event to every
    controller); going offline is one."""
    a, _, _ = site
    await a.enqueue("c1", "general")
    await online(a, "op1002")
    await settle()
    writes: list[str] = []
    set_agent = a.acd.live.set_agent

    async def counted(agent: Agent, **kwargs: Any) -> bool:
        writes.append(agent.state.value)
        return await set_agent(agent, **kwargs)

    a.acd.live.set_agent = counted  # type: ignore[method-assign]
    ringing = await a.acd.agent_event("op1002", Registered(), by="softphone")
    assert (ringing.state, ringing.registered, ringing.call_id, writes) == (AgentState.RINGING, True, "c1", [])
    assert await set_agent(replace(ringing, state=AgentState.ON_CALL), expected=AgentState.RINGING)  # answered
    talking = await a.acd.agent_event("op1002", Registered(), by="softphone")
    assert (talking.state, talking.registered, writes) == (AgentState.ON_CALL, True, [])
    gone = await a.acd.agent_event("op1002", Unregistered(), by="softphone")
    assert (gone.state, gone.registered, writes) == (AgentState.ON_CALL, False, ["on_call"])
    stored = await a.acd.live.get_agent("op1002")
    assert stored is not None and (stored.registered, stored.call_id) == (False, "c1")


async def test_given_owner_gone_when_operator_rings_too_long_then_sweep_heals_and_requeues(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, clock = site
    await a.enqueue("c1", "general")
    await online(a, "op1002")
    await settle()
    a.calls.clear()  # the owning call vanished without releasing
    clock.now += 60
    await a.acd.sweep()
    agent = await a.acd.live.get_agent("op1002")
    assert agent is not None and (agent.state, agent.reason) == (AgentState.NOT_READY, NotReadyReason.RING_NO_ANSWER)
    assert [c.call_id for c in await a.acd.live.waiting("general")] == ["c1"]


async def test_given_escalated_call_when_overflow_to_tier_then_that_tier_may_take_it(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    await online(a, "op1006")  # general + enterprise, bancoposta 6: not specialist
    await settle()  # the routing that logging in starts finds no call, and ends before the calls arrive
    await a.enqueue("early", "bancoposta", waited=10)
    assert not await a.acd.route_call("early")
    await a.enqueue("late", "bancoposta", waited=95)  # "after 90s overflow to enterprise"
    assert await a.acd.route_call("late")
    await settle()
    assert [m.call_id for m in a.inbox] == ["late"]
    assert "overflow to tier enterprise" in a.inbox[0].reason  # type: ignore[union-attr]


async def test_given_waiting_line_when_position_asked_then_priority_first_then_arrival(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    await a.enqueue("first", "general", waited=30)
    await a.enqueue("second", "general", waited=20)
    await a.enqueue("vip", "general", waited=1, priority=10)
    assert [await a.acd.position(c, "general") for c in ("vip", "first", "second")] == [1, 2, 3]
    assert await a.acd.position("nope", "general") is None


async def test_given_logout_when_no_call_then_logged_out(site: tuple[Harness, Harness, Clock]) -> None:
    a, _, _ = site
    await online(a, "op1003")
    assert (await a.acd.agent_event("op1003", Logout())).state is AgentState.LOGGED_OUT


@pytest.mark.parametrize(
    "message",
    [
        Offer("c1", "op1001", "op1001: bancoposta 9 >= 7"),
        AgentInterrupt("c1", "op1001", Pause(NotReadyReason.LUNCH)),
        AgentInterrupt("c1", "op1001", Logout()),
        TransferRequest("c1", queue="enterprise", by="op1001"),
        TransferRequest("c1", operator="op1005", by="api"),
    ],
)
def test_given_message_when_sent_between_controllers_then_decoded_unchanged(message: CallMessage) -> None:
    assert decode(encode(message)) == message


@pytest.mark.parametrize("raw", ["{}", '{"type": "nope", "call": "c"}', "not json", '{"type": "offer"}'])
def test_given_garbage_on_the_channel_when_decoded_then_clear_error(raw: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        decode(raw)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PJSIP/op1001-0000002a", "op1001"),
        ("PJSIP/op-x.1-00000001", "op-x.1"),
        ("SIP/op1001-1", None),
        ("PJSIP/x", None),
    ],
)
def test_given_channel_name_then_operator_id(name: str, expected: str | None) -> None:
    assert operator_of(name) == expected


async def test_given_wrap_up_over_when_its_timer_fires_then_ready_on_one_read_and_a_late_timer_changes_nothing(
    site: tuple[Harness, Harness, Clock],
) -> None:
    a, _, _ = site
    await online(a, "op1002")
    ready = await a.acd.live.get_agent("op1002")
    assert ready is not None and ready.state is AgentState.READY
    assert await a.acd.live.set_agent(replace(ready, state=AgentState.WRAP_UP), expected=AgentState.READY)
    reads: list[str] = []
    get_agent = a.acd.live.get_agent

    async def counted(agent_id: str) -> Agent | None:
        reads.append(agent_id)
        return await get_agent(agent_id)

    a.acd.live.get_agent = counted  # type: ignore[method-assign]
    a.acd.start_wrapup("op1002", 0)
    await settle()
    agent = await get_agent("op1002")
    assert agent is not None and agent.state is AgentState.READY
    assert reads == ["op1002"], "one read of the operator for the end of every wrap-up"

    # a timer that comes too late (the operator is ringing for the next call): no interrupt, no change
    await a.enqueue("c2", "general")
    assert await a.acd.route_call("c2")
    (offer,) = a.inbox
    assert isinstance(offer, Offer) and offer.agent_id == "op1002"
    await a.acd._end_wrapup("op1002")
    ringing = await get_agent("op1002")
    assert ringing is not None and (ringing.state, ringing.call_id) == (AgentState.RINGING, "c2")
    assert a.inbox == [offer], "the ringing call's owner hears nothing of a stale wrap-up"
