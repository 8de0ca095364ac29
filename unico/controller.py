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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from contacts import AgentStateLog, ContactStore, CustomerStore, IvrServices, RetentionPolicy, deadlines, purge
from contacts.writer import DeferredContactWrites, WriteQueue
from ivr import engine
from ivr.actions import Registry, registry
from ivr.config import IvrConfig, load_config
from ivr.source import ConfigErrors
from ivr.tts import TtsError, render_prompts
from unico.acd_service import AcdService, CallMessage
from unico.ari import (
    AriEventStream,
    AriRest,
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
from unico.queued_call import QueueTimer
from unico.settings import Settings
from unico.supervision import Supervision

log = logging.getLogger(__name__)

#: endpoint subscriptions per ARI request (Asterisk caps the values of one ``eventSource``)
SUBSCRIBE_BATCH = 100


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    version: str
    errors: list[str]


class CallActor:
    """Routes one call's ARI events (and its own timers/actions) into its ``IvrCall``."""

    def __init__(self, controller: Controller, first: StasisStart) -> None:
        self.controller = controller
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

    async def on_event(self, event: Event | Internal | QueueTimer | CallMessage) -> Outcome | None:
        call = self.call
        log.debug("call %s: event %s", call.channel_id, type(event).__name__)
        if isinstance(event, StasisStart | StasisEnd | ChannelHangupRequest | ChannelDestroyed) and (
            event.channel.id != call.channel_id
        ):
            # the operator's leg of this call (linked to this actor when it was originated)
            if isinstance(event, StasisStart):
                await call.agent_leg_event(event.channel.id, answered=True)
            else:
                cause = event.cause if isinstance(event, ChannelHangupRequest | ChannelDestroyed) else None
                await call.agent_leg_event(event.channel.id, answered=False, cause=cause)
        elif isinstance(event, StasisStart):
            await call.start(answer=self.answer)
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
        self.redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True) if use_redis else None
        #: record writes of the call path and operator state spans, in order, behind the calls
        self.writes = WriteQueue()
        self.agent_log = AgentStateLog(store.sessions, node=settings.node_id, queue=self.writes)
        self.acd = (
            AcdService(
                redis=self.redis,
                prefix=settings.redis_prefix,
                controller_id=settings.node_id,
                config=lambda: self.config,
                deliver=self.dispatcher.submit,
                on_agent=self.agent_log.note,
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
            lookup=CustomerStore(store.sessions).lookup,
            services=IvrServices(store, deadlines=deadlines(settings.complaint_deadlines)),
        )
        self.events = AriEventStream(
            settings.ari_url,
            settings.ari_user,
            settings.ari_password.get_secret_value(),
            app=settings.ari_app,
            on_event=self.dispatcher.dispatch,
        )
        self.reconciliations = 0
        self._background: set[asyncio.Task[None]] = set()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.writes.start()
        if self.acd is not None:
            await self.acd.start()
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

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.events.close()
        await self.dispatcher.close()
        for call in self.calls.values():
            call.detach()
        self.calls.clear()
        if self.acd is not None:
            await self.acd.close()
        await self.writes.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.rest.close()

    @property
    def ready(self) -> bool:
        return self.events.connected

    def health(self) -> dict[str, Any]:
        stats = self.deps.stats
        dispatch = self.dispatcher.stats()
        return {
            "ready": self.ready,
            "config_version": self.config.version,
            "calls": stats.calls,
            "timers": stats.timers,
            "actions": stats.actions,
            "calls_started": stats.started,
            "calls_finished": stats.finished,
            "command_errors": stats.errors,
            "actors": dispatch.live_actors,
            "handler_errors": dispatch.handler_errors,
            "reconnects": self.events.reconnects,
            "reconciliations": self.reconciliations,
            "routing_decisions": self.acd.decisions if self.acd is not None else 0,
            "claims_lost": self.acd.claims_lost if self.acd is not None else 0,
            "tasks": len(asyncio.all_tasks()),
            "record_writes": self.writes.stats(),
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

        task = asyncio.get_running_loop().create_task(hangup(), name=f"hangup-{channel_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _on_control(self, event: Event) -> None:
        if isinstance(event, Connected):
            log.info("ARI connected (%s)", "reconnect" if event.reconnect else "first connect")
            await self.reconcile()
            await self.sync_registrations()
        elif isinstance(event, Disconnected):
            if event.reason == "closed by us":
                log.info("ARI disconnected: shutting down")
            else:
                log.warning("ARI disconnected: %s", event.reason)
        elif isinstance(event, EndpointStateChange) and self.acd is not None:
            endpoint = event.endpoint
            if endpoint.technology == "PJSIP":
                await self.acd.registration(endpoint.resource, endpoint.state == "online")

    async def sync_registrations(self) -> None:
        """Subscribe to each operator's endpoint and read its current state: an unregistered
        softphone is never offered a call.

        One subscription per operator, not ``endpoint:PJSIP``: an app subscribed to an endpoint
        also gets the events of every channel on it, and the carrier's callers must not arrive
        twice. Operator legs do arrive twice (as our originated channels and through the
        endpoint); their handlers are idempotent. Device states are no substitute: they stay
        RINGING while a vanished softphone's leg still rings."""
        if self.acd is None:
            return
        sources = [f"endpoint:PJSIP/{agent_id}" for agent_id in self.config.operators]
        # Asterisk refuses more than a hundred-odd sources in one request ("Too many values for
        # event_source", found at ~120 operators by bench/capacity.py): subscribe in batches.
        for start in range(0, len(sources), SUBSCRIBE_BATCH):
            try:
                await self.rest.subscribe(self.settings.ari_app, sources[start : start + SUBSCRIBE_BATCH])
            except Exception as exc:  # noqa: BLE001 - the next reconnect tries again
                log.warning("cannot subscribe to operators' endpoints: %s", exc)
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

        Calls we know whose channel is gone are closed; channels in our app that we do not know
        (a restarted controller) are adopted and start their number's entry menu again; contact
        records left open by a previous process whose channel is gone are closed as interrupted.
        """
        try:
            channels = await self.rest.list_channels()
        except Exception as exc:  # noqa: BLE001 - the next reconnect tries again
            log.warning("reconcile: cannot list channels: %s", exc)
            return
        self.reconciliations += 1
        live = {c.id: c for c in channels if c.is_in_app(self.settings.ari_app)}
        for channel_id in list(self.calls):
            if channel_id not in live:
                log.info("reconcile: call %s ended while we were away", channel_id)
                self.dispatcher.submit(channel_id, Internal(channel_id, engine.HungUp()))
        for channel_id, channel in live.items():
            if channel_id not in self.calls and not self.dispatcher.has_actor(channel_id):
                log.info("reconcile: adopting call %s", channel_id)
                args = tuple(a.strip() for a in channel.dialplan_app_data.split(",")[1:])
                self.dispatcher.dispatch(StasisStart(application=self.settings.ari_app, channel=channel, args=args))
        stale = await self.store.open_contacts(node=self.settings.node_id)
        for record in stale:
            if record.id not in live and record.id not in self.calls:
                await self.store.finish_contact(
                    contact_id=record.id,
                    ended_at=self.deps.clock(),
                    outcome="interrupted",
                    ivr_path=record.ivr_path,
                    data=record.data,
                    language=record.language,
                    ivr_ended_at=self.deps.clock(),
                )

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
