"""The operator state machine: every legal transition, illegal ones raising, healing, registration."""

from __future__ import annotations

import pytest

from acd.agents import (
    TRANSITIONS,
    Agent,
    AgentState,
    Answer,
    CallerGone,
    CancelRing,
    CancelWrapupTimer,
    Effect,
    Event,
    EventKind,
    Force,
    Hangup,
    HealLimits,
    IllegalTransition,
    Login,
    Logout,
    NotReadyReason,
    Offer,
    Pause,
    Ready,
    Registered,
    RequeueCall,
    Ring,
    RingTimeout,
    StartWrapupTimer,
    Unregistered,
    WrapupDone,
    apply,
    heal,
)

S = AgentState
R = NotReadyReason
T0 = 1000.0


def agent_in(
    state: AgentState,
    *,
    reason: NotReadyReason | None = None,
    registered: bool = True,
    call_id: str | None = None,
    since: float = T0,
) -> Agent:
    if call_id is None and state in (S.RINGING, S.ON_CALL):
        call_id = "c1"
    if reason is None and state is S.NOT_READY:
        reason = R.BREAK
    return Agent(id="op1", state=state, reason=reason, since=since, call_id=call_id, registered=registered)


# (from state, event, to state, to reason, effects) for every entry of TRANSITIONS
LEGAL: list[tuple[AgentState, Event, AgentState, NotReadyReason | None, list[Effect]]] = [
    (S.LOGGED_OUT, Login(), S.READY, None, []),
    (S.LOGGED_OUT, Registered(), S.LOGGED_OUT, None, []),
    (S.LOGGED_OUT, Unregistered(), S.LOGGED_OUT, None, []),
    (S.LOGGED_OUT, Force(S.NOT_READY), S.NOT_READY, R.SUPERVISOR, []),
    (S.READY, Ready(), S.READY, None, []),
    (S.READY, Logout(), S.LOGGED_OUT, None, []),
    (S.READY, Pause(R.LUNCH), S.NOT_READY, R.LUNCH, []),
    (S.READY, Offer("c9"), S.RINGING, None, [Ring("c9")]),
    (S.READY, Registered(), S.READY, None, []),
    (S.READY, Unregistered(), S.NOT_READY, R.UNREGISTERED, []),
    (S.READY, Force(S.LOGGED_OUT), S.LOGGED_OUT, None, []),
    (S.RINGING, Answer(), S.ON_CALL, None, []),
    (S.RINGING, RingTimeout(), S.NOT_READY, R.RING_NO_ANSWER, [CancelRing("c1"), RequeueCall("c1")]),
    (S.RINGING, CallerGone(), S.READY, None, [CancelRing("c1")]),
    (S.RINGING, Pause(R.BREAK), S.NOT_READY, R.BREAK, [CancelRing("c1"), RequeueCall("c1")]),
    (S.RINGING, Logout(), S.LOGGED_OUT, None, [CancelRing("c1"), RequeueCall("c1")]),
    (S.RINGING, Registered(), S.RINGING, None, []),
    (S.RINGING, Unregistered(), S.NOT_READY, R.UNREGISTERED, [CancelRing("c1"), RequeueCall("c1")]),
    (S.RINGING, Force(S.NOT_READY), S.NOT_READY, R.SUPERVISOR, [CancelRing("c1"), RequeueCall("c1")]),
    (S.ON_CALL, Hangup(wrapup_s=30), S.WRAP_UP, None, [StartWrapupTimer(30)]),
    (S.ON_CALL, Registered(), S.ON_CALL, None, []),
    (S.ON_CALL, Unregistered(), S.ON_CALL, None, []),
    (S.WRAP_UP, WrapupDone(), S.READY, None, []),
    (S.WRAP_UP, Ready(), S.READY, None, [CancelWrapupTimer()]),
    (S.WRAP_UP, Pause(R.TRAINING), S.NOT_READY, R.TRAINING, [CancelWrapupTimer()]),
    (S.WRAP_UP, Logout(), S.LOGGED_OUT, None, [CancelWrapupTimer()]),
    (S.WRAP_UP, Registered(), S.WRAP_UP, None, []),
    (S.WRAP_UP, Unregistered(), S.WRAP_UP, None, []),
    (S.WRAP_UP, Force(S.READY), S.READY, None, [CancelWrapupTimer()]),
    (S.NOT_READY, Ready(), S.READY, None, []),
    (S.NOT_READY, Pause(R.LUNCH), S.NOT_READY, R.LUNCH, []),
    (S.NOT_READY, Logout(), S.LOGGED_OUT, None, []),
    (S.NOT_READY, Registered(), S.NOT_READY, R.BREAK, []),
    (S.NOT_READY, Unregistered(), S.NOT_READY, R.BREAK, []),
    (S.NOT_READY, Force(S.READY), S.READY, None, []),
]


def test_every_table_entry_has_a_case() -> None:
    covered = {(state, event.kind) for state, event, *_ in LEGAL}
    table = {(state, kind) for state, row in TRANSITIONS.items() for kind in row}
    assert covered == table


@pytest.mark.parametrize(
    ("state", "event", "to", "reason", "effects"),
    LEGAL,
    ids=[f"{s.value}-{e.kind.value}" for s, e, *_ in LEGAL],
)
def test_legal_transition(
    state: AgentState,
    event: Event,
    to: AgentState,
    reason: NotReadyReason | None,
    effects: list[Effect],
) -> None:
    agent, got = apply(agent_in(state), event, now=T0 + 5)
    assert (agent.state, agent.reason, got) == (to, reason, effects)
    if (to, reason) != (state, agent_in(state).reason):
        assert agent.since == T0 + 5
    else:
        assert agent.since == T0
    if to in (S.RINGING, S.ON_CALL):
        assert agent.call_id is not None
    else:
        assert agent.call_id is None


ILLEGAL: list[tuple[AgentState, Event]] = [
    (S.LOGGED_OUT, Offer("c1")),
    (S.LOGGED_OUT, Ready()),
    (S.LOGGED_OUT, Answer()),
    (S.LOGGED_OUT, Logout()),
    (S.READY, Answer()),
    (S.READY, Hangup()),
    (S.READY, Login()),
    (S.RINGING, Offer("c2")),
    (S.RINGING, Hangup()),
    (S.ON_CALL, Offer("c2")),
    (S.ON_CALL, Logout()),
    (S.ON_CALL, Pause(R.BREAK)),
    (S.ON_CALL, Force(S.LOGGED_OUT)),
    (S.WRAP_UP, Offer("c2")),
    (S.NOT_READY, Offer("c2")),
    (S.NOT_READY, WrapupDone()),
    (S.READY, Force(S.RINGING)),
    (S.NOT_READY, Force(S.ON_CALL)),
]


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=[f"{s.value}-{e.kind.value}" for s, e in ILLEGAL])
def test_illegal_transition_raises_naming_state_and_event(state: AgentState, event: Event) -> None:
    with pytest.raises(IllegalTransition) as info:
        apply(agent_in(state), event, now=T0)
    assert info.value.state is state
    assert info.value.event is event.kind
    assert state.value in str(info.value)
    assert event.kind.value in str(info.value)


# --- registration: an unregistered softphone is never offered calls ---------------------------


def test_given_unregistered_ready_agent_when_offered_then_raises() -> None:
    with pytest.raises(IllegalTransition, match="not registered"):
        apply(agent_in(S.READY, registered=False), Offer("c1"), now=T0)


@pytest.mark.parametrize(
    ("state", "event"),
    [(S.LOGGED_OUT, Login()), (S.NOT_READY, Ready()), (S.WRAP_UP, WrapupDone()), (S.WRAP_UP, Ready())],
)
def test_given_unregistered_when_becoming_ready_then_not_ready_unregistered(state: AgentState, event: Event) -> None:
    agent, _ = apply(agent_in(state, registered=False), event, now=T0)
    assert (agent.state, agent.reason) == (S.NOT_READY, R.UNREGISTERED)


def test_given_softphone_drops_and_returns_then_ready_again() -> None:
    agent, _ = apply(agent_in(S.READY), Unregistered(), now=T0 + 1)
    assert (agent.state, agent.reason, agent.registered) == (S.NOT_READY, R.UNREGISTERED, False)
    agent, _ = apply(agent, Registered(), now=T0 + 2)
    assert (agent.state, agent.reason, agent.registered) == (S.READY, None, True)


def test_given_break_when_softphone_returns_then_break_kept() -> None:
    agent, _ = apply(agent_in(S.NOT_READY, reason=R.LUNCH, registered=False), Registered(), now=T0)
    assert (agent.state, agent.reason, agent.registered) == (S.NOT_READY, R.LUNCH, True)


def test_given_on_call_when_softphone_drops_then_wrap_up_ends_unregistered() -> None:
    agent, _ = apply(agent_in(S.ON_CALL), Unregistered(), now=T0)
    agent, _ = apply(agent, Hangup(wrapup_s=10), now=T0 + 60)
    assert agent.last_call_end == T0 + 60
    agent, _ = apply(agent, WrapupDone(), now=T0 + 70)
    assert (agent.state, agent.reason) == (S.NOT_READY, R.UNREGISTERED)


def test_full_call_cycle() -> None:
    agent = Agent.new("op1", now=0.0, registered=True)
    steps: list[tuple[Event, AgentState]] = [
        (Login(), S.READY),
        (Offer("c1"), S.RINGING),
        (Answer(), S.ON_CALL),
        (Hangup(wrapup_s=20), S.WRAP_UP),
        (WrapupDone(), S.READY),
        (Logout(), S.LOGGED_OUT),
    ]
    for i, (event, state) in enumerate(steps, start=1):
        agent, _ = apply(agent, event, now=float(i))
        assert agent.state is state
    assert agent.last_call_end == 4.0


# --- healing stuck states ------------------------------------------------------------------------

LIMITS = HealLimits(ring_timeout_s=15, grace_s=5, max_wrapup_s=120)


@pytest.mark.parametrize(
    ("agent", "age", "expected"),
    [
        (agent_in(S.RINGING), 19.0, None),
        (agent_in(S.RINGING), 21.0, EventKind.RING_TIMEOUT),
        (agent_in(S.WRAP_UP), 119.0, None),
        (agent_in(S.WRAP_UP), 121.0, EventKind.WRAPUP_DONE),
        (agent_in(S.ON_CALL), 9999.0, None),
        (Agent(id="op1", state=S.ON_CALL, since=T0, registered=True), 0.0, EventKind.HANGUP),
        (agent_in(S.READY), 9999.0, None),
        (agent_in(S.NOT_READY), 9999.0, None),
        (agent_in(S.LOGGED_OUT), 9999.0, None),
    ],
)
def test_heal(agent: Agent, age: float, expected: EventKind | None) -> None:
    event = heal(agent, now=T0 + age, limits=LIMITS)
    assert (event.kind if event is not None else None) == expected


def test_healed_ringing_agent_goes_not_ready_and_call_requeued() -> None:
    agent = agent_in(S.RINGING)
    event = heal(agent, now=T0 + 60, limits=LIMITS)
    assert event is not None
    agent, effects = apply(agent, event, now=T0 + 60)
    assert (agent.state, agent.reason) == (S.NOT_READY, R.RING_NO_ANSWER)
    assert effects == [CancelRing("c1"), RequeueCall("c1")]
