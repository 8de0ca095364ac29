"""The operator lifecycle as an explicit state machine: typed events in, (agent, effects) out, no I/O.

Theory of operation
-------------------
An operator is in exactly one state:

``logged_out``  not working; never offered calls
``ready``       idle and registered; the only state in which a call may be offered
``ringing``     one call is being offered (the softphone rings); the claim in Redis holds the call
``on_call``     talking to the caller
``wrap_up``     after-call work for the queue's wrap-up time; not offered calls
``not_ready``   paused, always with a reason (break, lunch, ..., ``ring_no_answer``, ``unregistered``)

``TRANSITIONS[state][event]`` below is the whole graph; a pair missing from it raises
``IllegalTransition`` naming both. Three guards sit on top of the table and are the only logic that
is not a lookup:

1. *Never offer to an unregistered softphone.* Arriving in ``ready`` while ``registered`` is false
   lands in ``not_ready(unregistered)`` instead, and ``offer`` to an unregistered agent raises.
2. *A softphone that comes back heals its own pause.* ``registered`` in ``not_ready(unregistered)``
   returns the operator to ``ready``; any other pause reason is the operator's choice and stays.
3. ``registered`` / ``unregistered`` in states where the softphone flag does not decide anything
   (``logged_out``, ``on_call``, ``wrap_up``) only record the flag; a call in progress ends with its
   own ``hangup`` from ARI.

``apply`` never awaits and reads no clock: the caller passes ``now`` (seconds, from the injected
clock). The effects it returns are commands for the adapter (ring the softphone, cancel the ring,
put the call back at the head of its line, start or cancel the wrap-up timer).

Timers can be lost (a controller restart, a missed ARI event), so ``heal`` looks at an agent and the
clock and says which event un-sticks it, if any; a supervisor's periodic sweep applies that event.

Example::

    agent = Agent.new("op1003", now=0.0, registered=True)
    agent, effects = apply(agent, Login(), now=1.0)          # ready, []
    agent, effects = apply(agent, Offer("c1"), now=2.0)      # ringing, [Ring("c1")]
    agent, effects = apply(agent, RingTimeout(), now=17.0)   # not_ready(ring_no_answer), [CancelRing, RequeueCall]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import ClassVar, Final


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    NOT_READY = "not_ready"


class NotReadyReason(enum.StrEnum):
    BREAK = "break"
    LUNCH = "lunch"
    TRAINING = "training"
    MEETING = "meeting"
    BACKOFFICE = "backoffice"
    RING_NO_ANSWER = "ring_no_answer"
    UNREGISTERED = "unregistered"
    SUPERVISOR = "supervisor"


class EventKind(enum.StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    READY = "ready"
    PAUSE = "pause"
    OFFER = "offer"
    ANSWER = "answer"
    RING_TIMEOUT = "ring_timeout"
    CALLER_GONE = "caller_gone"
    HANGUP = "hangup"
    WRAPUP_DONE = "wrapup_done"
    UNREGISTERED = "unregistered"
    REGISTERED = "registered"
    FORCE = "force"


class AgentError(Exception):
    """Base of the operator state machine's errors (all ours: a caller asked for something illegal)."""


class IllegalTransition(AgentError):
    """The event is not allowed in the agent's current state."""

    def __init__(self, agent_id: str, state: AgentState, event: EventKind, detail: str = "") -> None:
        self.agent_id = agent_id
        self.state = state
        self.event = event
        extra = f": {detail}" if detail else ""
        super().__init__(f"agent {agent_id}: event {event.value!r} is illegal in state {state.value!r}{extra}")


# --- events (adapter -> state machine) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Login:
    kind: ClassVar[EventKind] = EventKind.LOGIN


@dataclass(frozen=True, slots=True)
class Logout:
    kind: ClassVar[EventKind] = EventKind.LOGOUT


@dataclass(frozen=True, slots=True)
class Ready:
    kind: ClassVar[EventKind] = EventKind.READY


@dataclass(frozen=True, slots=True)
class Pause:
    reason: NotReadyReason
    kind: ClassVar[EventKind] = EventKind.PAUSE


@dataclass(frozen=True, slots=True)
class Offer:
    call_id: str
    kind: ClassVar[EventKind] = EventKind.OFFER


@dataclass(frozen=True, slots=True)
class Answer:
    kind: ClassVar[EventKind] = EventKind.ANSWER


@dataclass(frozen=True, slots=True)
class RingTimeout:
    kind: ClassVar[EventKind] = EventKind.RING_TIMEOUT


@dataclass(frozen=True, slots=True)
class CallerGone:
    """The caller hung up while the operator's softphone was ringing."""

    kind: ClassVar[EventKind] = EventKind.CALLER_GONE


@dataclass(frozen=True, slots=True)
class Hangup:
    """The conversation ended (either side); ``wrapup_s`` is the queue's wrap-up time."""

    wrapup_s: float = 0.0
    kind: ClassVar[EventKind] = EventKind.HANGUP


@dataclass(frozen=True, slots=True)
class WrapupDone:
    kind: ClassVar[EventKind] = EventKind.WRAPUP_DONE


@dataclass(frozen=True, slots=True)
class Unregistered:
    kind: ClassVar[EventKind] = EventKind.UNREGISTERED


@dataclass(frozen=True, slots=True)
class Registered:
    kind: ClassVar[EventKind] = EventKind.REGISTERED


@dataclass(frozen=True, slots=True)
class Force:
    """A supervisor puts the operator in ``state`` (only logged_out, ready or not_ready)."""

    state: AgentState
    reason: NotReadyReason = NotReadyReason.SUPERVISOR
    kind: ClassVar[EventKind] = EventKind.FORCE


Event = (
    Login
    | Logout
    | Ready
    | Pause
    | Offer
    | Answer
    | RingTimeout
    | CallerGone
    | Hangup
    | WrapupDone
    | Unregistered
    | Registered
    | Force
)

# --- effects (state machine -> adapter) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ring:
    """Ring the operator's softphone for ``call_id`` (the adapter starts the ring timer)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class CancelRing:
    call_id: str


@dataclass(frozen=True, slots=True)
class RequeueCall:
    """Put the call back at the head of its line, with its original enqueue time (``LiveState.release``)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class StartWrapupTimer:
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelWrapupTimer:
    pass


Effect = Ring | CancelRing | RequeueCall | StartWrapupTimer | CancelWrapupTimer

# --- the table ---------------------------------------------------------------------------------

S = AgentState
E = EventKind
#: stands for "the state named by the ``Force`` event"
FORCED: Final = "forced"

TRANSITIONS: Final[dict[AgentState, dict[EventKind, AgentState | str]]] = {
    S.LOGGED_OUT: {
        E.LOGIN: S.READY,
        E.REGISTERED: S.LOGGED_OUT,
        E.UNREGISTERED: S.LOGGED_OUT,
        E.FORCE: FORCED,
    },
    S.READY: {
        E.READY: S.READY,
        E.LOGOUT: S.LOGGED_OUT,
        E.PAUSE: S.NOT_READY,
        E.OFFER: S.RINGING,
        E.REGISTERED: S.READY,
        E.UNREGISTERED: S.NOT_READY,
        E.FORCE: FORCED,
    },
    S.RINGING: {
        E.ANSWER: S.ON_CALL,
        E.RING_TIMEOUT: S.NOT_READY,
        E.CALLER_GONE: S.READY,
        E.PAUSE: S.NOT_READY,  # the operator declines: the call goes back to its line
        E.LOGOUT: S.LOGGED_OUT,
        E.REGISTERED: S.RINGING,
        E.UNREGISTERED: S.NOT_READY,  # the softphone vanished while ringing
        E.FORCE: FORCED,
    },
    S.ON_CALL: {
        E.HANGUP: S.WRAP_UP,
        E.REGISTERED: S.ON_CALL,
        E.UNREGISTERED: S.ON_CALL,
    },
    S.WRAP_UP: {
        E.WRAPUP_DONE: S.READY,
        E.READY: S.READY,  # the operator ends wrap-up early
        E.PAUSE: S.NOT_READY,
        E.LOGOUT: S.LOGGED_OUT,
        E.REGISTERED: S.WRAP_UP,
        E.UNREGISTERED: S.WRAP_UP,
        E.FORCE: FORCED,
    },
    S.NOT_READY: {
        E.READY: S.READY,
        E.PAUSE: S.NOT_READY,
        E.LOGOUT: S.LOGGED_OUT,
        E.REGISTERED: S.NOT_READY,  # guard 2 may turn this into ready
        E.UNREGISTERED: S.NOT_READY,
        E.FORCE: FORCED,
    },
}

#: reason a transition into not_ready carries, when the event itself does not name one
_IMPLIED_REASON: Final[dict[EventKind, NotReadyReason]] = {
    E.RING_TIMEOUT: NotReadyReason.RING_NO_ANSWER,
    E.UNREGISTERED: NotReadyReason.UNREGISTERED,
}

#: states a supervisor may force; ringing and on_call only come from a real call
_FORCEABLE: Final = frozenset({S.LOGGED_OUT, S.READY, S.NOT_READY})


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    """One operator's lifecycle state; times are seconds from the injected clock."""

    id: str
    state: AgentState = AgentState.LOGGED_OUT
    reason: NotReadyReason | None = None
    since: float = 0.0
    call_id: str | None = None
    registered: bool = False
    last_call_end: float | None = None

    @classmethod
    def new(cls, agent_id: str, *, now: float, registered: bool = False) -> Agent:
        return cls(id=agent_id, since=now, registered=registered)


@dataclass(frozen=True, slots=True, kw_only=True)
class HealLimits:
    """How long a state may last before ``heal`` declares it stuck (seconds)."""

    ring_timeout_s: float = 15.0
    #: slack over the ring timeout: the adapter's own timer should fire first
    grace_s: float = 5.0
    max_wrapup_s: float = 300.0


def apply(agent: Agent, event: Event, now: float) -> tuple[Agent, list[Effect]]:
    """Apply ``event`` to ``agent`` at time ``now``; return the new agent and the effects to carry out.

    Raises ``IllegalTransition`` when the table has no entry for (state, event).

    Example::

        agent, effects = apply(agent, Hangup(wrapup_s=30), now=clock())
        # agent.state is wrap_up, effects == [StartWrapupTimer(30)]
    """
    row = TRANSITIONS[agent.state]
    if event.kind not in row:
        raise IllegalTransition(agent.id, agent.state, event.kind)
    target = row[event.kind]

    registered = agent.registered
    if isinstance(event, Registered):
        registered = True
    elif isinstance(event, Unregistered):
        registered = False

    reason: NotReadyReason | None = None
    if isinstance(event, Force):
        if event.state not in _FORCEABLE:
            raise IllegalTransition(agent.id, agent.state, event.kind, f"cannot force into {event.state.value!r}")
        target = event.state
        reason = event.reason if target is S.NOT_READY else None
    elif isinstance(event, Pause):
        reason = event.reason
    assert isinstance(target, AgentState)
    if target is S.NOT_READY and reason is None:
        # staying in not_ready keeps the operator's own reason (a break outlasts a softphone blip),
        # but a vanished softphone explains a ring-no-answer better than the ring-no-answer did
        reason = agent.reason if agent.state is S.NOT_READY else _IMPLIED_REASON.get(event.kind)
        if isinstance(event, Unregistered) and agent.reason is NotReadyReason.RING_NO_ANSWER:
            reason = NotReadyReason.UNREGISTERED

    if isinstance(event, Offer) and not agent.registered:
        raise IllegalTransition(agent.id, agent.state, event.kind, "softphone is not registered")

    # guard 2: the softphone is back, and it was the only reason for the pause
    if isinstance(event, Registered) and agent.state is S.NOT_READY and agent.reason is NotReadyReason.UNREGISTERED:
        target, reason = S.READY, None
    # guard 1: never ready without a registered softphone
    if target is S.READY and not registered:
        target, reason = S.NOT_READY, NotReadyReason.UNREGISTERED

    effects: list[Effect] = []
    call_id = agent.call_id
    last_call_end = agent.last_call_end
    if isinstance(event, Offer):
        call_id = event.call_id
        effects.append(Ring(event.call_id))
    elif agent.state is S.RINGING and target is not S.RINGING and target is not S.ON_CALL:
        if call_id is not None:
            effects.append(CancelRing(call_id))
            if not isinstance(event, CallerGone):
                effects.append(RequeueCall(call_id))
        call_id = None
    elif isinstance(event, Hangup):
        call_id = None
        last_call_end = now
        effects.append(StartWrapupTimer(event.wrapup_s))
    if agent.state is S.WRAP_UP and target is not S.WRAP_UP and not isinstance(event, WrapupDone):
        effects.append(CancelWrapupTimer())

    changed = (target, reason) != (agent.state, agent.reason)
    new = replace(
        agent,
        state=target,
        reason=reason,
        since=now if changed else agent.since,
        call_id=call_id,
        registered=registered,
        last_call_end=last_call_end,
    )
    return new, effects


def heal(agent: Agent, now: float, limits: HealLimits) -> Event | None:
    """Return the event that un-sticks ``agent`` if a timer or an ARI event was lost, else ``None``.

    Example::

        event = heal(agent, now=clock(), limits=HealLimits())
        if event is not None:
            agent, effects = apply(agent, event, now=clock())
    """
    age = now - agent.since
    if agent.state is S.RINGING and (agent.call_id is None or age > limits.ring_timeout_s + limits.grace_s):
        return RingTimeout()
    if agent.state is S.WRAP_UP and age > limits.max_wrapup_s:
        return WrapupDone()
    if agent.state is S.ON_CALL and agent.call_id is None:
        return Hangup()
    return None
