"""Supervisors listen to, whisper to or barge into an operator's conversation.

Theory of operation
-------------------
The supervisor's softphone is rung into our Stasis app (ARI originate). What happens when they
answer depends on the mode; the snoop is ``POST /channels/{id}/snoop`` on the **operator's** channel
(Asterisk 22 ``channels.json``: ``spy`` and ``whisper`` take none|in|out|both, where ``in`` is what
the channel sends to Asterisk and ``out`` what Asterisk sends to the channel)::

    listen   snoop spy=both whisper=none, mixing bridge [snoop, supervisor]
             -> the supervisor hears caller and operator; nobody hears the supervisor
    whisper  snoop spy=both whisper=out, mixing bridge [snoop, supervisor]
             -> the supervisor hears both; their voice is mixed into what the operator hears
                and never reaches the caller
    barge    the supervisor joins the conversation's mixing bridge: all three hear each other

The operator's channel is snooped, not the caller's: it exists only while the conversation does,
and a snoop ends with the channel it spies on. No ChanSpy, no dialplan.

Who does what:

* ``Supervision`` (one per controller: ``controller.supervision``) checks the request and sends a
  ``MonitorRequest`` to the controller that owns the call (``AcdService.send``: into the call's
  actor here, or over Redis pub/sub to another process). Only the owner's Asterisk holds the
  channels, so only the owner can snoop and bridge them.
* ``Monitors`` (one per queued call, living in the caller's actor) does the ARI work there, so the
  supervisor's leg, the snoop and the conversation's own events are handled one at a time.

Every id is ours and is linked to the call's actor before the request that creates it (ari.md
§1.2.1): the supervisor's leg is ``<call>-mon<N>``; each wiring ``K`` of that leg (a mode change
re-wires it) gets a snoop ``<call>-mon<N>-snoop<K>`` and a bridge ``<call>-mon<N>-bridge<K>``, so
the late events of a torn-down snoop never match the current one. The snoop enters Stasis with its
own StasisStart (appArgs ``snoop,<call>,<supervisor>``) and joins the monitor bridge only then:
``addChannel`` before that is refused (not in Stasis yet).

Clean-up goes both ways. The supervisor hangs up (or is not reached): their snoop and bridge go,
the conversation is untouched. The conversation ends (either side hangs up, or the operator
transfers the caller): the supervisor's leg, snoop and bridge go. A leg or snoop that turns up
after its session ended is hung up. Each step lands in the caller's record (kind ``monitor``).

Example::

    await controller.supervision.monitor(call_id, "sup3001", "listen")   # rings sup3001
    await controller.supervision.monitor(call_id, "sup3001", "barge")    # same leg, joins in
    await controller.supervision.stop(call_id, "sup3001")                # hangs their leg up
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from acd.roster import SupervisorSpec
from ivr.config import IvrConfig
from unico.acd_service import AcdService, MonitorRequest
from unico.ari import AriError, AriRest

log = logging.getLogger(__name__)

#: what a supervisor can do; ``stop`` (``Supervision.stop``) ends it
MODES = ("listen", "whisper", "barge")
#: seconds the supervisor's softphone rings before Asterisk gives up (ARI originate ``timeout``)
RING_TIMEOUT = 20
#: snoop directions per mode: (spy, whisper); barge needs no snoop
_SNOOP = {"listen": ("both", "none"), "whisper": ("both", "out")}
_CAUSES = {16: "normal", 17: "busy", 18: "no response", 19: "no answer", 20: "unregistered", 21: "rejected"}


class MonitoredCall(Protocol):
    """What ``Monitors`` needs of the conversation (``unico.queued_call.QueuedCall``)."""

    call_id: str
    agent_id: str | None
    agent_channel: str | None
    conv_bridge: str

    @property
    def rest(self) -> AriRest: ...


class Supervision:
    """The controller's entry point: check a monitoring request and send it to the call's owner.

    Example (what ``POST /api/calls/{id}/monitor {"mode", "supervisor"}`` does)::

        try:
            answer = await controller.supervision.monitor(call_id, "sup3001", "whisper")
        except LookupError:   # no conversation in progress for call_id -> 404
            ...
        except ValueError:    # unknown supervisor or mode -> 400
            ...
    """

    def __init__(self, acd: AcdService | None, config: Callable[[], IvrConfig]) -> None:
        self.acd = acd
        self._config = config

    async def monitor(self, call_id: str, supervisor: str, mode: str) -> dict[str, Any]:
        """Ring ``supervisor`` and, once they answer, ``listen``, ``whisper`` or ``barge`` into the
        conversation of ``call_id``. A supervisor already on the call switches to ``mode``.

        Raises ValueError for an unknown mode or supervisor, LookupError when ``call_id`` has no
        conversation in progress (waiting, ringing, over or unknown). The answer means "requested":
        the owner rings the supervisor, and the caller's record says when monitoring began.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        spec = self._supervisor(supervisor)
        acd, owner = await self._owner(call_id)
        status = await acd.live.call_status(call_id)
        if status is not None:
            raise LookupError(f"call {call_id} is {status}, not in a conversation")
        if not await acd.send(call_id, MonitorRequest(call_id, supervisor, mode), owner=owner):
            raise LookupError(f"no conversation in progress for call {call_id}")
        log.info("supervision: %s asked to %s call %s (owner %s)", supervisor, mode, call_id, owner)
        return {
            "call_id": call_id,
            "supervisor": supervisor,
            "mode": mode,
            "endpoint": spec.dial_string(supervisor),
            "owner": owner,
        }

    async def stop(self, call_id: str, supervisor: str) -> dict[str, Any]:
        """Hang up ``supervisor``'s monitoring leg on ``call_id`` (their snoop and bridge go too)."""
        self._supervisor(supervisor)
        acd, owner = await self._owner(call_id)
        if not await acd.send(call_id, MonitorRequest(call_id, supervisor, "stop"), owner=owner):
            raise LookupError(f"no conversation in progress for call {call_id}")
        log.info("supervision: %s stops monitoring call %s (owner %s)", supervisor, call_id, owner)
        return {"call_id": call_id, "supervisor": supervisor, "mode": "stop", "owner": owner}

    def _supervisor(self, supervisor: str) -> SupervisorSpec:
        spec = self._config().supervisors.get(supervisor)
        if spec is None:
            raise ValueError(f"unknown supervisor {supervisor!r}")
        return spec

    async def _owner(self, call_id: str) -> tuple[AcdService, str]:
        acd = self.acd
        owner = await acd.live.owner(call_id) if acd is not None else None
        if acd is None or owner is None:
            raise LookupError(f"no conversation in progress for call {call_id}")
        return acd, owner


@dataclass(slots=True)
class _Session:
    """One supervisor on one call: their leg, and what it is wired to right now."""

    supervisor: str
    mode: str
    leg: str
    answered: bool = False
    barged: bool = False
    snoop: str | None = None
    snoop_bridged: bool = False
    bridge: str | None = None
    wirings: int = 0


class Monitors:
    """The supervisors on one conversation, driven from the caller's actor (see the module doc).

    ``link(alias, call_id)`` routes a channel's events to the call's actor; ``note(kind, text)``
    adds a step to the caller's record; ``supervisors()`` is the current roster.
    """

    def __init__(
        self,
        call: MonitoredCall,
        *,
        app: str,
        link: Callable[[str, str], None],
        note: Callable[[str, str], None],
        supervisors: Callable[[], Mapping[str, SupervisorSpec]],
    ) -> None:
        self._call = call
        self._app = app
        self._link = link
        self._note = note
        self._supervisors = supervisors
        self._sessions: dict[str, _Session] = {}
        #: every leg and snoop id ever created here -> its supervisor (late events find their way)
        self._channels: dict[str, str] = {}
        self._legs = 0

    @property
    def active(self) -> dict[str, str]:
        """Supervisor -> mode, for each supervisor on the call (ringing or connected)."""
        return {sup: session.mode for sup, session in self._sessions.items()}

    def owns(self, channel_id: str) -> bool:
        """True for a supervisor's leg or a snoop of this call (current or past)."""
        return channel_id in self._channels

    # --- requests -------------------------------------------------------------------------------

    async def request(self, request: MonitorRequest, *, talking: bool) -> None:
        """A ``MonitorRequest`` reached the call's owner (``talking``: the conversation is on)."""
        call_id, sup, mode = self._call.call_id, request.supervisor, request.mode
        session = self._sessions.get(sup)
        if mode == "stop":
            if session is not None:
                await self._end(session, "stopped")
            return
        if mode not in MODES:
            log.warning("call %s: unknown monitoring mode %r from %s ignored", call_id, mode, sup)
            return
        if not talking or self._call.agent_channel is None:
            log.info("call %s: %s asked to %s, but no conversation is in progress", call_id, sup, mode)
            return
        if session is not None:
            if session.mode != mode:
                log.info("call %s: supervisor %s switches from %s to %s", call_id, sup, session.mode, mode)
                session.mode = mode
                if session.answered:
                    await self._wire(session)
            return
        spec = self._supervisors().get(sup)
        if spec is None:
            log.warning("call %s: monitoring by unknown supervisor %s ignored", call_id, sup)
            return
        self._legs += 1
        session = _Session(sup, mode, f"{call_id}-mon{self._legs}")
        self._sessions[sup] = session
        self._channels[session.leg] = sup
        self._link(session.leg, call_id)
        agent = self._call.agent_id or "operator"
        log.info("call %s: ringing supervisor %s (%s) to %s %s", call_id, sup, session.leg, mode, agent)
        try:
            await self._call.rest.originate(
                session.leg,
                spec.dial_string(sup),
                app=self._app,
                app_args=["monitor", call_id, mode, sup],
                caller_id=f'"{mode} {agent}" <{agent}>',
                ring_timeout=RING_TIMEOUT,
                originator=call_id,
            )
        except AriError as exc:
            log.warning("call %s: cannot ring supervisor %s: %s", call_id, sup, exc)
            self._sessions.pop(sup, None)
            self._note("monitor", f"{sup} not reached: {exc}")

    async def end_all(self, why: str) -> None:
        """The conversation is over (or the caller is transferred): every supervisor leaves."""
        for session in list(self._sessions.values()):
            await self._end(session, why)

    # --- channel events -------------------------------------------------------------------------

    async def channel_up(self, channel_id: str) -> None:
        """StasisStart of a supervisor's leg (they answered) or of one of our snoops."""
        session = self._sessions.get(self._channels[channel_id])
        if session is not None and channel_id == session.leg:
            if not session.answered:  # the same StasisStart again changes nothing
                session.answered = True
                await self._wire(session)
            return
        if session is not None and channel_id == session.snoop and session.bridge is not None:
            if not session.snoop_bridged:
                session.snoop_bridged = True
                try:
                    await self._call.rest.add_channel(session.bridge, channel_id)
                except AriError as exc:
                    log.warning("call %s: cannot bridge snoop %s: %s", self._call.call_id, channel_id, exc)
                    await self._end(session, f"cannot {session.mode}: {exc}")
            return
        # a leg that answered after its session ended, or a snoop that was replaced meanwhile
        log.info("call %s: monitoring channel %s is not needed any more: hanging up", self._call.call_id, channel_id)
        await _quietly(self._call.rest.hangup(channel_id))

    async def channel_gone(self, channel_id: str, cause: int | None) -> None:
        """A supervisor's leg or a snoop hung up, left Stasis or was destroyed."""
        session = self._sessions.get(self._channels[channel_id])
        if session is None:
            return
        if channel_id == session.leg:
            unanswered = _CAUSES.get(cause or 0, f"cause {cause}")
            why = "hung up" if session.answered else f"did not answer ({unanswered})"
            await self._end(session, why, leg_gone=True)
        elif channel_id == session.snoop:
            # the operator's channel went (the conversation ends too), or Asterisk dropped the snoop
            session.snoop = None
            await self._end(session, "snoop ended")

    # --- wiring ---------------------------------------------------------------------------------

    async def _wire(self, session: _Session) -> None:
        """Connect an answered supervisor for ``session.mode``, undoing the previous mode first."""
        call = self._call
        await self._unwire(session)
        operator = call.agent_channel
        if operator is None:
            await self._end(session, "no conversation")
            return
        try:
            if session.mode == "barge":
                session.barged = True
                await call.rest.add_channel(call.conv_bridge, session.leg)
            else:
                spy, whisper = _SNOOP[session.mode]
                session.wirings += 1
                snoop = f"{session.leg}-snoop{session.wirings}"
                bridge = f"{session.leg}-bridge{session.wirings}"
                session.bridge = bridge
                await call.rest.create_bridge(bridge, type="mixing", name=f"monitor {session.supervisor}")
                await call.rest.add_channel(bridge, session.leg)
                session.snoop = snoop
                self._channels[snoop] = session.supervisor
                self._link(snoop, call.call_id)
                await call.rest.snoop(
                    operator,
                    snoop,
                    app=self._app,
                    spy=spy,
                    whisper=whisper,
                    app_args=["snoop", call.call_id, session.supervisor],
                )
        except AriError as exc:
            log.warning("call %s: supervisor %s cannot %s: %s", call.call_id, session.supervisor, session.mode, exc)
            await self._end(session, f"cannot {session.mode}: {exc}")
            return
        self._note("monitor", f"{session.supervisor} {session.mode}")
        log.info(
            "call %s: supervisor %s %s (operator %s, leg %s)",
            call.call_id,
            session.supervisor,
            _DOING[session.mode],
            call.agent_id,
            session.leg,
        )

    async def _unwire(self, session: _Session) -> None:
        rest = self._call.rest
        if session.barged:
            session.barged = False
            await _quietly(rest.remove_channel(self._call.conv_bridge, session.leg))
        snoop, bridge = session.snoop, session.bridge
        session.snoop = session.bridge = None
        session.snoop_bridged = False
        if snoop is not None:
            await _quietly(rest.hangup(snoop))
        if bridge is not None:
            await _quietly(rest.remove_channel(bridge, session.leg))
            await _quietly(rest.destroy_bridge(bridge))

    async def _end(self, session: _Session, why: str, *, leg_gone: bool = False) -> None:
        if self._sessions.get(session.supervisor) is not session:
            return
        del self._sessions[session.supervisor]
        await self._unwire(session)
        if not leg_gone:
            await _quietly(self._call.rest.hangup(session.leg))
        self._note("monitor", f"{session.supervisor} ended: {why}")
        log.info("call %s: supervisor %s ended monitoring: %s", self._call.call_id, session.supervisor, why)


_DOING = {"listen": "listening", "whisper": "whispering to the operator", "barge": "barged in"}


async def _quietly(request: Awaitable[None]) -> None:
    """Clean-up: 404 is "already gone", and no other refusal may stop the rest of it."""
    try:
        await request
    except AriError as exc:
        log.debug("monitoring clean-up: %s", exc)


__all__ = ["MODES", "RING_TIMEOUT", "MonitoredCall", "Monitors", "Supervision"]
