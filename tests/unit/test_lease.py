"""``unico.lease`` on the real Redis: one holder at a time, takeover when the holder dies, stepping
down before another can take it, a restarted node taking its own lease back at once, and claims
fenced by the lease value."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from acd.agents import Agent, AgentState
from acd.live import LeaseLost, LiveState
from acd.routing import WaitingCall
from unico.lease import Lease

from .fake_ari import eventually

REDIS_URL = "redis://127.0.0.1:6379/0"


class Events:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def gain(self, name: str) -> Callable[[], Awaitable[None]]:
        async def on_gain() -> None:
            self.seen.append(f"{name} gained")

        return on_gain

    def loss(self, name: str) -> Callable[[str], Awaitable[None]]:
        async def on_loss(why: str) -> None:
            self.seen.append(f"{name} lost")

        return on_loss


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def key() -> str:
    return f"test:lease:{uuid.uuid4().hex}"


def lease(redis: aioredis.Redis, key: str, node: str, events: Events, **kwargs: float) -> Lease:
    options: dict[str, float] = {"ttl": 0.6, "renew_every": 0.1, "margin": 0.2, **kwargs}
    return Lease(redis, key, node=node, on_gain=events.gain(node), on_loss=events.loss(node), **options)


async def until(condition: Callable[[], bool], within: float = 3.0) -> None:
    await eventually(condition, within=within, interval=0.02)


async def test_given_two_controllers_then_one_active_and_the_other_takes_over_when_it_dies(
    redis: aioredis.Redis, key: str
) -> None:
    events = Events()
    a, b = lease(redis, key, "rome-1", events), lease(redis, key, "milan-1", events)
    a.start()
    await until(lambda: a.held)
    b.start()
    await asyncio.sleep(0.3)
    assert (a.role, b.role) == ("active", "standby") and b.holder == a.value
    # rome-1 dies without a word (its task stops, nothing is released)
    assert a._task is not None
    a._task.cancel()
    await asyncio.gather(a._task, return_exceptions=True)
    await until(lambda: b.held, within=2.0)
    assert events.seen == ["rome-1 gained", "milan-1 gained"]
    assert (await redis.get(key) or "").startswith("milan-1|")
    await b.close()
    assert await redis.get(key) is None, "a clean stop releases the lease at once"
    a._task = None
    await redis.delete(f"{key}:token")


async def test_given_a_node_killed_when_it_restarts_then_it_takes_its_own_lease_back_at_once(
    redis: aioredis.Redis, key: str
) -> None:
    events = Events()
    first = lease(redis, key, "rome-1", events, ttl=30.0)
    first.start()
    await until(lambda: first.held)
    assert first._task is not None
    first._task.cancel()  # kill -9: the lease stays in Redis for 30 s
    await asyncio.gather(first._task, return_exceptions=True)
    other = lease(redis, key, "milan-1", events, ttl=30.0)
    again = lease(redis, key, "rome-1", events, ttl=30.0)
    other.start()
    await asyncio.sleep(0.2)
    assert not other.held, "another node waits for the lease to run out"
    again.start()
    await until(lambda: again.held, within=1.0)
    assert again.value != first.value, "each life of a node holds its own value"
    await other.close()
    await again.close()
    await redis.delete(f"{key}:token")


async def test_given_lease_taken_by_another_then_holder_steps_down_and_claims_are_refused(
    redis: aioredis.Redis, key: str
) -> None:
    events = Events()
    a = lease(redis, key, "rome-1", events)
    a.start()
    await until(lambda: a.held)
    value = a.value
    assert value is not None
    live = LiveState(redis, f"test:lease-claims:{uuid.uuid4().hex}:")
    await live.set_agent(Agent(id="op1", state=AgentState.READY, since=0.0, registered=True))
    call = WaitingCall(call_id="c1", queue="q", priority=0, enqueued_at=1.0, requirements={}, tier="general")
    await live.add_call(call)
    await redis.set(key, "milan-1|x|99")  # split brain: someone else wrote the lease
    with pytest.raises(LeaseLost):
        await live.claim("op1", "c1", "rome-1", now=2.0, queue="q", lease=(key, value))
    await until(lambda: len(events.seen) == 2)  # fenced at once (held is False first), then told
    assert events.seen == ["rome-1 gained", "rome-1 lost"] and not a.held
    agent = await live.get_agent("op1")
    assert agent is not None and agent.state is AgentState.READY, "the fenced claim changed nothing"
    await redis.set(key, value)
    assert await live.claim("op1", "c1", "rome-1", now=2.0, queue="q", lease=(key, value))
    await a.close()
    await live.wipe()
    await redis.delete(key, f"{key}:token")


async def test_given_redis_forgot_the_lease_then_holder_writes_it_again_and_keeps_serving(
    redis: aioredis.Redis, key: str
) -> None:
    events = Events()
    a = lease(redis, key, "rome-1", events)
    a.start()
    await until(lambda: a.held)
    await redis.delete(key, f"{key}:token")  # a Redis restart without persistence
    await asyncio.sleep(0.3)
    assert a.held and await redis.get(key) == a.value
    assert events.seen == ["rome-1 gained"]
    await a.close()
    await redis.delete(f"{key}:token")


async def test_given_redis_unreachable_then_holder_steps_down_before_the_lease_can_expire(key: str) -> None:
    now = [100.0]
    events = Events()
    good = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    a = Lease(
        good,
        key,
        node="rome-1",
        on_gain=events.gain("rome-1"),
        on_loss=events.loss("rome-1"),
        ttl=5.0,
        renew_every=0.05,
        margin=1.0,
        clock=lambda: now[0],
    )
    a.start()
    await until(lambda: a.held)
    # from now on every renewal fails: a client on a port where nothing listens
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.1)
    a._renew = dead.register_script("return 1")
    now[0] += 3.9
    await asyncio.sleep(0.2)
    assert a.held, "3.9 s without renewal: still within ttl - margin"
    now[0] += 0.2
    await until(lambda: events.seen[-1:] == ["rome-1 lost"])
    assert not a.held and a.token is None
    await a.close()
    await dead.aclose()
    await good.delete(key, f"{key}:token")
    await good.aclose()


async def test_given_application_replaced_when_stepping_aside_then_released_and_not_retaken_for_a_while(
    redis: aioredis.Redis, key: str
) -> None:
    events = Events()
    a = lease(redis, key, "rome-1", events, aside_for=0.5)
    a.start()
    await until(lambda: a.held)
    await a.step_aside("ApplicationReplaced")
    assert (a.role, await redis.get(key)) == ("replaced", None)
    await asyncio.sleep(0.3)
    assert not a.held
    await until(lambda: a.held, within=2.0)
    assert events.seen == ["rome-1 gained", "rome-1 lost", "rome-1 gained"]
    await a.close()
    await redis.delete(f"{key}:token")


def test_given_renewal_slower_than_the_ttl_allows_then_refused() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)

    async def nothing() -> None:
        return None

    async def nothing_why(why: str) -> None:
        return None

    with pytest.raises(ValueError, match="renew_every"):
        Lease(client, "k", node="n", on_gain=nothing, on_loss=nothing_why, ttl=2.0, renew_every=1.5, margin=1.0)
