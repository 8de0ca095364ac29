"""The controller process: ARI events in, IVR calls out, records kept, config hot-reloadable.

Wiring (explicit, nothing discovered): ``AriEventStream`` reads the websocket and hands every event
to ``Dispatcher.dispatch`` (never awaits); the dispatcher runs one actor per call (``CallActor``)
and one control actor that reconciles with Asterisk on every (re)connect. The admin web server
(``unico.web``) exposes health and reload. The current ``IvrConfig`` is one immutable object: a
reload builds and checks a new one off the event loop and swaps the reference; calls in progress
keep the object they started with.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from acd.agents import Agent, AgentState
from contacts import AgentStateLog, ContactStore, CustomerStore, IvrServices, RetentionPolicy, deadlines, purge
from contacts.batch import batch
from contacts.writer import DeferredContactWrites, ThreadWriter, WriteQueue
from ivr import engine
from ivr.actions import Registry, registry
from ivr.config import IvrConfig, load_config
from ivr.source import ConfigErrors
from ivr.tts import TtsError, render_prompts
from unico.acd_service import AcdService, CallMessage
from unico.ari import (
    MODELLED_EVENTS,
    ApplicationReplaced,
    AriEventStream,
    AriRest,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    Connected,
    Disconnected,
    Dispatcher,
    EndpointStateChange,
    Event,
    Outcome,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
    gone_ok,
)
from unico.calls import CallDeps, CallStats, Internal, IvrCall, utc_now
from unico.feature_codes import FeatureCodeCall
from unico.lease import Lease
from unico.loopwatch import LoopWatch
from unico.queued_call import QueueTimer
from unico.recovery import Adopt, CallSnapshot, DestroyBridge, Gone, HangupChannel, Resume, plan
from unico.settings import Settings
from unico.supervision import Supervision

log = logging.getLogger(__name__)

#: record writes wait this long for others to share their transaction (contacts/writer.py): at 24
#: calls a second a commit per write, each its own trip to the writer's thread, and the aiosqlite
#: pool's churn cost the controller about a sixth of its CPU per call (bench/results/ab_records/)
RECORD_LINGER_S = 0.1
#: endpoint subscriptions per ARI request (Asterisk caps the values of one ``eventSource``)
SUBSCRIBE_BATCH = 100
#: what the endpoints app (``Settings.ari_endpoints_app``) is for: registrations, and being replaced
ENDPOINT_APP_EVENTS = (EndpointStateChange, ApplicationReplaced)
ENDPOINT_APP_EVENT_TYPES = frozenset(cls.TYPE for cls in ENDPOINT_APP_EVENTS)


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    version: str
    errors: list[str]


@dataclass(frozen=True, slots=True)
class RebuildLive:
    """Redis lost its data: the call writes its line, claim or conversation back."""


@dataclass(frozen=True, slots=True)
class Recover:
    """The first item of a recovered call's actor: what ``unico.recovery.plan`` decided."""

    action: Resume | Gone


class CallActor:
    """Routes one call's ARI events (and its own timers/actions) into its ``IvrCall``."""

    def __init__(
        self, controller: Controller, first: StasisStart | None = None, *, call: IvrCall | None = None
    ) -> None:
        self.controller = controller
        self.answer = False
        self.overloaded = False
        if call is not None:
            self.call = call
            return
        assert first is not None
        channel = first.channel
        args = list(first.args)
        dialled = args[1] if len(args) > 1 and args[0] == "inbound" else channel.dialplan_exten
        self.call = IvrCall(
            controller.deps,
            controller.config,
            channel_id=channel.id,
            dialled=dialled,
            caller=channel.caller_number or None,
        )
        self.answer = channel.state != "Up"
        #: over the dialplan's max_calls when it arrived: the caller hears the overload node
        limit = controller.config.settings.max_calls
        self.overloaded = limit is not None and controller.admitted() >= limit
        self.call.overloaded = self.overloaded

    async def on_event(
        self, event: Event | Internal | QueueTimer | CallMessage | Recover | RebuildLive
    ) -> Outcome | None:
        call = self.call
        log.debug("call %s: event %s", call.channel_id, type(event).__name__)
        if isinstance(event, RebuildLive):
            if call.queued is not None and not call.closed:
                await call.queued.rebuild_live()
        elif isinstance(event, Recover):
            action = event.action
            if isinstance(action, Resume):
                await call.resume(leg_alive=action.leg_alive, bridge_alive=action.bridge_alive)
            else:
                await call.left_behind()
                self.controller.calls.pop(call.channel_id, None)
                return Outcome.FINISHED
        elif isinstance(event, StasisStart | StasisEnd | ChannelHangupRequest | ChannelDestroyed) and (
            event.channel.id != call.channel_id
        ):
            # the operator's leg of this call (linked to this actor when it was originated)
            if isinstance(event, StasisStart):
                await call.agent_leg_event(event.channel.id, answered=True)
            else:
                cause = event.cause if isinstance(event, ChannelHangupRequest | ChannelDestroyed) else None
                await call.agent_leg_event(event.channel.id, answered=False, cause=cause)
        elif isinstance(event, StasisStart):
            await call.start(answer=self.answer, overloaded=self.overloaded)
        elif isinstance(event, ChannelDtmfReceived):
            if event.channel.id == call.channel_id:
                await call.feed(engine.Dtmf(event.digit))
        elif isinstance(event, PlaybackFinished):
            playback = event.playback
            if playback.failed:
                log.warning("call %s: playback of %s failed", call.channel_id, playback.media_uri)
            await call.playback_finished(playback.id, playback.failed)
        elif isinstance(event, RecordingFinished):
            rec = event.recording
            await call.feed(engine.RecordingFinished(rec.name, _seconds(rec.talking_duration, rec.duration)))
        elif isinstance(event, RecordingFailed):
            await call.feed(engine.RecordingFailed(event.recording.name, event.recording.cause or "failed"))
        elif isinstance(event, ChannelHangupRequest | StasisEnd):
            # The hang-up request comes first; the playback it cuts short then reports "finished"
            # (state failed) before StasisEnd, and must not move the caller on to the next node.
            await call.close()
        elif isinstance(event, Internal):
            await call.feed(event.event)
        elif isinstance(event, QueueTimer | CallMessage):
            await call.acd_item(event)
        if call.closed:
            self.controller.calls.pop(call.channel_id, None)
            return Outcome.FINISHED
        return None


def _seconds(talking: int | None, total: int | None) -> float | None:
    """Prefer the talking duration (what the caller actually said) when Asterisk reports it."""
    value = talking if talking is not None and talking >= 0 else total
    return float(value) if value is not None else None


class Controller:
    def __init__(
        self,
        settings: Settings,
        config: IvrConfig,
        store: ContactStore,
        *,
        clock: Callable[[], datetime] = utc_now,
        handlers: Registry = registry,
        sync_prompts: Callable[[], None] | None = None,
        use_redis: bool = True,
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.calls: dict[str, IvrCall] = {}
        self._reload_lock = asyncio.Lock()
        self._sync_prompts = sync_prompts
        self.rest = AriRest(
            settings.ari_url,
            settings.ari_user,
            settings.ari_password.get_secret_value(),
            timeout=settings.ari_request_timeout,
        )
        self.dispatcher = Dispatcher(self._actor_factory, control=self._on_control, name=settings.ari_app)
        self.redis = _redis_client(settings.redis_url) if use_redis else None
        #: one controller commands the app at a time; without Redis (tests) there is no lease
        self.lease = (
            Lease(
                self.redis,
                f"{settings.redis_prefix}lease:{settings.ari_app}",
                node=settings.node_id,
                on_gain=self._serve,
                on_loss=self._stand_down,
                ttl=settings.lease_ttl,
            )
            if self.redis is not None and settings.lease
            else None
        )
        #: record writes of the call path and operator state spans, in order, behind the calls
        self.writes = WriteQueue(
            batch=lambda: batch(store.sessions), thread=ThreadWriter.for_url(store.url), linger=RECORD_LINGER_S
        )
        self.agent_log = AgentStateLog(store.sessions, node=settings.node_id, queue=self.writes)
        self.acd = (
            AcdService(
                redis=self.redis,
                prefix=settings.redis_prefix,
                controller_id=settings.node_id,
                config=lambda: self.config,
                deliver=self.dispatcher.submit,
                on_agent=self.agent_log.note,
                lease=self._lease_value if self.lease is not None else None,
                on_redis_lost=self._rebuild_live_state,
            )
            if self.redis is not None
            else None
        )
        #: listen / whisper / barge (``POST /api/calls/{id}/monitor`` calls ``supervision.monitor``)
        self.supervision = Supervision(self.acd, lambda: self.config)
        self.deps = CallDeps(
            rest=self.rest,
            store=store,
            writes=DeferredContactWrites(store, self.writes),
            handlers=handlers,
            clock=clock,
            prompt_base=settings.prompt_dir_for_asterisk,
            inject=self._inject,
            stats=CallStats(),
            app=settings.ari_app,
            acd=self.acd,
            link=self.dispatcher.link,
            inject_item=self._inject_item,
            node=settings.node_id,
            lookup=CustomerStore(store.sessions, reader=store.reader).lookup,
            services=IvrServices(store, deadlines=deadlines(settings.complaint_deadlines)),
        )
        if self.lease is not None:
            lease = self.lease
            self.rest.fence = lambda: lease.held
        self.events = AriEventStream(
            settings.ari_url,
            settings.ari_user,
            settings.ari_password.get_secret_value(),
            app=(settings.ari_app, settings.ari_endpoints_app),
            on_event=self._on_event,
        )
        #: events of the endpoints app that are no registration change (Asterisk filters them
        #: out; these are what came before the filter was set, or from an Asterisk without one)
        self.endpoint_events_ignored = 0
        self.loop_watch = LoopWatch()
        self.reconciliations = 0
        #: calls taken over from a recovery snapshot, and what the last reconciliation did
        self.recovered = 0
        self.last_reconcile: dict[str, float | int] = {}
        self._background: set[asyncio.Task[None]] = set()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop_watch.start()
        self.writes.start()
        if self.acd is not None:
            await self.acd.start()
        if self.lease is not None:
            self.lease.start()  # the websocket opens once the lease is ours (_serve)
        else:
            self.events.start()
        if self.settings.purge_every_hours > 0:
            task = asyncio.get_running_loop().create_task(self._purge_loop(), name="retention-purge")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _purge_loop(self) -> None:
        """GDPR retention: recordings, complaint audio and contact details past their time go, on
        a schedule (``UNICO_PURGE_EVERY_HOURS``; ``unico purge`` does the same by hand)."""
        policy = RetentionPolicy.from_days(self.settings.retention_days)
        await asyncio.sleep(60.0)
        while True:
            try:
                report = await purge(
                    self.store.sessions,
                    now=utc_now(),
                    policy=policy,
                    files=self.settings.recording_spool_dir,
                    by="scheduled retention purge",
                )
                log.info("retention purge: %s", report.to_json_dict())
            except Exception as exc:  # noqa: BLE001 - the next run tries again
                log.warning("retention purge failed: %s", exc)
            await asyncio.sleep(self.settings.purge_every_hours * 3600)

    def admitted(self) -> int:
        """Calls in the IVR, a queue or a conversation now: what ``settings.max_calls`` bounds
        (callers turned away meanwhile are only hearing the overload node, and are not counted)."""
        return sum(1 for call in self.calls.values() if not call.overloaded)

    def _lease_value(self) -> tuple[str, str] | None:
        assert self.lease is not None
        token = self.lease.token
        return (self.lease.key, token) if token is not None else None

    async def _serve(self) -> None:
        """The lease is ours: open the app's websocket (its Connected reconciles and recovers)."""
        self.events.start()

    async def _stand_down(self, why: str) -> None:
        """Another controller may command our calls now: close the websocket and let go of every
        call without touching it (its snapshot and record stay for whoever takes over)."""
        log.warning("standing down (%s): %d calls left to the next controller", why, len(self.calls))
        await self.events.close()
        for call in list(self.calls.values()):
            call.detach()
        self.calls.clear()
        await self.dispatcher.reset()

    async def close(self) -> None:
        await self.loop_watch.close()
        for task in list(self._background):
            task.cancel()
        if self.lease is not None:
            await self.lease.close()
        await self.events.close()
        await self.dispatcher.close()
        for call in self.calls.values():
            call.detach()
        self.calls.clear()
        if self.acd is not None:
            await self.acd.close()
        await self.writes.close()
        if self.redis is not None:
            await self.redis.aclose(close_connection_pool=True)
        await self.rest.close()

    @property
    def ready(self) -> bool:
        return self.events.connected and (self.lease is None or self.lease.held) and not self.events.replaced

    @property
    def role(self) -> str:
        """``active`` (commands the app), ``standby`` (waits for the lease), ``replaced`` (another
        websocket took the app), or ``connecting``."""
        if self.lease is not None and self.lease.role != "active":
            return self.lease.role
        if self.events.replaced:
            return "replaced"
        return "active" if self.events.connected else "connecting"

    def health(self) -> dict[str, Any]:
        stats = self.deps.stats
        dispatch = self.dispatcher.stats()
        return {
            "ready": self.ready,
            "role": self.role,
            "node": self.settings.node_id,
            "ari_requests": dict(self.rest.sent),
            "ari_fenced": self.rest.fenced,
            "config_version": self.config.version,
            "calls": stats.calls,
            "timers": stats.timers,
            "actions": stats.actions,
            "calls_started": stats.started,
            "calls_finished": stats.finished,
            "calls_overloaded": stats.overloaded,
            "calls_admitted": self.admitted(),
            "command_errors": stats.errors,
            "actors": dispatch.live_actors,
            "handler_errors": dispatch.handler_errors,
            "ari_events": self.events.events_received,
            "ari_events_by_type": dict(self.events.events_by_type),
            "endpoint_events_ignored": self.endpoint_events_ignored,
            "reconnects": self.events.reconnects,
            "ari_connect_attempts": self.events.connect_attempts,
            "reconciliations": self.reconciliations,
            "recovered": self.recovered,
            "last_reconcile": self.last_reconcile,
            "routing_decisions": self.acd.decisions if self.acd is not None else 0,
            "claims_lost": self.acd.claims_lost if self.acd is not None else 0,
            "redis_rebuilds": self.acd.rebuilds if self.acd is not None else 0,
            "tasks": len(asyncio.all_tasks()),
            "loop_lag": self.loop_watch.stats(),
            "record_writes": self.writes.stats(),
            #: memory blocks Python's allocator holds (objects, not the C libraries' memory): a
            #: leak of objects grows it, a cache of C memory or a fragmented heap does not
            "python_blocks": sys.getallocatedblocks(),
        }

    # --- events ---------------------------------------------------------------------------------

    def _actor_factory(self, key: str, first: Event) -> Callable[[Any], Any] | None:
        if not isinstance(first, StasisStart):
            return None
        kind = first.args[0] if first.args else ""
        if kind in ("agent", "monitor", "snoop"):
            # an operator or a supervisor answered (or a snoop started) after their call ended
            log.info("%s leg %s started for a call that is over: hanging up", kind, key)
            self._spawn_hangup(key)
            return None
        if kind == "operator":
            return FeatureCodeCall(
                rest=self.rest,
                acd=self.acd,
                config=self.config,
                prompt_base=self.settings.prompt_dir_for_asterisk,
                first=first,
            ).on_event
        actor = CallActor(self, first)
        self.calls[key] = actor.call
        return actor.on_event

    def _inject(self, item: Internal) -> None:
        self.dispatcher.submit(item.channel_id, item)

    def _inject_item(self, key: str, item: object) -> None:
        self.dispatcher.submit(key, item)

    def _spawn_hangup(self, channel_id: str) -> None:
        async def hangup() -> None:
            with gone_ok():
                await self.rest.hangup(channel_id)

        self._spawn(hangup(), f"hangup-{channel_id}")

    def _on_event(self, event: Event) -> None:
        """Every event of the websocket. The endpoints app only reports registrations: the
        operator legs' own events come through the calls' app."""
        if getattr(event, "application", None) == self.settings.ari_endpoints_app and not isinstance(
            event, ENDPOINT_APP_EVENTS
        ):
            self.endpoint_events_ignored += 1
            return
        self.dispatcher.dispatch(event)

    async def set_event_filters(self) -> None:
        """Ask Asterisk for only the events the controller uses: on the calls' app the modelled
        types (no ``ChannelVarset``, ``ChannelDialplan``, ``ChannelCallerId`` ...), on the
        endpoints app the registration changes. Asterisk drops the others before the websocket,
        so neither side spends time on them. An Asterisk that refuses (older than 16) sends
        everything, as before; the handlers ignore what they do not model."""
        filters = (
            (self.settings.ari_app, MODELLED_EVENTS),
            (self.settings.ari_endpoints_app, ENDPOINT_APP_EVENT_TYPES),
        )
        for app, allowed in filters:
            try:
                await self.rest.set_event_filter(app, allowed=allowed)
            except Exception as exc:  # noqa: BLE001 - the unfiltered stream works too
                log.warning("cannot set the event filter of ARI app %s: %s", app, exc)

    async def _on_control(self, event: Event) -> None:
        if isinstance(event, Connected):
            log.info("ARI connected (%s)", "reconnect" if event.reconnect else "first connect")
            await self.set_event_filters()
            await self.reconcile()
            await self.sync_registrations()
        elif isinstance(event, Disconnected):
            if event.reason == "closed by us":
                log.info("ARI disconnected: shutting down")
            else:
                log.warning("ARI disconnected: %s", event.reason)
        elif isinstance(event, ApplicationReplaced):
            # Asterisk gave our app to another websocket: it commands the calls now, we must not
            if self.lease is not None:
                await self.lease.step_aside("ApplicationReplaced: another websocket took the app")
            else:
                await self._stand_down("ApplicationReplaced: another websocket took the app")
        elif isinstance(event, EndpointStateChange) and self.acd is not None:
            endpoint = event.endpoint
            if endpoint.technology == "PJSIP":
                await self.acd.registration(endpoint.resource, endpoint.state == "online")

    async def sync_registrations(self) -> None:
        """Subscribe to each operator's endpoint and read its current state: an unregistered
        softphone is never offered a call.

        The subscriptions belong to the endpoints app (``Settings.ari_endpoints_app``), not to
        the calls' app: an app subscribed to an endpoint also gets every event of every channel
        on it, so each operator leg's events would reach the calls' app twice, doubling their
        share of the one event queue Asterisk keeps per app (the queue that filled first in the
        capacity soak). The endpoints app's own queue carries them, and its event filter lets
        only the registration changes through. One subscription per operator, not
        ``endpoint:PJSIP``, so the carrier's channels are not among them. Device states are no
        substitute: they stay RINGING while a vanished softphone's leg still rings."""
        if self.acd is None:
            return
        app = self.settings.ari_endpoints_app
        sources = [f"endpoint:PJSIP/{agent_id}" for agent_id in self.config.operators]
        # Asterisk refuses more than a hundred-odd sources in one request ("Too many values for
        # event_source", found at ~120 operators by bench/capacity.py): subscribe in batches.
        for start in range(0, len(sources), SUBSCRIBE_BATCH):
            try:
                await self.rest.subscribe(app, sources[start : start + SUBSCRIBE_BATCH])
            except Exception as exc:  # noqa: BLE001 - the next reconnect tries again
                log.warning("cannot subscribe to operators' endpoints: %s", exc)
        await self._drop_calls_app_endpoints()
        try:
            states = {e.resource: e.state == "online" for e in await self.rest.list_endpoints("PJSIP")}
        except Exception as exc:  # noqa: BLE001 - the next reconnect tries again
            log.warning("cannot read the operators' endpoint states: %s", exc)
            return
        for agent_id in self.config.operators:
            # an operator without a PJSIP endpoint (not generated yet) is not registered
            await self.acd.registration(agent_id, states.get(agent_id, False))

    async def reconcile(self) -> None:
        """Make our calls match Asterisk's after a (re)connect: events may have been missed.

        Calls we know whose channel is gone are closed. For the rest ``unico.recovery.plan``
        decides: queued calls a dead controller left (their snapshots in Redis) go on where they
        were, or are closed as their state says if the caller hung up meanwhile; other channels
        in our app that we do not know are adopted and start their number's entry menu again;
        legs and bridges of calls that are over go. Contact records left open by a previous
        process whose channel is gone are closed as interrupted.
        """
        started = time.monotonic()
        app = self.settings.ari_app
        try:
            channels = await self.rest.list_channels()
            bridges = await self.rest.list_bridges()
        except Exception as exc:  # noqa: BLE001 - the next reconnect tries again
            log.warning("reconcile: cannot list channels and bridges: %s", exc)
            return
        self.reconciliations += 1
        live = {c.id: c for c in channels if c.is_in_app(app)}
        for channel_id in list(self.calls):
            if channel_id not in live:
                log.info("reconcile: call %s ended while we were away", channel_id)
                self.dispatcher.submit(channel_id, Internal(channel_id, engine.HungUp()))
        snapshots = await self._snapshots()
        known = set(self.calls) | set(self.dispatcher.actor_keys())
        counts: dict[str, int] = {}
        for action in plan(app=app, channels=channels, bridges=bridges, snapshots=snapshots, known=known):
            kind = type(action).__name__
            counts[kind] = counts.get(kind, 0) + 1
            if isinstance(action, Resume | Gone):
                self._recover(action)
            elif isinstance(action, Adopt):
                self._adopt(action.channel)
            elif isinstance(action, HangupChannel):
                log.info("reconcile: hanging up %s (%s)", action.channel_id, action.why)
                self._spawn_hangup(action.channel_id)
            elif isinstance(action, DestroyBridge):
                log.info("reconcile: destroying bridge %s (%s)", action.bridge_id, action.why)
                self._spawn(self._destroy_bridge(action.bridge_id), f"destroy-{action.bridge_id}")
        self.last_reconcile = {"took_ms": round((time.monotonic() - started) * 1000, 1), **counts}
        if counts:
            log.info("reconcile: %s", ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        try:
            stale = await self.store.open_contacts(node=self.settings.node_id)
        except Exception as exc:  # noqa: BLE001 - the database is down: the next reconnect closes them
            log.warning("reconcile: cannot read the open contact records: %s", exc)
            return
        for record in stale:
            if record.id not in live and record.id not in self.calls and record.id not in snapshots:
                await self.store.finish_contact(
                    contact_id=record.id,
                    ended_at=self.deps.clock(),
                    outcome="interrupted",
                    ivr_path=record.ivr_path,
                    data=record.data,
                    language=record.language,
                    ivr_ended_at=self.deps.clock(),
                )

    async def _rebuild_live_state(self) -> None:
        """Redis lost its data (``acd.live`` is a cache): write back what we know. Operators Redis
        no longer knows get their last state from the database's history (a ringing one is ready
        again: its call's owner rings it anew); their softphones' registrations come from ARI;
        each of our queued calls writes its own line, claim or conversation back (in its actor)."""
        assert self.acd is not None
        live = self.acd.live
        try:
            last = await self.agent_log.current()
        except Exception as exc:  # noqa: BLE001 - without the history, operators log in again
            log.warning("rebuild: cannot read the operators' last states: %s", exc)
            last = {}
        restored = 0
        for agent_id in self.config.operators:
            change = last.get(agent_id)
            if change is None or await live.get_agent(agent_id) is not None:
                continue
            state, reason, call_id = change.state, change.reason, change.call_id
            if state is AgentState.RINGING or (state is AgentState.ON_CALL and not call_id):
                state, reason, call_id = AgentState.READY, None, None
            agent = Agent(id=agent_id, state=state, reason=reason, since=change.since, call_id=call_id)
            await live.set_agent(agent)
            restored += 1
        await self.sync_registrations()
        calls = [call_id for call_id, call in self.calls.items() if call.queued is not None]
        for call_id in calls:
            self.dispatcher.submit(call_id, RebuildLive())
        log.warning("rebuild: %d operators from their history, %d calls written back", restored, len(calls))

    async def _snapshots(self) -> dict[str, CallSnapshot]:
        """The recovery snapshots of calls of our ARI app (other apps' calls live on other
        Asterisk nodes: their own controllers recover them)."""
        if self.acd is None:
            return {}
        try:
            stored = await self.acd.live.sessions()
        except Exception as exc:  # noqa: BLE001 - without Redis there is nothing to recover
            log.warning("reconcile: cannot read call snapshots: %s", exc)
            return {}
        result: dict[str, CallSnapshot] = {}
        for call_id, text in stored.items():
            try:
                snapshot = CallSnapshot.from_json(text)
            except ValueError as exc:
                log.warning("reconcile: snapshot of call %s ignored: %s", call_id, exc)
                continue
            if snapshot.app == self.settings.ari_app:
                result[call_id] = snapshot
        return result

    def _recover(self, action: Resume | Gone) -> None:
        snapshot = action.snapshot.moved_to(self.settings.node_id)
        try:
            call = IvrCall.recovered(self.deps, self.config, snapshot)
        except ValueError as exc:
            log.warning("reconcile: call %s cannot go on where it was (%s)", snapshot.call_id, exc)
            if isinstance(action, Resume):
                self._adopt(action.caller)
            return
        # the operator's leg (and an earlier version's holding bridge) route to the call before any
        # held event is released: an answer arriving now must find the call, not be hung up as a
        # stray leg
        queued = snapshot.queue
        if queued.agent_channel:
            self.dispatcher.link(queued.agent_channel, call.channel_id)
        if queued.hold_bridge:
            self.dispatcher.link(f"bridge:{queued.hold_bridge}", call.channel_id)
        actor = CallActor(self, call=call)
        if self.dispatcher.start_actor(call.channel_id, actor.on_event, Recover(action)):
            self.calls[call.channel_id] = call
            self.recovered += 1

    def _adopt(self, channel: Channel) -> None:
        log.info("reconcile: adopting call %s", channel.id)
        args = tuple(a.strip() for a in channel.dialplan_app_data.split(",")[1:])
        event = StasisStart(application=self.settings.ari_app, channel=channel, args=args)
        self.dispatcher.dispatch(event, now=True)

    async def _destroy_bridge(self, bridge_id: str) -> None:
        with gone_ok():
            await self.rest.destroy_bridge(bridge_id)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _drop_calls_app_endpoints(self) -> None:
        """A controller before the endpoints app subscribed the calls' app to the endpoints, and
        Asterisk keeps an app's subscriptions across websockets: take them off."""
        app = self.settings.ari_app
        try:
            stale = [f"endpoint:{e}" for e in (await self.rest.get_application(app)).endpoint_ids]
            for start in range(0, len(stale), SUBSCRIBE_BATCH):
                await self.rest.unsubscribe(app, stale[start : start + SUBSCRIBE_BATCH])
        except Exception as exc:  # noqa: BLE001 - duplicates cost time, they break nothing
            log.warning("cannot drop the endpoint subscriptions of ARI app %s: %s", app, exc)

    # --- config ---------------------------------------------------------------------------------

    async def reload(self) -> ReloadResult:
        """Load, check and render the config off the loop; swap it only if all of it is good."""
        async with self._reload_lock:
            try:
                config = await asyncio.to_thread(self._prepare_config)
            except ConfigErrors as exc:
                errors = [str(e) for e in exc.errors]
                log.error("reload refused, keeping config %s:\n%s", self.config.version, "\n".join(errors))
                return ReloadResult(False, self.config.version, errors)
            except TtsError as exc:
                log.error("reload refused, keeping config %s: %s", self.config.version, exc)
                return ReloadResult(False, self.config.version, [str(exc)])
            old, self.config = self.config, config
            log.info("config reloaded: %s -> %s", old.version, config.version)
            return ReloadResult(True, config.version, [])

    def _prepare_config(self) -> IvrConfig:
        config = load_config(self.settings.dialplan_dir, self.settings.skills_dir)
        prepare_prompts(config, self.settings, self._sync_prompts)
        return config


def prepare_prompts(config: IvrConfig, settings: Settings, sync: Callable[[], None] | None) -> None:
    """Render missing text prompts, then make them reachable by Asterisk."""
    render_prompts(config, settings.tts_dir)
    if sync is not None:
        sync()


#: Redis connections one controller opens at most; a command beyond waits up to REDIS_WAIT seconds
#: for one to be free. redis-py's default pool refuses the 101st at once ("Too many connections"),
#: which under overload (hundreds of calls each awaiting Redis) failed calls instead of queueing
#: them a few milliseconds.
REDIS_CONNECTIONS = 256
REDIS_WAIT = 5.0


def _redis_client(url: str) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT
    )
    return aioredis.Redis(connection_pool=pool)
