"""ARI event handling (B6): a recorded event stream replayed through the controller, 10x and flat out.

**The stream.** ``--calls`` callers dial the shipped number 803160 (Poisson arrivals at ``--cps``
calls per second, the *nominal* rate). Each caller is walked through the real IVR engine
(``ivr.engine.Session`` on the shipped config, with the call id and the fixed clock the controller
will use), and every step becomes the frames Asterisk 22 sends: ``StasisStart``, the answer's
``ChannelStateChange``, ``PlaybackStarted`` / ``PlaybackFinished`` per prompt (2-5 s of audio per
sound), ``ChannelDtmfReceived`` for choices (after 0.8-3 s of thought, or barging into a prompt),
and the end: ``ChannelHangupRequest``, ``StasisEnd``, ``ChannelDestroyed`` (the caller hangs up, now
and then at any step) or ``StasisEnd``, ``ChannelDestroyed`` after the IVR's own hang-up. Because
the engine names playbacks after the call (``<call>-pb<n>``), the controller meets in the stream the
very playbacks it starts: the report checks it (``playbacks matched``). Two more event kinds keep
the mix honest: ``EndpointStateChange`` (operators' softphones coming and going) and, for a caller
who asks for an operator, the holding bridge's ``ChannelEnteredBridge`` / ``ChannelLeftBridge``. The
replay runs without the ACD (no Redis): such a caller hears "unavailable", and the bridge events are
handled as the controller handles a caller's bridge events (its ACD acts on REST results, not on
them), so what they cost here is their parse and dispatch. Routing itself is B4
(``bench/routing_scale.py``). A caller whose next step would run an action or a recording hangs up
there, so the stream never depends on what a handler answers.

**The replay** goes through the controller's own path: each frame into
``AriEventStream._on_text`` (``json.loads``, ``parse_event``), ``Dispatcher.dispatch``, the per-call
actor, ``CallActor`` and ``IvrCall`` of a real ``unico.controller.Controller`` built with the shipped
config and a fixed clock. The REST side is a fake that answers at once (benchmark only: functional
tests never replace Asterisk); contact records go to an in-memory store (``--store sqlite`` writes
them to a real SQLite file instead); logging is at INFO into a file, as in production. Frames are
fed like a websocket reader receives them: up to ``--burst`` frames, then the event loop runs.

- **10x**: each frame is due at its nominal time / 10; latency counts from that due time, so a
  backlog shows as latency (no coordinated omission);
- **flat out**: every frame as fast as the loop takes them; latency counts from the frame's feed.

Measured per run: events per CPU second of the process (``time.process_time``: the loop is one
thread, so that is events per second per core; the capacity figure is the flat-out one, a paced
replay's CPU also pays for the loop's idle wake-ups and shows as a load), events per wall second,
handling latency from the frame to the end of its handler (p50/p95/p99/max; events that arrive
after their call ended are dropped by the dispatcher, as in production, and count apart), and the
event loop's stalls: a ticker sleeps ``--tick-ms`` and records how late it wakes; the longest
lateness is the longest stall. Capped by the CPU time the loop's thread used meanwhile, it is the
longest stall of ours (``loop busy``): on a loaded machine the wall figure also holds time the OS
gave to other processes. What the benchmark holds (the stream, which stands for bytes on the network, and the
results of earlier runs) is frozen out of the garbage collector's sight (``gc.freeze``) before each
replay: it is not the controller's heap. Target
(``/work/shared/reference/performance.md`` B6): at least 20,000 events/s per core, no stall over 50 ms.

Usage::

    python -m bench.event_replay              # 2,000 calls at 10 calls/s nominal
    python -m bench.event_replay --quick      # 300 calls: a few seconds
    python -m bench.event_replay --profile    # also profile the flat-out run (cProfile, top 25)

Results go to ``bench/results/event_replay.{json,csv,png}``; figures are printed and recorded,
never asserted (they depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import csv
import gc
import json
import logging
import math
import pstats
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from pydantic import SecretStr

from bench.report import Summary, machine, percentile, summarize
from contacts import ContactStore, upgrade
from ivr import engine
from ivr.config import IvrConfig, load_config
from ivr.schema import CollectNode, MenuNode, PlayNode
from unico.ari import AriEventStream, Event, Outcome
from unico.controller import Controller
from unico.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
NAME = "event_replay"
NUMBER = "803160"
APP = "unico"
#: a Tuesday, 10:00 in Rome: the operator hours are open, so "0" reaches a queue node
CLOCK = datetime(2026, 1, 13, 9, 0, tzinfo=UTC)
EPOCH = 1_768_294_800  # CLOCK as a Unix time: Asterisk's channel ids are "<epoch>.<sequence>"


# --- the stream ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One websocket frame: due ``at`` nominal seconds from the start; ``kind`` is its ``type``."""

    at: float
    kind: str
    text: str


def _stamp(t: float) -> str:
    moment = CLOCK + timedelta(seconds=t)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _channel(channel_id: str, caller: str, state: str, serial: int) -> dict[str, Any]:
    """The channel snapshot Asterisk 22 puts in every channel event (``channelvars`` off)."""
    return {
        "id": channel_id,
        "name": f"PJSIP/carrier-{serial:08x}",
        "state": state,
        "protocol_id": f"{serial:032x}@10.0.0.1",
        "caller": {"name": "", "number": caller},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-carrier",
            "exten": NUMBER,
            "priority": 2,
            "app_name": "Stasis",
            "app_data": f"{APP},inbound,{NUMBER}",
        },
        "creationtime": _stamp(0.0),
        "language": "it",
    }


class CallScript:
    """One caller walked through the IVR engine, written down as the frames Asterisk would send."""

    def __init__(self, config: IvrConfig, index: int, start: float, rng: random.Random, prompt_base: str) -> None:
        self.rng = rng
        self.serial = index + 1
        self.channel_id = f"{EPOCH}.{self.serial}"
        self.caller = f"39{rng.randrange(10**9, 10**10)}"
        self.t = start
        self.state = "Ring"
        self.frames: list[Frame] = []
        self.playback: tuple[str, str, float] | None = None  # id, first media, seconds of audio
        self.done = False
        self.session = engine.Session(
            config,
            call_id=self.channel_id,
            dialled=NUMBER,
            caller=self.caller,
            clock=lambda: CLOCK,
            prompt_base=prompt_base,
        )

    def emit(self, kind: str, after: float = 0.0, **body: Any) -> None:
        self.t += after
        data = {"type": kind, "timestamp": _stamp(self.t), "application": APP, "asterisk_id": "52:54:00:12:34:56"}
        data.update(body)
        self.frames.append(Frame(self.t, kind, json.dumps(data)))

    def channel(self) -> dict[str, Any]:
        return _channel(self.channel_id, self.caller, self.state, self.serial)

    def play_event(self, kind: str, state: str) -> None:
        assert self.playback is not None
        playback_id, media, _ = self.playback
        playback = {
            "id": playback_id,
            "media_uri": media,
            "target_uri": f"channel:{self.channel_id}",
            "language": self.session.language,
            "state": state,
        }
        self.emit(kind, self.rng.uniform(0.005, 0.02), playback=playback)

    def run(self, max_steps: int) -> list[Frame]:
        self.emit("StasisStart", args=["inbound", NUMBER], channel=self.channel())
        self.state = "Up"  # the controller answers at once
        self.emit("ChannelStateChange", 0.03, channel=self.channel())
        self.apply(self.session.start())
        for _ in range(max_steps):
            if self.done:
                break
            self.step()
        if not self.done:
            self.caller_hangs_up()
        return self.frames

    def apply(self, commands: list[engine.Command]) -> None:
        """What Asterisk does with the controller's commands, and what the controller does next."""
        pending = list(commands)
        while pending and not self.done:
            command = pending.pop(0)
            if isinstance(command, engine.Play):
                seconds = sum(self.rng.uniform(2.0, 5.0) for _ in command.media)
                self.playback = (command.playback_id, command.media[0], seconds)
                self.play_event("PlaybackStarted", "playing")
            elif isinstance(command, engine.StopPlayback):
                if self.playback is not None and self.playback[0] == command.playback_id:
                    self.play_event("PlaybackFinished", "done")
                    self.playback = None
            elif isinstance(command, engine.Enqueue):
                # no ACD in the replay: the caller is told "unavailable" at once (IvrCall._enqueue);
                # a served caller would have sat in the holding bridge meanwhile
                bridge = {
                    "id": f"acd-hold-{self.serial}",
                    "technology": "holding_bridge",
                    "bridge_type": "holding",
                    "bridge_class": "stasis",
                    "creator": "Stasis",
                    "name": f"hold {self.channel_id}",
                    "channels": [self.channel_id],
                    "video_mode": "none",
                }
                self.emit("ChannelEnteredBridge", 0.02, bridge=bridge, channel=self.channel())
                self.emit(
                    "ChannelLeftBridge",
                    self.rng.uniform(0.5, 2.0),
                    bridge={**bridge, "channels": []},
                    channel=self.channel(),
                )
                pending = [*self.session.handle(engine.QueueResult(command.request_id, "unavailable")), *pending]
            elif isinstance(command, engine.Hangup):
                self.state = "Up"
                self.emit("StasisEnd", 0.02, channel=self.channel())
                self.emit("ChannelDestroyed", 0.01, cause=16, cause_txt="Normal Clearing", channel=self.channel())
                self.done = True
            elif isinstance(command, engine.RunAction | engine.StartRecording):
                self.caller_hangs_up()  # the stream must not depend on what a handler answers
            # StartTimer / CancelTimer: the caller always acts before a timeout

    def step(self) -> None:
        session, rng = self.session, self.rng
        if rng.random() < 0.03:
            self.caller_hangs_up()
            return
        node = session.node if session.node_name else None
        if session.phase is engine.Phase.PROMPT and self.playback is not None:
            playback_id, _, seconds = self.playback
            skippable = isinstance(node, MenuNode | CollectNode) or (isinstance(node, PlayNode) and node.barge_in)
            if skippable and rng.random() < 0.25:
                self.t += rng.uniform(0.5, seconds)
                self.press(self.digit(node))
                return
            self.t += seconds
            self.play_event("PlaybackFinished", "done")
            self.playback = None
            self.apply(session.handle(engine.PlaybackFinished(playback_id, failed=False)))
        elif session.phase is engine.Phase.ENDING and self.playback is not None:
            self.t += self.playback[2]
            self.play_event("PlaybackFinished", "done")
            playback_id, self.playback = self.playback[0], None
            self.apply(session.handle(engine.PlaybackFinished(playback_id, failed=False)))
        elif session.phase is engine.Phase.WAIT:
            self.t += rng.uniform(0.8, 3.0) if not isinstance(node, CollectNode) else rng.uniform(0.2, 0.6)
            self.press(self.digit(node))
        else:
            self.caller_hangs_up()

    def digit(self, node: Any) -> str:
        if isinstance(node, MenuNode) and self.rng.random() < 0.9:
            return self.rng.choice(sorted(node.choices))
        return self.rng.choice("0123456789")

    def press(self, digit: str) -> None:
        self.emit("ChannelDtmfReceived", digit=digit, duration_ms=self.rng.randint(80, 200), channel=self.channel())
        self.apply(self.session.handle(engine.Dtmf(digit)))

    def caller_hangs_up(self) -> None:
        if self.done:
            return
        self.emit("ChannelHangupRequest", 0.01, cause=16, soft=False, channel=self.channel())
        if self.playback is not None:
            self.play_event("PlaybackFinished", "done")
            self.playback = None
        self.emit("StasisEnd", 0.01, channel=self.channel())
        self.emit("ChannelDestroyed", 0.01, cause=16, cause_txt="Normal Clearing", channel=self.channel())
        self.done = True


def record_stream(
    config: IvrConfig, *, calls: int, cps: float, seed: int, prompt_base: str, first: int = 0
) -> list[Frame]:
    """Every call's frames, interleaved in time order; softphones come and go meanwhile."""
    rng = random.Random(seed)
    frames: list[Frame] = []
    start = 0.0
    for index in range(first, first + calls):
        start += rng.expovariate(cps)
        frames += CallScript(config, index, start, random.Random(rng.random()), prompt_base).run(max_steps=40)
    operators = sorted(config.operators) or ["op0"]
    t, end = 0.0, max((f.at for f in frames), default=0.0)
    while True:  # a registration change every 5 s on average across the roster
        t += rng.expovariate(0.2)
        if t >= end:
            break
        endpoint: dict[str, Any] = {
            "technology": "PJSIP",
            "resource": rng.choice(operators),
            "state": rng.choice(("online", "offline")),
            "channel_ids": [],
        }
        data = {"type": "EndpointStateChange", "timestamp": _stamp(t), "application": APP, "endpoint": endpoint}
        frames.append(Frame(t, "EndpointStateChange", json.dumps(data)))
    frames.sort(key=lambda f: f.at)  # stable: one call's frames keep their order
    return frames


# --- the controller under test ------------------------------------------------------------------


class FakeRest:
    """ARI's REST side answering at once (benchmark only); counts the requests and the playbacks."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.playbacks: set[str] = set()

    async def play(self, channel_id: str, playback_id: str, media: list[str], **options: Any) -> None:
        self.requests["play"] += 1
        self.playbacks.add(playback_id)

    async def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def instant(*args: Any, **kwargs: Any) -> Any:
            self.requests[name] += 1
            return [] if name.startswith("list_") else None

        return instant


class _NoConnection:
    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        return None  # a plan's statements are not run: counted, not kept


class _NoSession:
    async def connection(self) -> _NoConnection:
        return _NoConnection()


class _NoSessions:
    """Stands for the store's session factory: transactions that hold nothing and cost nothing
    (the agent state log's plans and the write queue's batches open them)."""

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[_NoSession]:
        yield _NoSession()

    def __call__(self) -> contextlib.AbstractAsyncContextManager[_NoSession]:
        return self.begin()


class MemoryStore:
    """Contact records counted, not kept (``--store memory``): the controller's writes cost nothing,
    and the benchmark's heap does not grow with every call (the collector would walk it).

    The controller writes through ``*_write`` plans (``contacts.batch.Plan``) on a write-behind
    queue; here each is a write that counts itself. Not a SQLite URL, so no writer thread."""

    url = "memory://"

    def __init__(self) -> None:
        self.sessions = _NoSessions()
        self.started = 0
        self.finished = 0
        self.writes: Counter[str] = Counter()

    def start_contact_write(self, **fields: Any) -> Callable[[], Awaitable[None]]:
        self.started += 1
        return self._counted("start_contact")

    def finish_contact_write(self, **fields: Any) -> Callable[[], Awaitable[None]]:
        self.finished += 1
        return self._counted("finish_contact")

    async def open_contacts(self, **filters: Any) -> list[Any]:
        return []

    def _counted(self, name: str) -> Callable[[], Awaitable[None]]:
        async def write() -> None:
            self.writes[name] += 1

        return write

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.endswith("_write"):
            return lambda *args, **kwargs: self._counted(name.removesuffix("_write"))

        async def instant(*args: Any, **kwargs: Any) -> Any:
            return None

        return instant


@dataclass
class Meter:
    """When each event came in and when its handler ended (``Event`` objects, by identity)."""

    now: Callable[[], float] = time.perf_counter
    due: float = 0.0  # when the frame being fed was due
    pending: dict[int, tuple[object, float, str]] = field(default_factory=dict)
    latencies: list[tuple[str, float]] = field(default_factory=list)

    def arrive(self, event: Event) -> None:
        self.pending[id(event)] = (event, self.due, type(event).__name__)

    def done(self, event: object) -> None:
        entry = self.pending.pop(id(event), None)
        if entry is not None and entry[0] is event:
            self.latencies.append((entry[2], (self.now() - entry[1]) * 1000))


class MeteredController(Controller):
    """The controller, its handlers timed: each actor's handler and the control handler."""

    meter: Meter

    def _actor_factory(self, key: str, first: Event) -> Callable[[Any], Any] | None:
        handler = super()._actor_factory(key, first)
        if handler is None:
            return None
        meter = self.meter

        async def timed(item: Any) -> Outcome | None:
            try:
                result: Outcome | None = await handler(item)
                return result
            finally:
                meter.done(item)

        return timed

    async def _on_control(self, event: Event) -> None:
        try:
            await super()._on_control(event)
        finally:
            self.meter.done(event)


def bench_settings(state_dir: Path) -> Settings:
    return Settings(
        home=ROOT,
        state_dir=state_dir,
        ari_url="http://127.0.0.1:9",  # never contacted: the REST side is replaced
        ari_password=SecretStr("bench"),
        ami_secret=SecretStr("bench"),
        admin_token=SecretStr("bench"),
        database_url=f"sqlite+aiosqlite:///{state_dir / 'unico.db'}",
        purge_every_hours=0,
    )


# --- replay -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    mode: str  # 10x | flat_out
    events: int
    handled: int
    dropped: int
    cpu_s: float
    wall_s: float
    events_per_cpu_s: float
    events_per_wall_s: float
    offered_per_s: float  # the rate the frames were due at (flat out: nan)
    latency_ms: Summary
    #: the ticker's lateness (wall clock): includes time the OS ran other processes
    stall_ms_max: float
    stall_ms_p99: float
    stalls_over_50ms: int
    #: the same, capped by the CPU time the loop's thread used: our own stalls
    busy_stall_ms_max: float
    busy_stalls_over_50ms: int
    calls_started: int
    calls_finished: int
    handler_errors: int
    command_errors: int
    playbacks_matched: float
    rest_requests: dict[str, int]


async def _ticker(interval: float, lateness: list[float], busy: list[float], stop: asyncio.Event) -> None:
    """How late each wake-up is (ms); ``busy`` caps it by the CPU the loop's thread used meanwhile,
    so time the OS gave to other processes (a loaded machine) is not taken for a stall of ours."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0, cpu0 = loop.time(), time.thread_time()
        await asyncio.sleep(interval)
        late = loop.time() - t0 - interval
        lateness.append(late * 1000)
        busy.append(min(late, time.thread_time() - cpu0) * 1000)


async def _settle(controller: Controller, within: float = 60.0) -> None:
    """Wait until every call ended and every actor's queue drained."""
    deadline = time.monotonic() + within
    while controller.dispatcher.stats().live_actors or controller.calls:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(controller.calls)} calls still live after {within:.0f} s")
        await asyncio.sleep(0.005)


async def replay(
    frames: Sequence[Frame],
    config: IvrConfig,
    settings: Settings,
    *,
    mode: str,
    speed: float | None,
    burst: int,
    tick_ms: float,
    store: str,
    profile: cProfile.Profile | None = None,
) -> tuple[Run, list[tuple[str, float]], tuple[list[float], list[float]]]:
    """Feed ``frames`` to a fresh controller: at ``speed`` x their nominal times, or flat out."""
    # what the benchmark holds (the stream: bytes on the network; earlier runs' results) is not the
    # controller's heap: out of the collector's sight, or its full collections would be ours
    gc.collect()
    gc.freeze()
    contact_store: Any
    if store == "sqlite":
        assert settings.database_url is not None
        await upgrade(settings.database_url)
        contact_store = ContactStore(settings.database_url)
        await contact_store.open()
    else:
        contact_store = MemoryStore()
    controller = MeteredController(
        settings, config, cast(ContactStore, contact_store), clock=lambda: CLOCK, use_redis=False
    )
    meter = controller.meter = Meter()
    rest = FakeRest()
    await controller.rest.close()
    controller.rest = cast(Any, rest)
    controller.deps.rest = cast(Any, rest)
    if store != "sqlite":
        controller.deps.lookup = None  # every caller a guest: no customer database

    def on_event(event: Event) -> None:
        meter.arrive(event)
        controller.dispatcher.dispatch(event)

    stream = AriEventStream(settings.ari_url, "bench", "bench", app=APP, on_event=on_event)
    lateness: list[float] = []
    busy: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(tick_ms / 1000, lateness, busy, stop))
    await asyncio.sleep(0)
    clock = time.perf_counter
    cpu0, wall0 = time.process_time(), clock()
    if profile is not None:
        profile.enable()
    try:
        if speed is None:
            for index, frame in enumerate(frames):
                meter.due = clock()
                stream._on_text(frame.text)
                if index % burst == burst - 1:
                    await asyncio.sleep(0)
        else:
            start = clock() + 0.01
            index = 0
            while index < len(frames):
                due = start + frames[index].at / speed
                wait = due - clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                fed = 0
                while index < len(frames) and fed < burst:
                    due = start + frames[index].at / speed
                    if due > clock():
                        break
                    meter.due = due
                    stream._on_text(frames[index].text)
                    index += 1
                    fed += 1
                if fed == burst:
                    await asyncio.sleep(0)
        await _settle(controller)
    finally:
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu0, clock() - wall0
        stop.set()
        await ticker
        stats = controller.dispatcher.stats()
        await controller.dispatcher.close()
        if store == "sqlite":
            await contact_store.close()
    latencies = meter.latencies
    values = [ms for _, ms in latencies]
    played = {json.loads(f.text)["playback"]["id"] for f in frames if f.kind == "PlaybackStarted"}
    nominal = max((f.at for f in frames), default=0.0)
    run = Run(
        mode=mode,
        events=len(frames),
        handled=len(values),
        dropped=stats.events_dropped,
        cpu_s=cpu,
        wall_s=wall,
        events_per_cpu_s=len(frames) / cpu if cpu else math.nan,
        events_per_wall_s=len(frames) / wall if wall else math.nan,
        offered_per_s=len(frames) / (nominal / speed) if speed and nominal else math.nan,
        latency_ms=summarize(values),
        stall_ms_max=max(lateness, default=0.0),
        stall_ms_p99=percentile(lateness, 99),
        stalls_over_50ms=sum(1 for late in lateness if late > 50),
        busy_stall_ms_max=max(busy, default=0.0),
        busy_stalls_over_50ms=sum(1 for late in busy if late > 50),
        calls_started=controller.deps.stats.started,
        calls_finished=controller.deps.stats.finished,
        handler_errors=stats.handler_errors,
        command_errors=controller.deps.stats.errors,
        playbacks_matched=len(played & rest.playbacks) / len(played) if played else math.nan,
        rest_requests=dict(rest.requests),
    )
    return run, latencies, (lateness, busy)


# --- report -------------------------------------------------------------------------------------


def runs_table(runs: Sequence[Run]) -> str:
    """One row per replay. Capacity is the flat-out row's events per CPU second; a paced replay's
    CPU per event also pays for the loop's idle wake-ups, so it shows its CPU load instead."""
    rows = [
        "| replay | events | events/s (wall) | events/s per core (CPU) | CPU, % of a core "
        "| latency p50 / p95 / p99 / max (ms) | longest stall, wall / loop busy (ms) | stalls > 50 ms |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for run in runs:
        lat = run.latency_ms
        paced = not math.isnan(run.offered_per_s)
        label = f"{run.mode} (offered {run.offered_per_s:,.0f}/s)" if paced else run.mode
        rows.append(
            f"| {label} | {run.events:,} | {run.events_per_wall_s:,.0f} | "
            f"{'' if paced else f'{run.events_per_cpu_s:,.0f}'} | {100 * run.cpu_s / run.wall_s:.0f} | "
            f"{lat.p50:.2f} / {lat.p95:.2f} / {lat.p99:.2f} / {lat.max:.1f} | "
            f"{run.stall_ms_max:.1f} / {run.busy_stall_ms_max:.1f} | "
            f"{run.stalls_over_50ms} / {run.busy_stalls_over_50ms} |"
        )
    return "\n".join(rows)


def write_outputs(
    runs: Sequence[Run],
    samples: dict[str, list[tuple[str, float]]],
    stalls: dict[str, tuple[list[float], list[float]]],
    meta: dict[str, Any],
    out: Path = RESULTS,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, csv_path, png_path = (out / f"{NAME}.{ext}" for ext in ("json", "csv", "png"))
    by_type = {
        mode: {
            kind: asdict(summarize([ms for k, ms in values if k == kind])) for kind in sorted({k for k, _ in values})
        }
        for mode, values in samples.items()
    }
    body = {**meta, "runs": [asdict(run) for run in runs], "latency_ms_by_event_type": by_type}
    json_path.write_text(json.dumps(body, indent=2) + "\n")
    # one row per replay and event type (a row "all" per replay): the raw latencies of a full run
    # are a hundred thousand rows, the chart shows their distribution
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mode", "event", "n", "p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"])
        for mode, values in samples.items():
            groups = {"all": [ms for _, ms in values]}
            for kind in sorted({k for k, _ in values}):
                groups[kind] = [ms for k, ms in values if k == kind]
            for kind, group in groups.items():
                stats = summarize(group)
                row = [stats.p50, stats.p95, stats.p99, stats.max, stats.mean]
                writer.writerow([mode, kind, stats.n, *(round(x, 4) for x in row)])
    written = [json_path, csv_path]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    figure, (cdf, ticks) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, values in samples.items():
        ordered = sorted(ms for _, ms in values)
        if ordered:
            fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
            cdf.step(ordered, fractions, where="post", label=f"{mode} (p99 {percentile(ordered, 99):.3g} ms)")
    cdf.set_xscale("log")
    cdf.set_xlabel("frame -> end of its handler (ms, log scale)")
    cdf.set_ylabel("fraction of events")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(loc="lower right")
    for (mode, (late, busy)), colour in zip(stalls.items(), ("tab:blue", "tab:orange"), strict=False):
        ticks.plot(range(len(late)), late, linewidth=0.5, alpha=0.3, color=colour)
        label = f"{mode}: loop busy (max {max(busy, default=0):.1f} ms); faint: wall"
        ticks.plot(range(len(busy)), busy, linewidth=0.7, color=colour, label=label)
    ticks.axhline(50, color="red", linewidth=0.8, linestyle="--", label="50 ms")
    ticks.set_xlabel("ticker wake-up")
    ticks.set_ylabel("lateness (ms)")
    ticks.grid(True, alpha=0.3)
    ticks.legend(loc="upper right")
    figure.suptitle(f"ARI event replay: {meta['settings']['calls']} calls, {runs[0].events:,} events")
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    return [*written, png_path]


def _mix(frames: Sequence[Frame]) -> dict[str, int]:
    return dict(Counter(f.kind for f in frames).most_common())


async def run_all(args: argparse.Namespace, work: Path) -> tuple[list[Run], dict[str, Any], dict[str, Any]]:
    config = load_config(ROOT / "dialplan", ROOT / "skills")
    settings = bench_settings(work / "state")
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        filename=str(work / "controller.log"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    prompt_base = settings.prompt_dir_for_asterisk
    warm = record_stream(
        config, calls=max(20, args.calls // 20), cps=args.cps, seed=args.seed + 1, prompt_base=prompt_base, first=10**6
    )
    frames = record_stream(config, calls=args.calls, cps=args.cps, seed=args.seed, prompt_base=prompt_base)
    nominal = max(f.at for f in frames)
    print(
        f"stream: {args.calls:,} calls, {len(frames):,} events over {nominal:.0f} s nominal "
        f"({len(frames) / nominal:,.0f} events/s at {args.cps:g} calls/s)\nmix: {_mix(frames)}",
        flush=True,
    )
    await replay(
        warm, config, settings, mode="warm-up", speed=None, burst=args.burst, tick_ms=args.tick_ms, store=args.store
    )
    runs: list[Run] = []
    samples: dict[str, list[tuple[str, float]]] = {}
    stalls: dict[str, tuple[list[float], list[float]]] = {}
    profile = cProfile.Profile() if args.profile else None
    for mode, speed in (("10x", args.speed), ("flat_out", None)):
        if mode == "10x" and not speed:
            continue
        print(f"replaying {mode} ...", flush=True)
        run, latencies, ticks = await replay(
            frames,
            config,
            settings,
            mode=mode,
            speed=speed,
            burst=args.burst,
            tick_ms=args.tick_ms,
            store=args.store,
            profile=profile if mode == "flat_out" else None,
        )
        runs.append(run)
        samples[mode], stalls[mode] = latencies, ticks
    if profile is not None:
        print("\nflat-out replay, cProfile, top 25 by cumulative time:")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        print("top 25 by own time:")
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    meta = {
        "benchmark": NAME,
        "machine": machine("not used (fake ARI)"),
        "settings": {k: v for k, v in vars(args).items() if k not in ("profile", "out")},
        "stream": {"events": len(frames), "nominal_seconds": nominal, "mix": _mix(frames)},
    }
    return runs, samples, {"stalls": stalls, "meta": meta}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.event_replay", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--calls", type=int, default=2_000, help="callers in the stream (default 2000)")
    parser.add_argument("--cps", type=float, default=10.0, help="nominal arrivals per second (default 10)")
    parser.add_argument("--speed", type=float, default=10.0, help="replay speed-up of the paced run (0: skip it)")
    parser.add_argument("--burst", type=int, default=64, help="frames fed before the loop runs (default 64)")
    parser.add_argument("--tick-ms", type=float, default=5.0, help="stall ticker period (default 5 ms)")
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory", help="contact records")
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING"), default="INFO")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the flat-out replay")
    parser.add_argument("--quick", action="store_true", help="300 calls: a few seconds")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results folder ({RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls = 300
    if args.calls < 1 or args.burst < 1 or args.cps <= 0:
        parser.error("--calls, --burst and --cps must be positive")
    work = Path(tempfile.mkdtemp(prefix="unico-bench-events-"))
    try:
        runs, samples, extra = asyncio.run(run_all(args, work))
    finally:
        logging.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(runs_table(runs))
    for run in runs:
        print(
            f"{run.mode}: {run.calls_started} calls started, {run.calls_finished} finished, "
            f"{run.dropped} late events dropped (their call had ended), {run.handler_errors} handler errors, "
            f"{run.command_errors} command errors, playbacks matched {run.playbacks_matched:.1%}, "
            f"CPU {run.cpu_s:.2f} s over {run.wall_s:.2f} s"
        )
    for path in write_outputs(runs, samples, extra["stalls"], extra["meta"], args.out):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
