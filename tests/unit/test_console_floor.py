"""The supervisors' panel ("floor") from hand-made data: operators with time in state and their
call, conversations that can be monitored, waiting calls per queue, callers masked. No I/O."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from acd.agents import Agent, AgentState, NotReadyReason
from acd.queues import QueueSpec
from acd.roster import OperatorSpec, SupervisorSpec
from acd.routing import WaitingCall
from ivr.config import IvrConfig
from ivr.hours import Calendar, CalendarSpec
from ivr.schema import DialplanSettings
from unico.console.snapshot import CallDetails, build_floor, held_calls

ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ROME)
T = NOW.timestamp()


def config() -> IvrConfig:
    queues = {
        name: QueueSpec.model_validate({"name": title, "tier": "general", "calendar": "always"})
        for name, title in (("general", "General"), ("bancoposta", "BancoPosta"))
    }
    operators = {
        op: OperatorSpec.model_validate({"name": name, "site": "roma", "tiers": ["general"], "skills": {}})
        for op, name in (("op1", "Anna Verdi"), ("op2", "Bruno Neri"), ("op3", "Carla Blu"), ("op4", "Dario Gialli"))
    }
    return IvrConfig(
        settings=DialplanSettings(),
        numbers={},
        nodes={},
        prompts={},
        calendars={"always": Calendar.from_spec(CalendarSpec(hours={"mon-sun": "00:00-24:00"}, holidays=None))},
        queues=queues,
        version="test",
        operators=operators,
        supervisors={"sup9001": SupervisorSpec.model_validate({"name": "Elena Greco", "site": "roma"})},
    )


def waiting(call_id: str, queue: str, enqueued_at: float, priority: int = 0) -> WaitingCall:
    return WaitingCall(
        call_id=call_id, queue=queue, priority=priority, enqueued_at=enqueued_at, requirements={}, tier="general"
    )


AGENTS = {
    "op1": Agent(id="op1", state=AgentState.ON_CALL, since=T - 95, call_id="c-talk", registered=True),
    "op2": Agent(id="op2", state=AgentState.NOT_READY, reason=NotReadyReason.LUNCH, since=T - 600, registered=True),
    "op3": Agent(id="op3", state=AgentState.WRAP_UP, since=T - 3, call_id="c-over", registered=True),
    # op4: never seen by Redis
}
DETAILS = {
    "c-talk": CallDetails(queue="bancoposta", caller="+393331234567"),
    "c-over": CallDetails(queue="general", caller="+393339998887"),
    "c-w1": CallDetails(queue="general", caller="+390612345678"),
}


def test_given_live_states_then_every_roster_operator_with_state_reason_time_in_state_and_call() -> None:
    floor = build_floor(config(), AGENTS, [], DETAILS, NOW)
    rows = {row.id: row for row in floor.operators}
    assert list(rows) == ["op1", "op2", "op3", "op4"], "roster order"
    assert (rows["op1"].state, rows["op1"].call_id, rows["op1"].queue, rows["op1"].in_state) == (
        "on_call",
        "c-talk",
        "bancoposta",
        95.0,
    )
    assert (rows["op2"].state, rows["op2"].reason, rows["op2"].in_state, rows["op2"].call_id) == (
        "not_ready",
        "lunch",
        600.0,
        None,
    )
    assert (rows["op4"].state, rows["op4"].in_state, rows["op4"].registered) == ("logged_out", None, False)
    assert rows["op1"].name == "Anna Verdi" and rows["op1"].site == "roma"


def test_given_conversations_then_only_calls_in_progress_listed_with_operator_queue_and_masked_caller() -> None:
    floor = build_floor(config(), AGENTS, [], DETAILS, NOW)
    (talk,) = floor.talking  # op3's wrap-up still names its call, but there is nothing to monitor
    assert (talk.call_id, talk.operator, talk.operator_name, talk.queue, talk.talking) == (
        "c-talk",
        "op1",
        "Anna Verdi",
        "bancoposta",
        95.0,
    )
    assert talk.caller == "+39 333 ***4567"


def test_given_calls_waiting_then_listed_by_queue_then_line_order_with_waited_time() -> None:
    lines = [
        waiting("c-w2", "general", T - 10),
        waiting("c-w1", "general", T - 40, priority=10),
        waiting("c-b1", "bancoposta", T - 5),
        waiting("c-x", "gone", T - 99),  # a queue no longer in the config
    ]
    floor = build_floor(config(), AGENTS, lines, DETAILS, NOW)
    assert [(w.call_id, w.queue, w.waited) for w in floor.waiting] == [
        ("c-b1", "bancoposta", 5.0),
        ("c-w1", "general", 40.0),
        ("c-w2", "general", 10.0),
    ]
    assert floor.waiting[1].priority == 10
    assert floor.waiting[1].caller == "+39 061 ***5678"
    assert floor.waiting[0].caller == "***", "no contact row read: nothing to show"


def test_floor_json_names_the_supervisors_and_never_a_raw_number() -> None:
    lines = [waiting("c-w1", "general", T - 40)]
    body = build_floor(config(), AGENTS, lines, DETAILS, NOW).to_json_dict()
    assert body["supervisors"] == [{"id": "sup9001", "name": "Elena Greco"}]
    assert set(body) == {"operators", "talking", "waiting", "supervisors"}
    assert body["operators"][0] == {
        "id": "op1",
        "name": "Anna Verdi",
        "site": "roma",
        "state": "on_call",
        "reason": None,
        "since": T - 95,
        "in_state": 95.0,
        "registered": True,
        "call_id": "c-talk",
        "queue": "bancoposta",
    }
    text = json.dumps(body)
    for raw in ("+393331234567", "3331234567", "+390612345678", "0612345678"):
        assert raw not in text


def test_held_calls_maps_each_call_to_the_operator_holding_it() -> None:
    assert held_calls(AGENTS) == {"c-talk": "op1", "c-over": "op3"}
