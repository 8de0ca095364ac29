"""Dispatcher: per-call order, cross-call parallelism, isolation, cleanup, and a reader that never waits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from unico.ari import (
    AriEventStream,
    ChannelDtmfReceived,
    Connected,
    Dispatcher,
    EndpointStateChange,
    Event,
    EventHandler,
    Outcome,
    StasisEnd,
    StasisStart,
    parse_event,
)

from .fake_ari import FakeAri, channel_json, event, eventually


def start(cid: str, **extra: object) -> Event:
    return parse_event(event("StasisStart", args=["inbound"], channel=channel_json(cid), **extra))


def dtmf(cid: str, digit: str) -> Event:
    return parse_event(event("ChannelDtmfReceived", channel=channel_json(cid), digit=digit))


def end(cid: str) -> Event:
    return parse_event(event("StasisEnd", channel=channel_json(cid)))


def playback_finished(cid: str) -> Event:
    return parse_event(
        event("PlaybackFinished", playback={"id": "pb", "target_uri": f"channel:{cid}", "state": "done"})
    )


class Call:
    """A test call: records what it saw, can be gated or made to fail on a digit."""

    def __init__(self, key: str, *, gate: asyncio.Event | None = None, fail_on: str = "") -> None:
        self.key = key
        self.seen: list[str] = []
        self.gate = gate
        self.fail_on = fail_on
        self.finished = False

    async def on_event(self, e: Event) -> Outcome | None:
        if isinstance(e, ChannelDtmfReceived):
            if self.gate is not None:
                await self.gate.wait()
            if e.digit == self.fail_on:
                raise RuntimeError(f"bug on digit {e.digit}")
            await asyncio.sleep(0)  # a real handler awaits REST calls between events
            self.seen.append(e.digit)
        else:
            self.seen.append(type(e).__name__)
        if isinstance(e, StasisEnd):
            self.finished = True
            return Outcome.FINISHED
        return None


class Calls:
    """Actor factory: only StasisStart creates a call (late events of ended calls are dropped)."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.fail_on: dict[str, str] = {}

    def __call__(self, key: str, first: Event) -> EventHandler | None:
        if not isinstance(first, StasisStart):
            return None
        call = Call(key, gate=self.gates.get(key), fail_on=self.fail_on.get(key, ""))
        self.calls[key] = call
        return call.on_event


def actor_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("ari-actor:") and not t.done()]


@pytest.fixture
async def calls() -> Calls:
    return Calls()


@pytest.fixture
async def control_seen() -> list[Event]:
    return []


@pytest.fixture
async def dispatcher(calls: Calls, control_seen: list[Event]) -> AsyncIterator[Dispatcher]:
    async def control(e: Event) -> None:
        control_seen.append(e)

    d = Dispatcher(calls, control=control)
    yield d
    await d.close()
    assert actor_tasks() == []


async def test_given_one_call_when_many_events_then_handled_in_arrival_order(
    dispatcher: Dispatcher, calls: Calls
) -> None:
    dispatcher.dispatch(start("a"))
    for digit in "1234567890":
        dispatcher.dispatch(dtmf("a", digit))
    dispatcher.dispatch(end("a"))

    await eventually(lambda: "a" in calls.calls and calls.calls["a"].finished)

    assert calls.calls["a"].seen == ["StasisStart", *"1234567890", "StasisEnd"]
    assert dispatcher.stats().max_queue_depth >= 10


async def test_given_slow_handler_for_call_a_when_call_b_events_arrive_then_b_is_not_delayed(
    dispatcher: Dispatcher, calls: Calls
) -> None:
    calls.gates["a"] = asyncio.Event()
    dispatcher.dispatch(start("a"))
    dispatcher.dispatch(dtmf("a", "1"))  # A blocks here until the gate opens

    dispatcher.dispatch(start("b"))
    for digit in "987":
        dispatcher.dispatch(dtmf("b", digit))
    dispatcher.dispatch(end("b"))
    await eventually(lambda: "b" in calls.calls and calls.calls["b"].finished)

    assert calls.calls["b"].seen == ["StasisStart", "9", "8", "7", "StasisEnd"]
    assert calls.calls["a"].seen == ["StasisStart"]
    assert dispatcher.actor_keys() == ["a"]

    calls.gates["a"].set()
    dispatcher.dispatch(end("a"))
    await eventually(lambda: calls.calls["a"].finished)
    assert calls.calls["a"].seen == ["StasisStart", "1", "StasisEnd"]


async def test_given_handler_raises_when_event_handled_then_logged_with_call_key_and_call_goes_on(
    dispatcher: Dispatcher, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    calls.fail_on["a"] = "2"
    for e in (start("a"), dtmf("a", "1"), dtmf("a", "2"), dtmf("a", "3"), start("b"), end("b"), end("a")):
        dispatcher.dispatch(e)

    await eventually(lambda: all(c.finished for c in calls.calls.values()) and len(calls.calls) == 2)

    assert calls.calls["a"].seen == ["StasisStart", "1", "3", "StasisEnd"]
    assert calls.calls["b"].seen == ["StasisStart", "StasisEnd"]
    assert dispatcher.stats().handler_errors == 1
    assert "handler failed for call a on ChannelDtmfReceived" in caplog.text


async def test_given_finished_calls_when_late_events_arrive_then_dropped_and_no_actor_or_task_left(
    dispatcher: Dispatcher, calls: Calls
) -> None:
    for cid in ("a", "b", "c"):
        dispatcher.dispatch(start(cid))
        dispatcher.dispatch(end(cid))
    await eventually(lambda: dispatcher.stats().live_actors == 0)

    dispatcher.dispatch(playback_finished("a"))  # arrives after StasisEnd (ari.md §1.2.3)

    stats = dispatcher.stats()
    assert (stats.actors_started, stats.actors_finished, stats.live_actors) == (3, 3, 0)
    assert stats.events_dropped == 1 and stats.events_routed == 6
    assert not dispatcher.has_actor("a")
    await eventually(lambda: actor_tasks() == [])


async def test_given_live_actors_when_dispatcher_closed_then_all_cancelled_and_awaited(
    calls: Calls, control_seen: list[Event]
) -> None:
    d = Dispatcher(calls)
    calls.gates["a"] = asyncio.Event()  # never opened: the actor is stuck in its handler
    d.dispatch(start("a"))
    d.dispatch(dtmf("a", "1"))
    d.dispatch(start("b"))
    await eventually(lambda: len(calls.calls) == 2)

    await d.close()

    assert actor_tasks() == []
    assert d.stats().live_actors == 0
    d.dispatch(start("c"))  # after close: dropped, no new task
    assert actor_tasks() == [] and "c" not in calls.calls


async def test_given_events_without_call_when_dispatched_then_control_handler_gets_them_in_order(
    dispatcher: Dispatcher, control_seen: list[Event]
) -> None:
    endpoint = parse_event(
        event("EndpointStateChange", endpoint={"technology": "PJSIP", "resource": "1001", "state": "online"})
    )

    dispatcher.dispatch(Connected(reconnect=True))
    dispatcher.dispatch(endpoint)
    await eventually(lambda: len(control_seen) == 2)

    assert control_seen[0] == Connected(reconnect=True)
    assert isinstance(control_seen[1], EndpointStateChange)
    assert dispatcher.stats().live_actors == 0


async def test_given_linked_agent_leg_when_its_events_arrive_then_routed_to_the_call_actor(
    dispatcher: Dispatcher, calls: Calls
) -> None:
    dispatcher.dispatch(start("caller"))
    await eventually(lambda: "caller" in calls.calls)
    dispatcher.link("agent-1", "caller")  # before originate: events may beat the HTTP answer

    dispatcher.dispatch(dtmf("agent-1", "5"))
    dispatcher.dispatch(start("transfer-local", replace_channel=channel_json("caller")))
    dispatcher.dispatch(dtmf("transfer-local", "6"))
    dispatcher.dispatch(end("caller"))
    await eventually(lambda: calls.calls["caller"].finished)

    assert calls.calls["caller"].seen == ["StasisStart", "5", "StasisStart", "6", "StasisEnd"]
    assert set(calls.calls) == {"caller"}
    dispatcher.dispatch(dtmf("agent-1", "7"))  # alias removed with the actor
    assert dispatcher.stats().events_dropped == 1


async def test_given_factory_raises_when_first_event_then_counted_and_dispatcher_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(key: str, first: Event) -> EventHandler | None:
        raise ValueError("factory bug")

    d = Dispatcher(broken)
    d.dispatch(start("a"))
    await d.close()

    assert d.stats().handler_errors == 1 and d.stats().events_dropped == 1
    assert "actor factory failed for call a" in caplog.text


async def test_given_stream_and_dispatcher_when_a_call_handler_blocks_then_reader_keeps_reading(
    calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    calls.gates["a"] = asyncio.Event()
    dispatcher = Dispatcher(calls)
    async with FakeAri() as fake:
        stream = AriEventStream(fake.base_url, fake.user, fake.password, app="unico", on_event=dispatcher.dispatch)
        async with stream:
            await fake.wait_for_socket()
            await fake.send_event(event("StasisStart", channel=channel_json("a")))
            await fake.send_event(event("ChannelDtmfReceived", channel=channel_json("a"), digit="1"))
            await fake.send_event(event("StasisStart", channel=channel_json("b")))
            for digit in "42":
                await fake.send_event(event("ChannelDtmfReceived", channel=channel_json("b"), digit=digit))
            await fake.send_event(event("StasisEnd", channel=channel_json("b")))
            await eventually(lambda: "b" in calls.calls and calls.calls["b"].finished)

            assert stream.events_received == 6 and stream.connected
            assert calls.calls["a"].seen == ["StasisStart"]  # still blocked on its first digit
        await dispatcher.close()

    assert calls.calls["b"].seen == ["StasisStart", "4", "2", "StasisEnd"]
    assert actor_tasks() == []


async def test_given_reconnect_when_reconciling_then_call_events_held_until_it_is_done_and_keep_their_order(
    calls: Calls,
) -> None:
    reconciling = asyncio.Event()
    finish = asyncio.Event()
    order: list[str] = []
    holder: list[Dispatcher] = []
    recovered = Call("a")

    async def control(e: Event) -> None:
        if isinstance(e, Connected):
            reconciling.set()
            await finish.wait()
            # what the reconciliation itself starts goes first (a recovered call, an adopted one)
            holder[0].start_actor("a", recovered.on_event, "recovered")
            holder[0].dispatch(start("b"), now=True)
            order.append("reconciled")

    d = Dispatcher(calls, control=control)
    holder.append(d)
    d.dispatch(Connected(reconnect=True))
    await reconciling.wait()
    for e in (dtmf("a", "1"), dtmf("b", "2"), start("c"), dtmf("a", "3")):
        d.dispatch(e)
    await asyncio.sleep(0.05)
    assert d.actor_keys() == [] and d.events_held == 4, "nothing reaches a call during the reconciliation"
    finish.set()
    await eventually(lambda: sorted(d.actor_keys()) == ["a", "b", "c"] and len(calls.calls["b"].seen) == 2)
    await eventually(lambda: len(recovered.seen) == 3)
    assert recovered.seen == ["str", "1", "3"], "the recovery first, then its held events in order"
    assert order == ["reconciled"]
    assert calls.calls["b"].seen == ["StasisStart", "2"]
    assert calls.calls["c"].seen == ["StasisStart"]
    await d.close()


async def test_given_recovered_call_actor_then_its_first_item_comes_before_its_events() -> None:
    seen: list[object] = []

    async def handler(item: object) -> Outcome | None:
        seen.append(item if isinstance(item, str) else type(item).__name__)
        return Outcome.FINISHED if isinstance(item, StasisEnd) else None

    d = Dispatcher(Calls())
    assert d.start_actor("a", handler, "recovered")
    assert not d.start_actor("a", handler, "twice"), "one actor per call"
    d.dispatch(dtmf("a", "5"))
    d.dispatch(end("a"))
    await eventually(lambda: not d.has_actor("a"))
    assert seen == ["recovered", "ChannelDtmfReceived", "StasisEnd"]
    await d.close()


async def test_given_actors_when_reset_then_cancelled_and_dispatcher_still_usable(calls: Calls) -> None:
    d = Dispatcher(calls)
    calls.gates["a"] = asyncio.Event()
    d.dispatch(start("a"))
    d.dispatch(dtmf("a", "1"))
    await eventually(lambda: "a" in calls.calls)
    await d.reset()
    assert actor_tasks() == [] and d.actor_keys() == []
    d.dispatch(start("b"))
    d.dispatch(end("b"))
    await eventually(lambda: "b" in calls.calls and calls.calls["b"].finished)
    await d.close()
