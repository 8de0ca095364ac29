"""One IVR call driven over ARI: the adapter between ARI events and ``ivr.engine.Session``.

An ``IvrCall`` lives inside one per-call actor of the dispatcher, so its events arrive in order and
it never blocks another call. It translates ARI events into engine events, carries out the engine's
commands (play, stop, timers, actions, record, hang up) and keeps the contact record: opened when the
call arrives, closed exactly once when the channel leaves Stasis.

Slow work never runs inline: actions run as their own tasks with a timeout and report back through
the call's queue, like timers, so a hang-up during a slow lookup is handled at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from acd.agents import AgentState
from acd.queues import priority_for
from contacts import ContactStore
from contacts.writer import DeferredContactWrites, WriteQueue
from ivr import engine
from ivr.actions import ActionContext, CallServices, Registry
from ivr.config import IvrConfig
from unico.acd_service import AcdService, CallMessage, Offer
from unico.ari import AriRest, gone_ok
from unico.queued_call import QueuedCall, QueueTimer
from unico.recovery import CallSnapshot, CustomerSnapshot

log = logging.getLogger(__name__)


# Events the call gives itself (timers and finished actions come back through the call's queue).
@dataclass(frozen=True, slots=True)
class Internal:
    channel_id: str
    event: engine.Event


@dataclass
class CallStats:
    """Live counters for /health and the tests' leak checks."""

    calls: int = 0
    timers: int = 0
    actions: int = 0
    started: int = 0
    finished: int = 0
    errors: int = 0
    #: callers over max_calls, sent to the overload node
    overloaded: int = 0


class CustomerInfo(Protocol):
    """What a call needs of the caller's customer record (``contacts`` caller lookup)."""

    @property
    def id(self) -> str: ...
    @property
    def segment(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def last_operator(self) -> str | None: ...


CustomerLookup = Callable[[str], Awaitable[CustomerInfo | None]]


def _no_link(alias: str, key: str) -> None:
    """Without a dispatcher (unit tests) there is nothing to link."""


@dataclass
class CallDeps:
    rest: AriRest
    store: ContactStore
    handlers: Registry
    clock: Callable[[], datetime]
    prompt_base: str
    inject: Callable[[Internal], None]
    stats: CallStats = field(default_factory=CallStats)
    #: the ARI app (operator legs are originated into it)
    app: str = "unico"
    #: the ACD; None means queues answer "unavailable" (a controller without Redis)
    acd: AcdService | None = None
    #: route events of another channel (an operator leg) to this call's actor
    link: Callable[[str, str], None] = _no_link
    #: queue one of the call's own items (a queue timer) into the call's actor
    inject_item: Callable[[str, object], None] = lambda key, item: None
    #: this controller's name, stored on each contact record it opens
    node: str | None = None
    #: finds the caller's customer record by number; None: every caller is a guest
    lookup: CustomerLookup | None = None
    #: a slow customer database must not hold the caller: after this, the caller is a guest
    lookup_timeout: float = 0.3
    #: complaints and surveys for the IVR's actions; None: those actions fail (their on_error)
    services: CallServices | None = None
    #: the call path's record writes, applied behind the call (contacts/writer.py); by default a
    #: queue of its own on ``store``
    writes: DeferredContactWrites | None = None

    def __post_init__(self) -> None:
        if self.writes is None:
            self.writes = DeferredContactWrites(self.store, WriteQueue())

    @property
    def records(self) -> DeferredContactWrites:
        assert self.writes is not None
        return self.writes


class IvrCall:
    def __init__(self, deps: CallDeps, config: IvrConfig, *, channel_id: str, dialled: str, caller: str | None) -> None:
        self.deps = deps
        self.channel_id = channel_id
        self.contact_id = channel_id
        self.started_at = deps.clock()
        self.session = engine.Session(
            config,
            call_id=channel_id,
            dialled=dialled,
            caller=caller,
            clock=deps.clock,
            prompt_base=deps.prompt_base,
        )
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._actions: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self.ivr_ended_at: datetime | None = None
        self.queued: QueuedCall | None = None
        self.customer: CustomerInfo | None = None
        #: turned away by admission control (``settings.max_calls``): only the overload node
        self.overloaded = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self, *, answer: bool = True, overloaded: bool = False) -> None:
        """The caller arrived. ``overloaded`` (over the dialplan's ``max_calls``): no customer
        lookup, no IVR, only the ``overload`` node; the record says ``overload``."""
        stats = self.deps.stats
        stats.calls += 1
        stats.started += 1
        session = self.session
        if overloaded:
            stats.overloaded += 1
        else:
            self.customer = await self._lookup(session.caller)
        if self.customer is not None:
            language = self.customer.language
            if language and language in session.config.settings.languages:
                session.language = language  # greet known callers in their language
        self.deps.records.start_contact(
            contact_id=self.contact_id,
            channel_id=self.channel_id,
            caller=session.caller,
            dialled=session.dialled,
            language=session.language,
            started_at=self.started_at,
            node=self.deps.node,
        )
        if self.customer is not None:
            self.deps.records.link_customer(self.contact_id, self.customer.id)
        log.info(
            "call %s to %s: IVR start (config %s, %s)",
            self.channel_id,
            session.dialled,
            session.config.version,
            "known customer" if self.customer is not None else "guest",
        )
        if answer:
            try:
                await self.deps.rest.answer(self.channel_id)
            except Exception as exc:  # noqa: BLE001 - any failure here means the caller is gone
                log.info("call %s: answer failed (%s), closing", self.channel_id, exc)
                await self.close()
                return
        await self._run(session.start(overloaded=overloaded))

    async def _lookup(self, caller: str | None) -> CustomerInfo | None:
        lookup = self.deps.lookup
        if lookup is None or not caller:
            return None
        try:
            async with asyncio.timeout(self.deps.lookup_timeout):
                return await lookup(caller)
        except Exception as exc:  # noqa: BLE001 - a guest call beats no call
            log.warning("call %s: customer lookup failed (%s), serving as a guest", self.channel_id, type(exc).__name__)
            return None

    async def feed(self, event: engine.Event) -> None:
        """One engine event (from ARI or from our own timers and actions)."""
        if self._closed:
            return
        if isinstance(event, engine.HungUp):
            await self.close()
            return
        await self._run(self.session.handle(event))

    async def close(self) -> None:
        """The channel left Stasis: stop everything of this call and close its record once."""
        if self._closed:
            return
        self._closed = True
        self.session.handle(engine.HungUp())
        self._stop_work()
        if self.queued is not None:
            try:
                await self.queued.caller_gone()
            except Exception:
                self.deps.stats.errors += 1
                log.exception("call %s: ACD clean-up failed", self.channel_id)
        session = self.session
        now = self.deps.clock()
        try:
            self.deps.records.finish_contact(
                contact_id=self.contact_id,
                ended_at=now,
                outcome=session.outcome or "abandoned_ivr",
                ivr_path=session.path_dicts(),
                data=session.public_vars(),
                language=session.language,
                recording=session.recording,
                ivr_ended_at=self.ivr_ended_at or now,
            )
        finally:
            self.deps.stats.calls -= 1
            self.deps.stats.finished += 1
        log.info("call %s: ended, outcome %s", self.channel_id, session.outcome)

    def detach(self) -> None:
        """The controller stops while the caller is still connected: drop our timers and actions
        but leave the contact record open. The caller stays in Stasis and the next controller's
        reconciliation adopts the call (or closes the record if the caller has gone by then)."""
        if self._closed:
            return
        self._closed = True
        self._stop_work()
        if self.queued is not None:
            self.queued.close()  # its timers too: the next controller arms its own
        self.deps.stats.calls -= 1

    # --- recovery (unico.recovery) ---------------------------------------------------------------

    def snapshot(self) -> CallSnapshot | None:
        """What a restarted controller needs to go on with this call; None unless it is queued."""
        queued = self.queued
        acd = self.deps.acd
        if queued is None or acd is None:
            return None
        customer = self.customer
        return CallSnapshot(
            call_id=self.channel_id,
            app=self.deps.app,
            owner=acd.controller_id,
            saved_at=acd.clock(),
            session=self.session.snapshot(),
            started_at=self.started_at.isoformat(),
            ivr_ended_at=self.ivr_ended_at.isoformat() if self.ivr_ended_at is not None else None,
            customer=CustomerSnapshot(
                id=customer.id,
                segment=customer.segment,
                language=customer.language,
                last_operator=customer.last_operator,
            )
            if customer is not None
            else None,
            queue=queued.snapshot(),
        )

    def snapshot_json(self) -> str | None:
        """:meth:`snapshot` as stored (``None`` unless queued), for a write that carries it along."""
        snapshot = self.snapshot()
        return None if snapshot is None else snapshot.to_json()

    async def save_snapshot(self) -> None:
        """Store the snapshot in Redis (each step of the queue treatment calls this). A Redis
        failure costs the call nothing but its recoverability, so it is logged, not raised."""
        snapshot = self.snapshot()
        acd = self.deps.acd
        if snapshot is None or acd is None:
            return
        try:
            await acd.live.save_session(self.channel_id, acd.controller_id, snapshot.to_json())
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("call %s: cannot save its recovery snapshot: %s", self.channel_id, exc)

    async def drop_snapshot(self) -> None:
        acd = self.deps.acd
        if acd is None:
            return
        try:
            await acd.live.drop_session(self.channel_id)
        except Exception as exc:  # noqa: BLE001 - a stale snapshot is cleared by the next reconcile
            log.warning("call %s: cannot drop its recovery snapshot: %s", self.channel_id, exc)

    @classmethod
    def recovered(cls, deps: CallDeps, config: IvrConfig, saved: CallSnapshot) -> IvrCall:
        """The call as ``saved`` left it (``resume`` or ``left_behind`` goes on). Raises
        ``ValueError`` when the snapshot cannot go on under ``config`` (its queue node is gone)."""
        session = engine.Session.restore(config, saved.session, clock=deps.clock, prompt_base=deps.prompt_base)
        if saved.queue.queue not in config.queues or deps.acd is None:
            raise ValueError(f"queue {saved.queue.queue!r} is not served here")
        call = cls(deps, config, channel_id=saved.call_id, dialled=session.dialled, caller=session.caller)
        call.session = session
        call.started_at = datetime.fromisoformat(saved.started_at)
        call.ivr_ended_at = datetime.fromisoformat(saved.ivr_ended_at) if saved.ivr_ended_at else None
        call.customer = saved.customer
        call.queued = QueuedCall.restore(call, deps.acd, saved.queue)
        return call

    def _rewrite_record(self) -> None:
        """The contact row as far as the snapshot knows it: the process that died may not have
        landed its last writes (each write is idempotent, so landing twice changes nothing)."""
        queued = self.queued
        session = self.session
        records = self.deps.records
        records.start_contact(
            contact_id=self.contact_id,
            channel_id=self.channel_id,
            caller=session.caller,
            dialled=session.dialled,
            language=session.language,
            started_at=self.started_at,
            node=self.deps.node,
        )
        if self.customer is not None:
            records.link_customer(self.contact_id, self.customer.id)
        if queued is None:
            return
        answered = queued.state.value == "talking" and queued.agent_id is not None
        records.update_contact(
            self.contact_id,
            queue=queued.queue,
            tier=queued.spec.tier,
            queued_at=queued.queued_wall,
            operator=queued.agent_id if answered else None,
            routing_reason=queued.reason if answered else None,
            answered_at=queued.answered_wall if answered else None,
            estimated_wait=queued.estimated_wait,
        )

    async def resume(self, *, leg_alive: bool, bridge_alive: bool) -> None:
        """Go on with a call a dead controller left in a queue; the caller is still connected."""
        self.deps.stats.calls += 1
        self.deps.stats.started += 1
        self._rewrite_record()
        assert self.queued is not None
        log.info("call %s: recovered in %s, %s", self.channel_id, self.queued.queue, self.queued.state.value)
        await self.queued.resume(leg_alive=leg_alive, bridge_alive=bridge_alive)

    async def left_behind(self) -> None:
        """The caller of a recovered call hung up while no controller listened: close it now."""
        self.deps.stats.calls += 1
        self.deps.stats.started += 1
        self._rewrite_record()
        assert self.queued is not None
        queued, self.queued = self.queued, None
        self._closed = True
        self.session.handle(engine.HungUp())
        try:
            await queued.left_behind()
        except Exception:
            self.deps.stats.errors += 1
            log.exception("call %s: ACD clean-up of a call left behind failed", self.channel_id)
        await self.drop_snapshot()
        now = self.deps.clock()
        try:
            self.deps.records.finish_contact(
                contact_id=self.contact_id,
                ended_at=now,
                outcome=self.session.outcome or "abandoned_queue",
                ivr_path=self.session.path_dicts(),
                data=self.session.public_vars(),
                language=self.session.language,
                recording=self.session.recording,
                ivr_ended_at=self.ivr_ended_at or now,
            )
        finally:
            self.deps.stats.calls -= 1
            self.deps.stats.finished += 1
        log.info("call %s: closed after the caller left unheard, outcome %s", self.channel_id, self.session.outcome)

    # --- the ACD's part -------------------------------------------------------------------------

    async def queue_result(self, request_id: str, result: str) -> None:
        """The ACD is done with the caller: answered, or back to the IVR's treatment."""
        if result != "answered":
            self.queued = None
        await self._run(self.session.handle(engine.QueueResult(request_id, result)))

    async def acd_item(self, item: object) -> None:
        """A queue timer or an ACD message (offer, interrupt, transfer) for this call."""
        if self._closed or self.queued is None:
            if isinstance(item, Offer) and self.deps.acd is not None:
                # the caller is no longer queued here: free the operator at once
                await self.deps.acd.release_offer(
                    item.agent_id, item.call_id, requeue=False, agent_state=AgentState.READY
                )
            return
        if isinstance(item, QueueTimer):
            await self.queued.on_timer(item)
        elif isinstance(item, CallMessage):
            await self.queued.on_message(item)

    async def agent_leg_event(self, channel_id: str, *, answered: bool, cause: int | None = None) -> None:
        if self.queued is None:
            if answered:
                await _gone_ok(self.deps.rest.hangup(channel_id))
            return
        if answered:
            await self.queued.agent_answered(channel_id)
        else:
            await self.queued.agent_leg_gone(channel_id, cause)

    async def playback_finished(self, playback_id: str, failed: bool) -> None:
        if self.queued is not None and await self.queued.playback_finished(playback_id):
            return
        await self.feed(engine.PlaybackFinished(playback_id, failed=failed))

    async def _enqueue(self, command: engine.Enqueue) -> None:
        self.ivr_ended_at = self.deps.clock()
        acd = self.deps.acd
        spec = self.session.config.queues.get(command.queue)
        if acd is None or spec is None:
            log.warning("call %s: no ACD for queue %s", self.channel_id, command.queue)
            await self.queue_result(command.request_id, "unavailable")
            return
        customer = self.customer
        segments = (customer.segment,) if customer is not None and customer.segment else ()
        priority = priority_for(spec, segments=segments)
        self.queued = QueuedCall(
            self,
            acd,
            queue=command.queue,
            request_id=command.request_id,
            priority=priority,
            preferred=customer.last_operator if customer is not None else None,
        )
        await self.queued.start()

    def _stop_work(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self.deps.stats.timers -= len(self._timers)
        self._timers.clear()
        for task in self._actions.values():
            task.cancel()
        self._actions.clear()

    # --- commands -------------------------------------------------------------------------------

    async def _run(self, commands: list[engine.Command]) -> None:
        for command in commands:
            try:
                await self._execute(command)
            except Exception:
                self.deps.stats.errors += 1
                log.exception("call %s: command %s failed", self.channel_id, type(command).__name__)
                # A prompt or recording that cannot start would leave the caller in silence: move on.
                if isinstance(command, engine.Play):
                    await self._run(self.session.handle(engine.PlaybackFinished(command.playback_id, failed=True)))
                elif isinstance(command, engine.StartRecording):
                    await self._run(self.session.handle(engine.RecordingFailed(command.name, "could not start")))
                elif isinstance(command, engine.Enqueue):
                    await self._give_up_queue(command.request_id)

    async def _give_up_queue(self, request_id: str) -> None:
        queued, self.queued = self.queued, None
        if queued is not None:
            try:
                await queued.caller_gone()
            except Exception:
                log.exception("call %s: ACD clean-up failed", self.channel_id)
        await self._run(self.session.handle(engine.QueueResult(request_id, "error")))

    async def _execute(self, command: engine.Command) -> None:
        rest = self.deps.rest
        if isinstance(command, engine.Play):
            log.debug("call %s: play %s (%s)", self.channel_id, " ".join(command.media), command.language)
            await rest.play(self.channel_id, command.playback_id, list(command.media), lang=command.language)
        elif isinstance(command, engine.StopPlayback):
            await _gone_ok(rest.stop_playback(command.playback_id))
        elif isinstance(command, engine.StartTimer):
            self._start_timer(command.timer_id, command.seconds)
        elif isinstance(command, engine.CancelTimer):
            handle = self._timers.pop(command.timer_id, None)
            if handle is not None:
                handle.cancel()
                self.deps.stats.timers -= 1
        elif isinstance(command, engine.RunAction):
            self._start_action(command)
        elif isinstance(command, engine.StartRecording):
            await rest.record(
                self.channel_id,
                command.name,
                format="wav",
                max_duration=command.max_duration,
                max_silence=command.max_silence,
                beep=command.beep,
                terminate_on=command.terminate_on,
                if_exists="overwrite",
            )
        elif isinstance(command, engine.Enqueue):
            await self._enqueue(command)
        elif isinstance(command, engine.Hangup):
            self.ivr_ended_at = self.ivr_ended_at or self.deps.clock()
            await _gone_ok(rest.hangup(self.channel_id))
        else:  # pragma: no cover - the engine's command set is closed
            raise TypeError(f"unknown command {command!r}")

    def _start_timer(self, timer_id: str, seconds: float) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            if self._timers.pop(timer_id, None) is not None:
                self.deps.stats.timers -= 1
                self.deps.inject(Internal(self.channel_id, engine.TimerExpired(timer_id)))

        self._timers[timer_id] = loop.call_later(seconds, fire)
        self.deps.stats.timers += 1

    def _start_action(self, command: engine.RunAction) -> None:
        spec = self.deps.handlers.get(command.handler)

        async def run() -> None:
            event: engine.Event
            try:
                if spec is None:
                    raise LookupError(f"no handler {command.handler!r}")
                ctx = ActionContext(
                    store=self.deps.store,
                    now=self.deps.clock(),
                    call_id=self.contact_id,
                    caller=self.session.caller,
                    services=self.deps.services,
                )
                async with asyncio.timeout(command.timeout):
                    result = await spec.func(ctx, command.args)
                event = engine.ActionDone(command.request_id, result.result, dict(result.values))
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                event = engine.ActionFailed(command.request_id, "timeout")
            except Exception as exc:  # noqa: BLE001 - a failing handler must not kill the call
                log.warning("call %s: action %s failed: %s", self.channel_id, command.handler, exc)
                event = engine.ActionFailed(command.request_id, type(exc).__name__)
            finally:
                self._actions.pop(command.request_id, None)
                self.deps.stats.actions -= 1
            self.deps.inject(Internal(self.channel_id, event))

        self.deps.stats.actions += 1
        self._actions[command.request_id] = asyncio.get_running_loop().create_task(
            run(), name=f"action-{command.request_id}"
        )


async def _gone_ok(call: Awaitable[Any]) -> None:
    """Cleanup calls: a 404 means the object is already gone, which is what we wanted."""
    with gone_ok():
        await call


def utc_now() -> datetime:
    return datetime.now(UTC)


__all__ = ["CallDeps", "CallStats", "Internal", "IvrCall", "utc_now"]
