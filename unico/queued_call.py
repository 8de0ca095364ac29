"""The ACD's treatment of one caller over ARI: hold, announce, ring, bridge, wrap up, transfer.

A ``QueuedCall`` lives inside the caller's actor (``unico.controller.CallActor``), so the caller's
events, the operator leg's events (linked to the same actor), its own timers and the ACD's messages
(``Offer``, ``AgentInterrupt``, ``TransferRequest``, ``MonitorRequest``) all arrive one at a time, in order.

States::

    WAITING  caller alone in Stasis (no bridge) with the channel's music on hold, in the queue's line
             in Redis
    RINGING  an operator has been claimed; their softphone rings (ARI originate, ring timeout)
    TALKING  caller and operator in a mixing bridge
    DONE     handed back to the IVR (closed, full, unavailable, timeout) or over

Rules carried out here (issue 3, "call treatment via ARI"):

* position and estimated wait are announced at entry and every ``announce_every`` seconds; the
  announced position never goes up (a VIP arriving later does not push the caller back audibly);
* ring-no-answer (the ring timeout, a busy or vanished softphone): the operator goes not-ready with
  the reason and the call goes back to the head of its line with its original arrival time;
* the caller hangs up while the operator's phone rings: the ringing is cancelled, the operator is
  ready again and routed at once;
* answer: both in a mixing bridge; after the hang-up the operator is in wrap-up for the queue's time;
* escalation steps fire at their times (new minimum levels, overflow routes) and route again;
* a transfer by the operator re-queues the caller with their priority and original arrival time;
* supervisors listen, whisper or barge while TALKING (``unico.supervision.Monitors``); they leave
  when the conversation ends or the caller is transferred.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from acd.agents import (
    AgentState,
    Answer,
    Force,
    Hangup,
    Logout,
    NotReadyReason,
    Pause,
    Unregistered,
    apply,
)
from acd.queues import QueueSpec, next_change
from acd.routing import WaitingCall
from ivr import engine
from unico.acd_service import (
    DEFAULT_HANDLE_TIME,
    AcdService,
    AgentInterrupt,
    CallMessage,
    MonitorRequest,
    Offer,
    TransferRequest,
)
from unico.ari import AriError, AriRest, gone_ok
from unico.ari.errors import AriBadRequest, AriNotFound, AriUnprocessable
from unico.recovery import QueueSnapshot
from unico.supervision import Monitors

if TYPE_CHECKING:
    from unico.calls import IvrCall

log = logging.getLogger(__name__)

#: Asterisk hang-up causes of an unanswered operator leg, for the log
_CAUSES = {16: "normal", 17: "busy", 18: "no response", 19: "no answer", 20: "unregistered", 21: "rejected"}


class QState(enum.Enum):
    WAITING = "waiting"
    RINGING = "ringing"
    TALKING = "talking"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class QueueTimer:
    """One of the queued call's own timers came due (``kind``: ring, escalate, announce, max_wait)."""

    kind: str
    token: int


class QueuedCall:
    def __init__(
        self,
        call: IvrCall,
        acd: AcdService,
        *,
        queue: str,
        request_id: str,
        priority: int,
        enqueued_at: float | None = None,
        preferred: str | None = None,
    ) -> None:
        self.call = call
        self.acd = acd
        self.queue = queue
        self.request_id = request_id
        self.priority = priority
        self.enqueued_at = enqueued_at if enqueued_at is not None else acd.clock()
        self.preferred = preferred
        self.state = QState.WAITING
        self.call_id = call.channel_id
        self.hold_bridge = ""
        self.conv_bridge = ""
        self._bridges = 0
        self.agent_id: str | None = None
        self.agent_channel: str | None = None
        self.reason: str | None = None
        self.answered_at: float | None = None
        self.announced_position: int | None = None
        self.estimated_wait: int | None = None
        self.announcement: str | None = None
        self._legs = 0
        #: announcements made so far (their playback ids), and one a previous controller left playing
        self._announcements = 0
        self._left_playing: str | None = None
        self._timers: dict[str, tuple[int, asyncio.TimerHandle]] = {}
        self._timer_seq = 0
        self._in_hold = False
        self._moh = False
        #: when the queue took the caller, and when the operator answered (the call's clock, for
        #: the contact record a restarted controller rewrites)
        self.queued_wall: datetime | None = None
        self.answered_wall: datetime | None = None
        self.offered_at: float | None = None
        self.monitors = Monitors(
            self,
            app=call.deps.app,
            link=call.deps.link,
            note=self._note,
            supervisors=lambda: acd.config.supervisors,
        )

    @property
    def spec(self) -> QueueSpec:
        return self.call.session.config.queues[self.queue]

    @property
    def rest(self) -> AriRest:
        return self.call.deps.rest

    def _note(self, kind: str, note: str) -> None:
        """A step of the caller's path (shown in the contact record beside the IVR steps)."""
        self.call.session.path.append(engine.Step(self.queue, kind, self.call.deps.clock(), None, note))

    def _now(self) -> datetime:
        return self.call.deps.clock()

    # --- entry ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the queue can take the caller, then hold, announce and route."""
        spec = self.spec
        calendar = self.call.session.config.calendars.get(spec.calendar)
        if calendar is not None and not calendar.is_open(self._now()):
            await self._give_up("closed")
            return
        if spec.max_length is not None and await self.acd.live.queue_length(self.queue) >= spec.max_length:
            await self._give_up("full")
            return
        waiting = self._waiting_call()
        if await self.acd.could_serve(waiting, spec, up_to=1) == 0:  # anyone at all: the first will do
            await self._give_up("unavailable")
            return
        self.queued_wall = self._now()
        self.call.deps.records.update_contact(
            self.call.contact_id, queue=self.queue, tier=spec.tier, queued_at=self.queued_wall
        )
        await self._hold()
        # in line and recoverable in one round trip; the snapshot carries the step that says so
        path = self.call.session.path
        self._note("queue", f"entered {self.queue} (tier {spec.tier}, priority {self.priority})")
        try:
            await self.acd.live.add_call(waiting, snapshot=self.call.snapshot_json())
        except BaseException:
            path.pop()  # not in the line after all: the caller's path must not say so
            raise
        log.info("call %s: waiting in %s, priority %s", self.call_id, self.queue, self.priority)
        self._arm_waiting_timers()
        # route first: a caller an idle operator takes at once hears no "you are number 1"
        if not await self.acd.route_call(self.call_id):
            await self._announce()

    def _waiting_call(self) -> WaitingCall:
        return self.acd.waiting_call(
            self.call_id,
            self.spec,
            self.queue,
            priority=self.priority,
            enqueued_at=self.enqueued_at,
            waited=self.acd.clock() - self.enqueued_at,
            preferred=self.preferred,
        )

    def _arm_waiting_timers(self) -> None:
        spec = self.spec
        waited = self.acd.clock() - self.enqueued_at
        step = next_change(spec, waited)
        if step is not None:
            self._arm("escalate", step - waited)
        if spec.announce_every is not None:
            self._arm("announce", spec.announce_every)
        if spec.max_wait is not None:
            self._arm("max_wait", max(0.0, spec.max_wait - waited))

    def _bridge_id(self, kind: str) -> str:
        self._bridges += 1
        return f"{self.call_id}-{kind}{self._bridges}"

    async def _hold(self) -> None:
        # The caller waits alone in Stasis, in no bridge, with the channel's own music on hold. A
        # holding bridge per caller cost Asterisk a bridge and, for its music, an Announcer channel
        # pair per call (bench/capacity.py), and six requests instead of two. Announcements are
        # channel playbacks, stopped before the caller joins the operator: a playback still queued
        # on the channel would hold up the join until its file ended.
        self.hold_bridge = ""
        self._in_hold = True
        await self._moh_on()

    async def _moh_on(self) -> None:
        if self._in_hold and not self._moh:
            if self.hold_bridge:  # a holding bridge from an earlier version (a resumed call)
                await self.rest.start_bridge_moh(self.hold_bridge, self.spec.moh_class)
            else:
                await self.rest.start_moh(self.call_id, self.spec.moh_class)
            self._moh = True

    async def _moh_off(self) -> None:
        if self._moh:
            self._moh = False
            with contextlib.suppress(AriError):  # 404/409 once the music stopped with the caller gone
                if self.hold_bridge:
                    await self.rest.stop_bridge_moh(self.hold_bridge)
                else:
                    await self.rest.stop_moh(self.call_id)

    async def _unhold(self) -> None:
        await self._moh_off()
        if self._in_hold:
            self._in_hold = False
            if self.hold_bridge:  # a holding bridge from an earlier version (a resumed call)
                with contextlib.suppress(AriError):  # 400 "Channel not found" once the caller is gone
                    await self.rest.remove_channel(self.hold_bridge, self.call_id)
                with gone_ok():
                    await self.rest.destroy_bridge(self.hold_bridge)
                self.hold_bridge = ""

    # --- announcements --------------------------------------------------------------------------

    async def _announce(self) -> None:
        if self.state is not QState.WAITING or self.announcement is not None:
            return
        position = await self.acd.position(self.call_id, self.queue)
        if position is None:
            return
        if self.announced_position is not None:
            position = min(position, self.announced_position)
        self.announced_position = position
        serving = max(1, await self.acd.could_serve(self._waiting_call(), self.spec))
        handle = await self.acd.live.handle_time(self.queue, DEFAULT_HANDLE_TIME)
        estimate = position * handle / serving
        minutes = math.ceil(estimate / 60)
        if self.estimated_wait is None:  # the first promise is the one the caller remembers
            self.estimated_wait = round(estimate)
            self.call.deps.records.update_contact(self.call.contact_id, estimated_wait=self.estimated_wait)
        prompts = ["queue_position", f"number:{position}", "queue_wait"]
        prompts += ["queue_wait_short"] if minutes <= 1 else [f"number:{minutes}", "queue_minutes"]
        media = self.call.session.media(prompts)
        self._announcements += 1
        self.announcement = f"{self.call_id}-ann{self._announcements}"
        self._note("announce", f"position {position}, about {minutes} min")
        await self._moh_off()
        try:
            lang = self.call.session.language
            if self.hold_bridge:
                await self.rest.play_on_bridge(self.hold_bridge, self.announcement, list(media), lang=lang)
            else:
                await self.rest.play(self.call_id, self.announcement, list(media), lang=lang)
        except AriError as exc:
            log.warning("call %s: announcement failed: %s", self.call_id, exc)
            self.announcement = None
            await self._moh_on()
            return
        if not self.hold_bridge:  # a controller taking over stops it (``resume``)
            await self.call.save_snapshot()

    async def playback_finished(self, playback_id: str) -> bool:
        """True if it was our announcement (then the music comes back)."""
        if playback_id != self.announcement:
            return False
        self.announcement = None
        if self.state is QState.WAITING or self.state is QState.RINGING:
            await self._moh_on()
        return True

    # --- timers ---------------------------------------------------------------------------------

    def _next_token(self) -> int:
        self._timer_seq += 1
        return self._timer_seq

    def _arm(self, kind: str, seconds: float) -> None:
        self._disarm(kind)
        token = self._next_token()
        loop = asyncio.get_running_loop()
        inject = self.call.deps.inject_item

        def fire() -> None:
            inject(self.call_id, QueueTimer(kind, token))

        self._timers[kind] = (token, loop.call_later(max(0.0, seconds), fire))
        self.call.deps.stats.timers += 1

    def _disarm(self, kind: str) -> None:
        entry = self._timers.pop(kind, None)
        if entry is not None:
            entry[1].cancel()
            self.call.deps.stats.timers -= 1

    def _disarm_all(self) -> None:
        for kind in list(self._timers):
            self._disarm(kind)

    async def on_timer(self, timer: QueueTimer) -> None:
        entry = self._timers.get(timer.kind)
        if entry is None or entry[0] != timer.token:
            return
        self._timers.pop(timer.kind)
        self.call.deps.stats.timers -= 1
        if timer.kind == "ring":
            if self.state is QState.RINGING:
                await self._ring_failed("ring timeout", AgentState.NOT_READY, NotReadyReason.RING_NO_ANSWER)
        elif timer.kind == "escalate":
            await self._escalate()
        elif timer.kind == "announce":
            if self.state is QState.WAITING:
                await self._announce()
            if self.state in (QState.WAITING, QState.RINGING) and self.spec.announce_every is not None:
                self._arm("announce", self.spec.announce_every)
        elif timer.kind == "max_wait":
            if self.state is QState.WAITING:
                await self._give_up("timeout")
            elif self.state is QState.RINGING:
                self._arm("max_wait", self.spec.ring_timeout + 1)

    async def _escalate(self) -> None:
        if self.state not in (QState.WAITING, QState.RINGING):
            return
        waiting = self._waiting_call()
        await self.acd.live.update_call(
            self.call_id, requirements=waiting.requirements, also=waiting.also, priority=waiting.priority
        )
        waited = self.acd.clock() - self.enqueued_at
        steps = [s.text for s in self.spec.escalation if s.after_seconds <= waited]
        note = steps[-1] if steps else "escalation"
        self._note("escalate", note)
        log.info("call %s: escalation in %s after %.0f s: %s", self.call_id, self.queue, waited, note)
        step = next_change(self.spec, waited)
        if step is not None:
            self._arm("escalate", step - waited)
        if self.state is QState.WAITING:
            await self.acd.route_call(self.call_id)

    # --- offers ---------------------------------------------------------------------------------

    async def on_message(self, message: CallMessage) -> None:
        if isinstance(message, Offer):
            await self._on_offer(message)
        elif isinstance(message, AgentInterrupt):
            await self._on_interrupt(message)
        elif isinstance(message, TransferRequest):
            await self.transfer(message)
        elif isinstance(message, MonitorRequest):
            await self.monitors.request(message, talking=self.state is QState.TALKING)

    async def _on_offer(self, offer: Offer) -> None:
        if self.state is not QState.WAITING:
            log.info("call %s: offer of %s arrived in state %s, released", self.call_id, offer.agent_id, self.state)
            await self.acd.release_offer(offer.agent_id, self.call_id, requeue=False, agent_state=AgentState.READY)
            return
        spec = self.spec
        operator = self.call.session.config.operators.get(offer.agent_id)
        if operator is None:
            await self.acd.release_offer(offer.agent_id, self.call_id, requeue=True, agent_state=AgentState.LOGGED_OUT)
            await self.acd.route_call(self.call_id)
            return
        self.state = QState.RINGING
        self.agent_id = offer.agent_id
        self.reason = offer.reason
        self._legs += 1
        leg = f"{self.call_id}-op{self._legs}"
        self.agent_channel = leg
        self.call.deps.link(leg, self.call_id)
        self._note("offer", f"{offer.agent_id}: {offer.reason}")
        caller = self.call.session.caller or "anonymous"
        self._arm("ring", spec.ring_timeout + 2)
        self.offered_at = self.acd.clock()
        await self.call.save_snapshot()
        try:
            await self.rest.originate(
                leg,
                operator.dial_string(offer.agent_id),
                app=self.call.deps.app,
                app_args=["agent", self.call_id, offer.agent_id],
                caller_id=f'"{caller}" <{caller}>',
                ring_timeout=spec.ring_timeout,
                originator=self.call_id,
            )
        except AriError as exc:
            log.warning("call %s: cannot ring %s: %s", self.call_id, offer.agent_id, exc)
            await self._ring_failed(f"cannot ring: {exc}", AgentState.NOT_READY, NotReadyReason.RING_NO_ANSWER)

    async def _on_interrupt(self, message: AgentInterrupt) -> None:
        """The ringing operator paused, logged out, lost the softphone, or rang too long."""
        if self.state is not QState.RINGING or message.agent_id != self.agent_id:
            return
        event = message.event
        state, reason = AgentState.NOT_READY, NotReadyReason.RING_NO_ANSWER
        if isinstance(event, Logout):
            state = AgentState.LOGGED_OUT
        elif isinstance(event, Pause):
            reason = event.reason
        elif isinstance(event, Unregistered):
            reason = NotReadyReason.UNREGISTERED
        elif isinstance(event, Force) and event.state is not AgentState.RINGING:
            state, reason = event.state, event.reason
        await self._ring_failed(f"operator {event.kind.value}", state, reason)

    async def _ring_failed(self, why: str, state: AgentState, reason: NotReadyReason | None) -> None:
        """The offer did not become a conversation: the operator out, the call back at the head."""
        agent_id, leg = self.agent_id, self.agent_channel
        self.state = QState.WAITING
        self.agent_id = self.agent_channel = None
        self._disarm("ring")
        if leg is not None:
            with gone_ok():
                await self.rest.hangup(leg)
        if agent_id is not None:
            await self.acd.release_offer(
                agent_id,
                self.call_id,
                requeue=True,
                agent_state=state,
                reason=reason if state is AgentState.NOT_READY else None,
            )
            self._note("no_answer", f"{agent_id}: {why}; back to the head of the line")
            log.info("call %s: %s did not answer (%s), operator %s", self.call_id, agent_id, why, state.value)
        self.offered_at = None
        await self.call.save_snapshot()
        await self.acd.route_call(self.call_id)

    # --- the operator's leg ---------------------------------------------------------------------

    async def agent_answered(self, channel_id: str) -> None:
        if self.monitors.owns(channel_id):  # a supervisor's leg or a snoop, not the operator's
            await self.monitors.channel_up(channel_id)
            return
        if self.state is QState.TALKING and channel_id == self.agent_channel:
            return  # the same StasisStart again (the endpoint subscription repeats leg events)
        if self.state is not QState.RINGING or channel_id != self.agent_channel:
            with gone_ok():
                await self.rest.hangup(channel_id)
            return
        assert self.agent_id is not None
        self._disarm("ring")
        self._disarm("announce")
        self._disarm("max_wait")
        self._disarm("escalate")
        self.state = QState.TALKING
        self.answered_at = self.acd.clock()
        agent = await self.acd.live.get_agent(self.agent_id)
        if agent is not None and agent.state is AgentState.RINGING and agent.call_id == self.call_id:
            new, _ = apply(agent, Answer(), self.acd.clock())
            if not await self.acd.owner_update(agent, new):
                log.warning("call %s: operator %s changed state while answering", self.call_id, self.agent_id)
        await self.acd.live.remove_call(self.call_id)
        if self.announcement is not None:
            with gone_ok():
                await self.rest.stop_playback(self.announcement)
            self.announcement = None
        await self._unhold()
        rest = self.rest
        self.conv_bridge = self._bridge_id("conv")
        await rest.create_bridge(self.conv_bridge, type="mixing", name=f"call {self.queue}")
        try:
            await rest.add_channel(self.conv_bridge, [self.call_id, channel_id])
        except (AriBadRequest, AriNotFound, AriUnprocessable) as exc:
            # 400 "Channel not found": the caller (or the operator) hung up as the operator answered;
            # that leg's hang-up, already on its way, ends the conversation as any other would
            log.info("call %s: a leg left as %s answered (%s)", self.call_id, self.agent_id, exc)
        self._note("answered", f"{self.agent_id} after {self.answered_at - self.enqueued_at:.1f} s")
        log.info("call %s: answered by %s in %s", self.call_id, self.agent_id, self.queue)
        self.answered_wall = self._now()
        self.call.deps.records.update_contact(
            self.call.contact_id, operator=self.agent_id, routing_reason=self.reason, answered_at=self.answered_wall
        )
        await self.call.queue_result(self.request_id, "answered")
        await self.call.save_snapshot()  # after the IVR heard of the answer: its outcome is in it

    async def agent_leg_gone(self, channel_id: str, cause: int | None) -> None:
        """The operator's leg hung up or was destroyed (before or after answering)."""
        if self.monitors.owns(channel_id):
            await self.monitors.channel_gone(channel_id, cause)
            return
        if channel_id != self.agent_channel:
            return
        if self.state is QState.RINGING:
            text = _CAUSES.get(cause or 0, f"cause {cause}")
            reason = NotReadyReason.UNREGISTERED if cause == 20 else NotReadyReason.RING_NO_ANSWER
            await self._ring_failed(text, AgentState.NOT_READY, reason)
        elif self.state is QState.TALKING:
            self._note("end", f"{self.agent_id} hung up")
            await self._end_conversation()
            # back to the IVR: the queue node's after_call (a survey), or it hangs up
            await self.call.queue_result(self.request_id, "completed")

    async def _end_conversation(self) -> None:
        agent_id, leg = self.agent_id, self.agent_channel
        self.state = QState.DONE
        await self.monitors.end_all("conversation over")
        self.call.deps.records.record_talk_end(self.call.contact_id, self._now())
        self.agent_id = self.agent_channel = None
        # Asterisk overloaded may not answer within the timeout: the operator's wrap-up and the
        # call's Redis entries must not wait on it (the request is still queued in Asterisk)
        if leg is not None:
            await self._clean_up(self.rest.hangup(leg), f"hang-up of {leg}")
        if self.conv_bridge:  # none yet if answering failed half-way (ARI timing out under overload)
            await self._clean_up(self.rest.destroy_bridge(self.conv_bridge), f"removal of {self.conv_bridge}")
        if agent_id is not None:
            await self._wrap_up(agent_id)
        await self.acd.live.forget_call(self.call_id)
        await self.call.drop_snapshot()

    async def _clean_up(self, request: Awaitable[object], what: str) -> None:
        """A clean-up request whose failure must not stop the rest: gone already is fine, any
        other failure is logged."""
        try:
            with gone_ok():
                await request
        except AriError as exc:
            log.warning("call %s: %s failed (%s); going on", self.call_id, what, exc)

    async def _wrap_up(self, agent_id: str) -> None:
        spec = self.spec
        if self.answered_at is not None:
            await self.acd.live.record_handle_time(
                self.queue, self.acd.clock() - self.answered_at + spec.wrapup, DEFAULT_HANDLE_TIME
            )
        agent = await self.acd.live.get_agent(agent_id)
        if agent is None or agent.state is not AgentState.ON_CALL or agent.call_id != self.call_id:
            return
        new, _ = apply(agent, Hangup(wrapup_s=spec.wrapup), self.acd.clock())
        if await self.acd.owner_update(agent, new):
            log.info("agent %s: wrap-up %s s after call %s", agent_id, spec.wrapup, self.call_id)
            self.acd.start_wrapup(agent_id, spec.wrapup)

    # --- the caller leaves ----------------------------------------------------------------------

    async def caller_gone(self) -> None:
        """The caller hung up (or the channel left our control) in any state."""
        state = self.state
        self._disarm_all()
        if state is QState.WAITING:
            self._note("abandon", "caller hung up while waiting")
        elif state is QState.RINGING:
            self._note("abandon", f"caller hung up while {self.agent_id} was ringing")
            agent_id, leg = self.agent_id, self.agent_channel
            self.agent_id = self.agent_channel = None
            if leg is not None:
                with gone_ok():
                    await self.rest.hangup(leg)
            if agent_id is not None:
                await self.acd.release_offer(agent_id, self.call_id, requeue=False, agent_state=AgentState.READY)
        elif state is QState.TALKING:
            self._note("end", "caller hung up")
            await self._end_conversation()
        self.state = QState.DONE
        await self.acd.live.forget_call(self.call_id)
        await self.call.drop_snapshot()
        await self._unhold()

    async def _give_up(self, result: str) -> None:
        """Hand the caller back to the IVR's ``unavailable`` treatment."""
        self._disarm_all()
        self.state = QState.DONE
        await self.acd.live.forget_call(self.call_id)
        await self.call.drop_snapshot()
        if self.announcement is not None:
            with gone_ok():
                await self.rest.stop_playback(self.announcement)
            self.announcement = None
        await self._unhold()
        log.info("call %s: queue %s cannot serve: %s", self.call_id, self.queue, result)
        await self.call.queue_result(self.request_id, result)

    # --- transfers ------------------------------------------------------------------------------

    async def transfer(self, request: TransferRequest) -> None:
        """The operator moves the caller to another queue, or hands them to a named operator; a
        supervisor moves a waiting caller to another queue (they keep their arrival time)."""
        if self.state is QState.WAITING and request.queue and not request.operator:
            await self._move(request)
            return
        if self.state is not QState.TALKING:
            log.info("call %s: transfer ignored in state %s", self.call_id, self.state.value)
            return
        config = self.call.session.config
        target_queue = request.queue or self.queue
        if target_queue not in config.queues:
            log.warning("call %s: transfer to unknown queue %s ignored", self.call_id, target_queue)
            return
        old_agent = self.agent_id
        self.call.deps.records.record_talk_end(self.call.contact_id, self._now())
        what = f"operator {request.operator}" if request.operator else f"queue {target_queue}"
        self._note("transfer", f"{old_agent} -> {what}")
        log.info("call %s: %s transfers to %s", self.call_id, old_agent, what)
        # the operator who transferred leaves (wrap-up), so do supervisors; the caller goes back on hold
        await self.monitors.end_all(f"transferred to {what}")
        leg = self.agent_channel
        self.agent_id = self.agent_channel = None
        with contextlib.suppress(AriError):
            await self.rest.remove_channel(self.conv_bridge, self.call_id)
        if leg is not None:
            with gone_ok():
                await self.rest.hangup(leg)
        with gone_ok():
            await self.rest.destroy_bridge(self.conv_bridge)
        if old_agent is not None:
            await self._wrap_up(old_agent)
        self.queue = target_queue
        self.state = QState.WAITING
        self.announced_position = None
        spec = self.spec
        self.call.deps.records.update_contact(self.call.contact_id, queue=self.queue, tier=spec.tier)
        await self._hold()
        waiting = self._waiting_call()
        await self.acd.live.add_call(waiting)
        self.answered_at = self.answered_wall = None
        await self.call.save_snapshot()
        self._arm_waiting_timers()
        if request.operator:
            if not await self.acd.claim_for(request.operator, waiting, f"blind transfer by {old_agent}"):
                self._note("transfer", f"{request.operator} not free; waiting in {self.queue}")
                await self.acd.route_call(self.call_id)
        else:
            await self.acd.route_call(self.call_id)

    async def _move(self, request: TransferRequest) -> None:
        target = request.queue
        if target is None or target == self.queue or target not in self.call.session.config.queues:
            log.info("call %s: move to %s ignored", self.call_id, target)
            return
        self._note("move", f"{self.queue} -> {target}" + (f" by {request.by}" if request.by else ""))
        log.info("call %s: moved from %s to %s by %s", self.call_id, self.queue, target, request.by or "?")
        await self.acd.live.remove_call(self.call_id)
        self._disarm_all()
        self.queue = target
        self.announced_position = None
        self.call.deps.records.update_contact(self.call.contact_id, queue=target, tier=self.spec.tier)
        await self.acd.live.add_call(self._waiting_call())
        await self.call.save_snapshot()
        self._arm_waiting_timers()
        await self.acd.route_call(self.call_id)

    # --- recovery (unico.recovery) --------------------------------------------------------------

    def snapshot(self) -> QueueSnapshot:
        """This call's treatment as a restarted controller needs it (see ``restore``)."""
        return QueueSnapshot(
            queue=self.queue,
            request_id=self.request_id,
            priority=self.priority,
            enqueued_at=self.enqueued_at,
            state=self.state.value,
            preferred=self.preferred,
            agent_id=self.agent_id,
            agent_channel=self.agent_channel,
            reason=self.reason,
            hold_bridge=self.hold_bridge,
            conv_bridge=self.conv_bridge,
            bridges=self._bridges,
            legs=self._legs,
            offered_at=self.offered_at,
            answered_at=self.answered_at,
            announced_position=self.announced_position,
            estimated_wait=self.estimated_wait,
            announcement=self.announcement,
            announcements=self._announcements,
            queued_wall=self.queued_wall.isoformat() if self.queued_wall is not None else None,
            answered_wall=self.answered_wall.isoformat() if self.answered_wall is not None else None,
        )

    @classmethod
    def restore(cls, call: IvrCall, acd: AcdService, saved: QueueSnapshot) -> QueuedCall:
        """The treatment as ``snapshot`` left it, with no timer armed and nothing sent yet:
        ``resume`` or ``caller_gone`` goes on from there."""
        queued = cls(
            call,
            acd,
            queue=saved.queue,
            request_id=saved.request_id,
            priority=saved.priority,
            enqueued_at=saved.enqueued_at,
            preferred=saved.preferred,
        )
        queued.state = QState(saved.state)
        queued.agent_id = saved.agent_id
        queued.agent_channel = saved.agent_channel
        queued.reason = saved.reason
        queued.hold_bridge = saved.hold_bridge
        queued.conv_bridge = saved.conv_bridge
        queued._bridges = saved.bridges
        queued._legs = saved.legs
        queued._announcements = saved.announcements
        queued._left_playing = saved.announcement
        queued.offered_at = saved.offered_at
        queued.answered_at = saved.answered_at
        queued.announced_position = saved.announced_position
        queued.estimated_wait = saved.estimated_wait
        queued.queued_wall = datetime.fromisoformat(saved.queued_wall) if saved.queued_wall else None
        queued.answered_wall = datetime.fromisoformat(saved.answered_wall) if saved.answered_wall else None
        # a waiting caller is on hold with the music on (an announcement cut by the restart has
        # ended by now; ``resume`` starts the music again); an earlier version held them in a bridge
        queued._in_hold = queued.state in (QState.WAITING, QState.RINGING)
        return queued

    async def resume(self, *, leg_alive: bool, bridge_alive: bool) -> None:
        """Go on after a restart: the caller is still connected (``unico.recovery.Resume``)."""
        rest, link = self.rest, self.call.deps.link
        app = self.call.deps.app
        if self._left_playing is not None:
            # the announcement the previous controller left on the channel: until it ends, the
            # caller's channel runs no other command (the music, the join to the operator)
            with contextlib.suppress(AriError):  # 404 once it ended
                await rest.stop_playback(self._left_playing)
            self._left_playing = None
        if self.state is QState.TALKING:
            await self._restore_talking(leg_alive=leg_alive, bridge_alive=bridge_alive)
            return
        # waiting or ringing: the music on again (still in the holding bridge an earlier version
        # put the caller in, if it is there)
        if bridge_alive and self.hold_bridge:
            link(f"bridge:{self.hold_bridge}", self.call_id)
            with contextlib.suppress(AriError):
                await rest.subscribe(app, [f"bridge:{self.hold_bridge}"])
            self._in_hold, self._moh = True, False
            await self._moh_on()
        else:
            self._in_hold = self._moh = False
            await self._hold()
        still_ringing = self.state is QState.RINGING and leg_alive and self.agent_id and self.agent_channel
        if still_ringing and await self.acd.live.adopt_claim(self.agent_id or "", self.call_id, self.acd.controller_id):
            assert self.agent_channel is not None
            link(self.agent_channel, self.call_id)
            with contextlib.suppress(AriError):  # its end must reach us even before it answers
                await rest.subscribe(app, [f"channel:{self.agent_channel}"])
            waited = self.acd.clock() - (self.offered_at or self.acd.clock())
            self._arm("ring", max(1.0, self.spec.ring_timeout + 2 - waited))
            self._arm_waiting_timers()
            self._note("recovered", f"{self.agent_id} still ringing")
            await self.call.save_snapshot()
            return
        # the offer (if any) did not survive: the operator was not at fault
        if self.agent_channel is not None and leg_alive:
            with gone_ok():
                await rest.hangup(self.agent_channel)
        agent_id = self.agent_id
        self.state = QState.WAITING
        self.agent_id = self.agent_channel = None
        self.offered_at = None
        freed = await self.acd.live.requeue(self.call_id, self._waiting_call())
        self._note("recovered", "waiting" + (f"; the offer to {freed or agent_id} was withdrawn" if freed else ""))
        if freed:
            self.acd.spawn(self.acd.route_agent(freed), f"route-agent-{freed}")
        await self.call.save_snapshot()
        self._arm_waiting_timers()
        if not await self.acd.route_call(self.call_id):
            await self._announce()

    async def _restore_talking(self, *, leg_alive: bool, bridge_alive: bool) -> None:
        rest = self.rest
        assert self.agent_id is not None
        await self.acd.live.remove_call(self.call_id)  # answered calls wait in no line
        if not leg_alive or self.agent_channel is None:
            self._note("recovered", f"{self.agent_id} hung up while the controller was away")
            await self._restore_agent_on_call()
            await self._end_conversation()
            await self.call.queue_result(self.request_id, "completed")
            return
        self.call.deps.link(self.agent_channel, self.call_id)
        with contextlib.suppress(AriError):
            await rest.subscribe(self.call.deps.app, [f"channel:{self.agent_channel}"])
        if not bridge_alive:
            self.conv_bridge = self._bridge_id("conv")
            await rest.create_bridge(self.conv_bridge, type="mixing", name=f"call {self.queue}")
            await rest.add_channel(self.conv_bridge, [self.call_id, self.agent_channel])
        await self._restore_agent_on_call()
        self._note("recovered", f"talking with {self.agent_id}")
        await self.call.save_snapshot()

    async def _restore_agent_on_call(self) -> None:
        """The operator holds this call in Redis (claim held by us now), whatever Redis forgot."""
        assert self.agent_id is not None
        if await self.acd.live.adopt_claim(self.agent_id, self.call_id, self.acd.controller_id):
            return
        agent = await self.acd.agent(self.agent_id)
        talking = replace(agent, state=AgentState.ON_CALL, reason=None, call_id=self.call_id)
        await self.acd.live.set_agent(talking)
        await self.acd.live.adopt_claim(self.agent_id, self.call_id, self.acd.controller_id)

    async def left_behind(self) -> None:
        """The caller hung up while no controller listened (``unico.recovery.Gone``): free the
        operator and every Redis entry as ``caller_gone`` would have."""
        if self.state is QState.TALKING and self.agent_id is not None:
            await self._restore_agent_on_call()
        elif self.state is QState.RINGING and self.agent_id is not None:
            await self.acd.live.adopt_claim(self.agent_id, self.call_id, self.acd.controller_id)
        self._note("recovered", "the caller hung up while the controller was away")
        await self.caller_gone()

    async def rebuild_live(self) -> None:
        """Redis lost its data: write back this call's part of it (``unico.controller``)."""
        live, owner = self.acd.live, self.acd.controller_id
        if self.state is QState.WAITING:
            await live.requeue(self.call_id, self._waiting_call())
        elif self.state is QState.RINGING and self.agent_id is not None:
            await live.restore_claim(self.agent_id, self._waiting_call(), owner, now=self.acd.clock())
        elif self.state is QState.TALKING and self.agent_id is not None:
            await live.set_owner(self.call_id, owner)
            await self._restore_agent_on_call()
        else:
            return
        await self.call.save_snapshot()
        self._note("rebuilt", f"{self.state.value}: written back after Redis lost it")
        if self.state is QState.WAITING:
            await self.acd.route_call(self.call_id)

    def close(self) -> None:
        self._disarm_all()


__all__ = ["QState", "QueueTimer", "QueuedCall"]
