"""The routing path against the real Redis: one script per decision (choose and claim inside Redis),
the same choices and reasons as ``acd.routing`` on a full snapshot, offers carried by the claim, races.

Round trips are counted at the socket (every write to Redis is one), on a client of its own.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from acd.agents import Agent, AgentState, NotReadyReason
from acd.live import LiveState
from acd.routing import Route, RoutingStrategy, WaitingCall, best_call, best_operator
from ivr.config import IvrConfig, load_config
from unico.acd_service import AcdService, CallMessage, Offer

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
NOW = 10_000.0


class Writes:
    """A Redis client whose writes to the socket are counted: one per command or pipeline."""

    def __init__(self) -> None:
        self.count = 0
        counter = self

        class Counted(aioredis.Connection):
            async def send_packed_command(
                self, command: bytes | str | Iterable[bytes], check_health: bool = True
            ) -> None:
                counter.count += 1
                await super().send_packed_command(command, check_health)

        self.client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True, connection_class=Counted)


class Site:
    """One controller's ACD on its own counted client; offers for its calls land in ``inbox``."""

    def __init__(self, prefix: str, config: IvrConfig, name: str) -> None:
        self.writes = Writes()
        self.inbox: list[CallMessage] = []
        self.calls: set[str] = set()
        self.acd = AcdService(
            redis=self.writes.client,
            prefix=prefix,
            controller_id=name,
            config=lambda: config,
            deliver=self.deliver,
            clock=lambda: NOW,
            sweep_interval=3600,
        )

    def deliver(self, call_id: str, message: CallMessage) -> bool:
        if call_id not in self.calls:
            return False
        self.inbox.append(message)
        return True

    async def enqueue(
        self, call_id: str, queue: str, *, waited: float = 0.0, priority: int = 0, preferred: str | None = None
    ) -> WaitingCall:
        spec = self.acd.config.queues[queue]
        call = self.acd.waiting_call(
            call_id, spec, queue, priority=priority, enqueued_at=NOW - waited, waited=waited, preferred=preferred
        )
        self.calls.add(call_id)
        await self.acd.live.add_call(call)
        return call

    async def trips(self, coro: Any) -> tuple[Any, int]:
        before = self.writes.count
        result = await coro
        return result, self.writes.count - before


@pytest.fixture(scope="module")
def config() -> IvrConfig:
    return load_config(ROOT / "dialplan", ROOT / "skills")


@pytest.fixture
async def sites(config: IvrConfig) -> AsyncIterator[tuple[Site, Site]]:
    prefix = f"test:acdpath:{uuid.uuid4().hex}:"
    a, b = Site(prefix, config, "ctl-a"), Site(prefix, config, "ctl-b")
    await a.acd.sync_roster()
    await a.acd.live.snapshot_waiting(["warm-up"])  # open the connection, load the read script
    try:
        yield a, b
    finally:
        await a.acd.live.wipe()
        assert await a.acd.live.keys() == []
        await a.writes.client.aclose()
        await b.writes.client.aclose()


def agent(agent_id: str, state: AgentState = AgentState.READY, *, since: float = NOW - 60, **kw: Any) -> Agent:
    reason = NotReadyReason.BREAK if state is AgentState.NOT_READY else None
    return Agent(id=agent_id, state=state, reason=reason, since=since, registered=kw.pop("registered", True), **kw)


# --- the read script ------------------------------------------------------------------------------


async def test_given_call_and_agents_when_read_together_then_same_as_separate_reads(
    sites: tuple[Site, Site],
) -> None:
    live = sites[0].acd.live
    call = await sites[0].enqueue("c1", "bancoposta", waited=30, preferred="op1005")
    await live.set_agent(agent("op1001", last_call_end=NOW - 10))
    await live.set_agent(agent("op1005", AgentState.NOT_READY))
    ids = ["op1001", "op1005", "op9999"]
    read, trips = await sites[0].trips(live.read_call_and_agents("c1", ids))
    assert trips == 1
    assert read == (call, await live.agents(ids))
    assert set(read[1]) == {"op1001", "op1005"}, "unknown agents are left out"
    assert await live.read_call_and_agents("c1", []) == (call, {})


async def test_given_claimed_or_gone_call_when_read_with_agents_then_no_call_and_hint_kept_until_gone(
    sites: tuple[Site, Site],
) -> None:
    live = sites[0].acd.live
    await sites[0].enqueue("c1", "general")
    await live.set_agent(agent("op1002"))
    assert await live.claim("op1002", "c1", "ctl-a", now=NOW, queue="general")
    call, agents = await live.read_call_and_agents("c1", ["op1002"])
    assert call is None and agents["op1002"].state is AgentState.RINGING
    assert live.written_call("c1") is not None, "claimed, not gone: it may come back to the line"
    assert await live.release("op1002", "c1", "ctl-a", now=NOW, requeue=True)
    assert (await live.read_call_and_agents("c1", []))[0] == live.written_call("c1")
    await sites[1].acd.live.remove_call("c1")  # gone, by another process's hand
    assert await live.read_call_and_agents("c1", []) == (None, {})
    assert live.written_call("c1") is None, "a call gone from Redis is no longer hinted"


async def test_given_agent_and_queues_when_read_together_then_same_as_agent_and_snapshot(
    sites: tuple[Site, Site],
) -> None:
    live = sites[0].acd.live
    await sites[0].enqueue("c1", "general", waited=5)
    await sites[0].enqueue("c2", "bancoposta", waited=50, priority=3)
    await sites[0].enqueue("c3", "enterprise", waited=95)
    await live.set_agent(agent("op1001"))
    queues = ["general", "bancoposta", "enterprise", "general", "empty"]
    read, trips = await sites[0].trips(live.read_agent_and_waiting("op1001", queues))
    assert trips == 1
    assert read == (await live.get_agent("op1001"), await live.snapshot_waiting(queues))
    assert len(read[1]) == 3
    assert await live.read_agent_and_waiting("op9999", []) == (None, [])


# --- the claim carries the offer ------------------------------------------------------------------


async def _listen(channel: str) -> tuple[aioredis.Redis, Any]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    confirmed = await pubsub.get_message(timeout=2.0)
    assert confirmed is not None and confirmed["type"] == "subscribe"
    return client, pubsub


async def _drain(pubsub: Any, quiet: float = 0.2) -> list[str]:
    out = []
    while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=quiet)) is not None:
        out.append(message["data"])
    return out


async def test_given_claim_with_notify_when_won_then_published_once_and_when_lost_then_not(
    sites: tuple[Site, Site],
) -> None:
    live = sites[0].acd.live
    client, pubsub = await _listen("owner-channel")
    try:
        await sites[0].enqueue("c1", "general")
        await live.set_agent(agent("op1002"))
        await live.set_agent(agent("op1003"))
        assert await live.claim("op1002", "c1", "ctl-b", now=NOW, queue="general", notify=("owner-channel", "won"))
        assert not await live.claim("op1003", "c1", "ctl-b", now=NOW, queue="general", notify=("owner-channel", "x"))
        assert await _drain(pubsub) == ["won"]
    finally:
        await pubsub.aclose()
        await client.aclose()


async def test_given_controllers_racing_claims_with_notify_then_one_message_per_win_and_no_double_assignment(
    sites: tuple[Site, Site],
) -> None:
    live = sites[0].acd.live
    prefix = live.prefix
    agents = [f"op{i}" for i in range(8)]
    calls = [f"c{i}" for i in range(16)]
    for agent_id in agents:
        await live.set_agent(agent(agent_id))
    for i, call_id in enumerate(calls):
        call = WaitingCall(
            call_id=call_id, queue=f"q{i % 3}", priority=0, enqueued_at=float(i), requirements={}, tier="general"
        )
        await live.add_call(call)
    client, pubsub = await _listen("offers")
    states = [LiveState(aioredis.Redis.from_url(REDIS_URL, decode_responses=True), prefix) for _ in range(4)]
    wins: list[str] = []
    start = asyncio.Event()

    async def claimer(task: int) -> None:
        state = states[task % len(states)]
        pairs = [(a, c) for a in agents for c in calls]
        random.Random(task).shuffle(pairs)
        await start.wait()
        for agent_id, call_id in pairs[:40]:
            message = f"{agent_id} {call_id} {task}"
            if await state.claim(agent_id, call_id, f"ctl{task}", now=NOW, notify=("offers", message)):
                wins.append(message)

    try:
        tasks = [asyncio.create_task(claimer(i)) for i in range(40)]
        start.set()
        await asyncio.gather(*tasks)
        published = await _drain(pubsub)
    finally:
        for state in states:
            await state._redis.aclose()
        await pubsub.aclose()
        await client.aclose()
    assert wins, "nobody won anything: the race did not happen"
    assert sorted(published) == sorted(wins), "exactly the winners were announced, each once"
    won = [message.split()[:2] for message in wins]
    assert len({a for a, _ in won}) == len(won) and len({c for _, c in won}) == len(won)
    assert len(won) == len(agents), "every agent ended up with one call"


# --- the service: round trips and the same choices as acd.routing -----------------------------------


async def test_given_call_written_here_when_routed_then_one_round_trip(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    await a.acd.live.set_agent(agent("op1001"))
    await a.acd.live.set_agent(agent("op1005", since=NOW - 600))
    await a.enqueue("c1", "bancoposta", waited=5)
    routed, trips = await a.trips(a.acd.route_call("c1"))
    assert routed and trips == 1, "one script reads, chooses and claims"
    (offer,) = a.inbox
    assert isinstance(offer, Offer) and offer.agent_id == "op1005"
    assert (await a.acd.live.get_agent("op1005")).call_id == "c1"  # type: ignore[union-attr]

    await a.enqueue("c2", "bancoposta", waited=5)
    routed, trips = await a.trips(a.acd.route_call("c2"))
    assert routed and trips == 1
    await a.enqueue("c3", "bancoposta", waited=5)
    routed, trips = await a.trips(a.acd.route_call("c3"))
    assert not routed and trips == 1, "nobody ready: the same script says so"
    assert await a.acd.live.call_status("c3") == "waiting"
    assert (a.acd.decisions_one_trip, a.acd.decisions_fallback) == (2, 0)


async def test_given_call_written_by_another_controller_when_routed_here_then_one_more_read_and_offer_published(
    sites: tuple[Site, Site],
) -> None:
    a, b = sites
    await a.acd.live.set_agent(agent("op1002"))
    await b.enqueue("cb", "general", waited=5)  # b owns the caller
    client, pubsub = await _listen(a.acd.channel_for("ctl-b"))
    try:
        routed, trips = await a.trips(a.acd.route_call("cb"))
        published = await _drain(pubsub)
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert routed and trips == 3, "learn the call's routes, read, claim (the claim carries the offer)"
    assert a.inbox == [] and len(published) == 1 and '"agent": "op1002"' in published[0]


async def test_given_operator_freed_when_routed_then_one_round_trip_and_another_owner_gets_offer_with_reason(
    sites: tuple[Site, Site],
) -> None:
    a, b = sites
    await a.enqueue("c1", "general", waited=100)
    await b.enqueue("c2", "bancoposta", waited=10, priority=15)
    await a.acd.live.set_agent(agent("op1001"))
    await b.acd.start()  # b listens for offers of its calls
    try:
        routed, trips = await a.trips(a.acd.route_agent("op1001"))
        for _ in range(100):
            if b.inbox:
                break
            await asyncio.sleep(0.01)
    finally:
        await b.acd.close()
    assert routed and trips == 1, "one script reads, chooses, claims and publishes the offer to c2's owner"
    assert (await a.acd.live.get_agent("op1001")).call_id == "c2"  # type: ignore[union-attr]
    assert a.inbox == []
    (offer,) = b.inbox
    assert isinstance(offer, Offer) and (offer.call_id, offer.agent_id) == ("c2", "op1001")
    assert offer.reason.startswith("c2 (queue bancoposta, priority 15, waited 10 s) for op1001: bancoposta")
    assert offer.reason.endswith("(first of 2 servable calls across all queues)"), offer.reason
    await a.acd.live.set_agent(agent("op1003", AgentState.NOT_READY))
    routed, trips = await a.trips(a.acd.route_agent("op1003"))
    assert not routed and trips == 1


async def test_given_call_escalated_by_another_process_when_routed_here_then_its_current_routes_decide(
    sites: tuple[Site, Site],
) -> None:
    a, b = sites
    await a.acd.live.set_agent(agent("op1006"))  # general + enterprise, bancoposta 6: not specialist
    await a.enqueue("c1", "bancoposta", waited=10)
    assert not await a.acd.route_call("c1")
    # the call's routes change behind this process's back (its hint is stale)
    await b.acd.live.update_call("c1", requirements={"bancoposta": 7}, also=(Route("enterprise", {}),), priority=0)
    assert await a.acd.route_call("c1")
    (offer,) = a.inbox
    assert isinstance(offer, Offer) and offer.agent_id == "op1006" and "overflow to tier enterprise" in offer.reason


@pytest.mark.parametrize("seed", range(8))
async def test_given_random_states_when_routed_then_same_choice_as_acd_routing_on_a_full_snapshot(
    sites: tuple[Site, Site], seed: int
) -> None:
    a, _ = sites
    rng = random.Random(seed)
    operators = list(a.acd.config.operators)
    queues = [q for q in a.acd.config.queues if q.startswith(("general", "bancoposta", "spedizioni", "enterprise"))]
    states = (AgentState.READY, AgentState.READY, AgentState.NOT_READY, AgentState.WRAP_UP, AgentState.LOGGED_OUT)
    for round_ in range(12):
        for agent_id in operators:
            await a.acd.live.set_agent(
                agent(
                    agent_id,
                    rng.choice(states),
                    since=NOW - rng.choice((5, 60, 600)),
                    registered=rng.random() < 0.9,
                    last_call_end=rng.choice((None, None, NOW - 3, NOW - 60, NOW - 700)),
                )
            )
        call_id = f"c{seed}-{round_}"
        queue = rng.choice(queues)
        call = await a.enqueue(
            call_id,
            queue,
            waited=rng.choice((0, 40, 95, 400)),
            preferred=rng.choice((None, *operators)),
            priority=rng.choice((0, 0, 5, 15)),
        )
        strategy = RoutingStrategy(a.acd.config.queues[queue].strategy)
        expected = best_operator(call, await a.acd.operator_views(), strategy, now=NOW)
        assert await a.acd.route_call(call_id) == (expected is not None)
        if expected is not None:
            offer = a.inbox[-1]
            assert isinstance(offer, Offer) and (offer.agent_id, offer.reason) == expected
            assert await a.acd.live.release(
                expected.choice, call_id, "ctl-a", now=NOW, agent_state=AgentState.READY, reason=None
            )

        # and the other way: a freed operator, every waiting call of every queue
        ready = [v for v in await a.acd.operator_views() if v.state is AgentState.READY and v.registered]
        if ready:
            view = rng.choice(ready)
            waiting = await a.acd.live.snapshot_waiting(a.acd.config.queues)
            expected = best_call(view, waiting, now=NOW)
            assert await a.acd.route_agent(view.id) == (expected is not None)
            if expected is not None:
                offer = a.inbox[-1]
                assert isinstance(offer, Offer) and (offer.call_id, offer.agent_id, offer.reason) == (
                    expected.choice,
                    view.id,
                    expected.reason,
                )
                assert await a.acd.live.release(
                    view.id, expected.choice, "ctl-a", now=NOW, agent_state=AgentState.READY, reason=None
                )


async def test_given_two_controllers_routing_both_ways_at_once_then_no_double_assignment_and_one_offer_per_claim(
    sites: tuple[Site, Site],
) -> None:
    a, b = sites
    operators = [op for op, spec in a.acd.config.operators.items() if "general" in spec.tiers]
    await a.acd.start()
    await b.acd.start()
    try:
        for i in range(24):
            site = (a, b)[i % 2]
            await site.enqueue(f"c{i}", "general", waited=float(i))
        for agent_id in operators:
            await a.acd.live.set_agent(agent(agent_id, AgentState.NOT_READY))

        async def ready(agent_id: str) -> None:
            await a.acd.live.set_agent(agent(agent_id))
            await (a, b)[int(agent_id[-1]) % 2].acd.route_agent(agent_id)

        await asyncio.gather(
            *(ready(agent_id) for agent_id in operators),
            *((a, b)[i % 2].acd.route_call(f"c{i}") for i in range(24)),
            *((b, a)[i % 2].acd.route_call(f"c{i}") for i in range(24)),
        )
        for _ in range(100):
            if len(a.inbox) + len(b.inbox) >= len(operators):
                break
            await asyncio.sleep(0.02)
    finally:
        await a.acd.close()
        await b.acd.close()
    offers = [m for m in a.inbox + b.inbox if isinstance(m, Offer)]
    assert len(offers) == len(operators), "every operator got exactly one call"
    assert len({o.agent_id for o in offers}) == len(offers) and len({o.call_id for o in offers}) == len(offers)
    for site in (a, b):
        assert all(o.call_id in site.calls for o in site.inbox if isinstance(o, Offer)), "offers reach the owner"
    holding = {agent_id: x.call_id for agent_id, x in (await a.acd.live.agents(operators)).items()}
    assert holding == {o.agent_id: o.call_id for o in offers}
