"""AriEventStream: every way of losing the socket ends in backoff + reconnect, never a busy loop."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Literal

import pytest

from unico.ari import (
    ApplicationReplaced,
    AriEventStream,
    Backoff,
    ChannelDtmfReceived,
    Connected,
    Disconnected,
    Event,
    StasisStart,
)

from .fake_ari import FakeAri, FakeSleep, channel_json, event, eventually

BACKOFF = Backoff(base=0.5, cap=15.0, floor=0.1, stable_after=10.0)


class Harness:
    """A stream wired to a fake ARI, a fake sleep/clock and a list of received events."""

    def __init__(self, fake: FakeAri) -> None:
        self.fake = fake
        self.streams: list[AriEventStream] = []

    def stream(
        self,
        *,
        sleep: FakeSleep,
        rng: Callable[[], float] = lambda: 0.5,
        heartbeat: float = 0.2,
        password: str | None = None,
    ) -> tuple[AriEventStream, list[Event]]:
        received: list[Event] = []
        stream = AriEventStream(
            self.fake.base_url,
            self.fake.user,
            password if password is not None else self.fake.password,
            app="unico",
            on_event=received.append,
            heartbeat=heartbeat,
            connect_timeout=1.0,
            backoff=BACKOFF,
            rng=rng,
            sleep=sleep,
            clock=sleep.clock,
        )
        self.streams.append(stream)
        return stream, received


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    async with FakeAri() as server:
        yield server


@pytest.fixture
async def harness(fake: FakeAri) -> AsyncIterator[Harness]:
    h = Harness(fake)
    yield h
    for stream in h.streams:
        await stream.close()
        assert not stream.running


def connects(received: list[Event]) -> list[Connected]:
    return [e for e in received if isinstance(e, Connected)]


def disconnects(received: list[Event]) -> list[Disconnected]:
    return [e for e in received if isinstance(e, Disconnected)]


Loss = Literal["close_frame", "tcp_drop", "half_open"]


async def lose_socket(fake: FakeAri, how: Loss) -> None:
    if how == "close_frame":
        await fake.close_socket()
    elif how == "tcp_drop":
        fake.drop_socket()
    else:
        fake.go_half_open()


def test_given_attempts_when_backoff_computed_then_full_jitter_capped_and_floored() -> None:
    policy = Backoff(base=0.5, cap=15.0, floor=0.1)

    ceilings = [policy.delay(n, 1.0) for n in range(8)]

    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert policy.delay(4, 0.25) == 2.0
    assert policy.delay(0, 0.0) == 0.1
    assert policy.delay(10_000, 0.5) == 7.5


async def test_given_server_accepts_when_started_then_connected_once_with_app_query(
    fake: FakeAri, harness: Harness
) -> None:
    stream, received = harness.stream(sleep=FakeSleep())

    stream.start()
    await eventually(lambda: stream.connected)

    assert received == [Connected(reconnect=False)]
    assert fake.ws_queries == [{"app": "unico", "subscribeAll": "false"}]
    assert stream.reconnects == 0 and stream.connect_attempts == 1


@pytest.mark.parametrize("how", ["close_frame", "tcp_drop", "half_open"])
async def test_given_connected_when_socket_lost_repeatedly_then_reconnects_with_growing_backoff(
    fake: FakeAri, harness: Harness, how: Loss
) -> None:
    sleep = FakeSleep()
    stream, received = harness.stream(sleep=sleep)
    stream.start()
    await fake.wait_for_socket(1)

    for n in (2, 3):
        await lose_socket(fake, how)
        await eventually(lambda n=n: len(connects(received)) == n and stream.connected)  # type: ignore[misc]

    assert received[0] == Connected(reconnect=False)
    assert connects(received)[1:] == [Connected(reconnect=True), Connected(reconnect=True)]
    assert [type(e) for e in received] == [Connected, Disconnected, Connected, Disconnected, Connected]
    assert sleep.delays == [0.25, 0.5]  # rng 0.5 * min(15, 0.5 * 2**attempt)
    assert stream.reconnects == 2 and fake.ws_accepted == 3
    expected = {"close_frame": "close frame", "tcp_drop": "connection lost", "half_open": "heartbeat"}[how]
    assert all(expected in d.reason for d in disconnects(received)), disconnects(received)


async def test_given_injected_rng_when_refused_then_delays_follow_jittered_exponential_ceiling(
    fake: FakeAri, harness: Harness
) -> None:
    draws = [0.9, 0.1, 0.5, 0.999]
    sequence = iter(draws)
    sleep = FakeSleep(park_after=5.5)  # parks on the 4th delay: 0.45 + 0.1 + 1.0 + 3.996
    fake.refuse = 503
    stream, received = harness.stream(sleep=sleep, rng=lambda: next(sequence))

    stream.start()
    await eventually(lambda: sleep.parked)
    fake.refuse = None
    sleep.release()
    await eventually(lambda: stream.connected)

    ceilings = [min(15.0, 0.5 * 2**n) for n in range(len(sleep.delays))]
    assert sleep.delays == pytest.approx([max(0.1, r * c) for r, c in zip(draws, ceilings, strict=False)])
    assert ceilings == sorted(ceilings) and len(set(sleep.delays)) == len(sleep.delays)
    assert received == [Connected(reconnect=False)]  # refusals before the first connect are not "lost"
    assert len(sleep.delays) == 4
    assert stream.connect_attempts == fake.ws_attempts == 5


@pytest.mark.parametrize(
    ("rng", "fake_seconds", "max_attempts"),
    [
        (random.Random(7).random, 60.0, 25),  # realistic: ~8 s to reach the cap, then ~7.5 s each
        (lambda: 0.0, 6.0, 61),  # worst draw: the floor (0.1 s) still bounds the rate
    ],
)
async def test_given_server_refusing_when_stream_runs_then_attempts_are_bounded_not_a_busy_loop(
    fake: FakeAri, harness: Harness, rng: Callable[[], float], fake_seconds: float, max_attempts: int
) -> None:
    fake.refuse = 503
    sleep = FakeSleep(park_after=fake_seconds)
    stream, received = harness.stream(sleep=sleep, rng=rng)

    stream.start()
    await eventually(lambda: sleep.parked)

    # Every attempt was followed by a backoff sleep: none was retried without waiting.
    assert stream.connect_attempts == fake.ws_attempts == len(sleep.delays)
    assert 3 <= stream.connect_attempts <= max_attempts
    assert all(0.1 <= d <= 15.0 for d in sleep.delays)
    assert received == [] and not stream.connected
    assert "HTTP 503" in stream.last_disconnect_reason


async def test_given_connected_when_server_then_refuses_401_then_logs_credentials_hint_and_recovers(
    fake: FakeAri, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="unico.ari")
    sleep = FakeSleep()
    stream, received = harness.stream(sleep=sleep)
    stream.start()
    await fake.wait_for_socket(1)

    fake.refuse = 401
    fake.drop_socket()
    await eventually(lambda: fake.ws_attempts >= 4)
    fake.refuse = None
    await eventually(lambda: len(connects(received)) == 2)

    assert connects(received) == [Connected(reconnect=False), Connected(reconnect=True)]
    assert sleep.delays[:3] == [0.25, 0.5, 1.0]
    assert "HTTP 401" in caplog.text and "check the ARI user and password" in caplog.text
    assert fake.password not in caplog.text


async def test_given_wrong_password_when_connecting_then_backoff_and_secret_not_logged(
    fake: FakeAri, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="unico.ari")
    sleep = FakeSleep()
    stream, _ = harness.stream(sleep=sleep, password="N0t-The-Passw0rd")

    stream.start()
    await eventually(lambda: len(sleep.delays) >= 2)

    assert not stream.connected
    assert "N0t-The-Passw0rd" not in caplog.text and "N0t-The-Passw0rd" not in repr(stream)


async def test_given_stable_connection_when_lost_then_backoff_restarts_from_base(
    fake: FakeAri, harness: Harness
) -> None:
    sleep = FakeSleep()
    stream, received = harness.stream(sleep=sleep)
    stream.start()
    await fake.wait_for_socket(1)
    fake.drop_socket()
    await eventually(lambda: len(connects(received)) == 2)

    sleep.now += 30.0  # the new connection stays up well beyond stable_after
    fake.drop_socket()
    await eventually(lambda: len(connects(received)) == 3)

    assert sleep.delays == [0.25, 0.25]


async def test_given_events_and_garbage_when_received_then_parsed_in_order_and_garbage_skipped(
    fake: FakeAri, harness: Harness
) -> None:
    stream, received = harness.stream(sleep=FakeSleep())
    stream.start()
    await fake.wait_for_socket(1)

    await fake.send_event(event("StasisStart", args=["inbound"], channel=channel_json("c1")))
    await fake.send_raw("{not json")
    for digit in "123":
        await fake.send_event(event("ChannelDtmfReceived", channel=channel_json("c1"), digit=digit))
    await eventually(lambda: len(received) == 5)

    assert isinstance(received[1], StasisStart)
    assert [e.digit for e in received[2:] if isinstance(e, ChannelDtmfReceived)] == ["1", "2", "3"]
    assert stream.events_received == 4


async def test_given_another_socket_takes_app_when_application_replaced_then_flagged_loudly_no_reconnect(
    fake: FakeAri, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    stream, received = harness.stream(sleep=FakeSleep())
    stream.start()
    await fake.wait_for_socket(1)

    with caplog.at_level(logging.ERROR, logger="unico.ari"):
        await fake.send_event(event("ApplicationReplaced"))
        await eventually(lambda: stream.replaced)

    assert isinstance(received[-1], ApplicationReplaced)
    assert "ApplicationReplaced" in caplog.text and "'unico'" in caplog.text
    assert stream.connected and fake.ws_accepted == 1


async def test_given_running_stream_when_closed_then_socket_closed_task_gone_and_disconnected_emitted(
    fake: FakeAri, harness: Harness
) -> None:
    stream, received = harness.stream(sleep=FakeSleep())
    task = stream.start()
    await fake.wait_for_socket(1)

    await stream.close()

    assert task.done() and not stream.running and not stream.connected
    assert received == [Connected(reconnect=False), Disconnected(reason="closed by us")]
    await eventually(lambda: fake.open_sockets == 0)


async def test_given_raising_on_event_when_events_arrive_then_reader_keeps_going(
    fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Event] = []

    def flaky(e: Event) -> None:
        seen.append(e)
        if isinstance(e, StasisStart):
            raise RuntimeError("consumer bug")

    stream = AriEventStream(fake.base_url, fake.user, fake.password, app=["unico", "unico-agent"], on_event=flaky)
    async with stream:
        await fake.wait_for_socket(1)
        await fake.send_event(event("StasisStart", channel=channel_json("c1")))
        await fake.send_event(event("StasisEnd", channel=channel_json("c1")))
        await eventually(lambda: len(seen) == 3)

    assert "on_event callback failed" in caplog.text
    assert fake.ws_queries[0]["app"] == "unico,unico-agent"


async def test_given_a_bug_in_the_reader_when_it_raises_then_supervisor_logs_and_reconnects(
    fake: FakeAri, harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sleep = FakeSleep()
    stream, received = harness.stream(sleep=sleep)
    stream.start()
    await fake.wait_for_socket(1)

    def broken(raw: object) -> Event:
        raise RuntimeError("parser bug")

    monkeypatch.setattr("unico.ari.events.parse_event", broken)
    await fake.send_event(event("StasisEnd", channel=channel_json("c1")))
    await eventually(lambda: len(connects(received)) == 2)

    assert disconnects(received)[0].reason == "unexpected error: RuntimeError"
    assert "unexpected error" in caplog.text and stream.running
