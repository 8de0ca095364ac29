"""The ACD end to end: sipp callers through the IVR into queues, sipp softphones as operators who
REGISTER with digest auth, real Asterisk, real Redis, the real controller process.

Each test asserts which operator got which call and why (the contact record's operator and routing
reason), and ends with the rig's leak check: no channels or bridges, no call left in Redis, no
operator ringing or on a call, no contact record left open.

Test queues (tests/e2e/acd_test.yaml) ring for 3 s, wrap up for 2 s and escalate after 3 and 6 s.
"""

from __future__ import annotations

import asyncio

from tests.e2e.rig import Controller, Operators, Records, unique_caller, wait_for
from tests.sipp import Call
from unico import pbx
from unico.ari import MODELLED_EVENTS
from unico.pbx.operators import ensure_operator_passwords


def caller_id() -> str:
    return unique_caller("38")


def caller(rig: Controller, dialled: str, number: str) -> Call:
    return Call(dialled, caller=number, port=rig.settings.sip_port, answer_timeout_ms=15_000)


def steps(record: object, kind: str) -> list[str]:
    return [str(s.get("note")) for s in record.ivr_path if s["kind"] == kind]  # type: ignore[attr-defined]


async def test_given_ready_operator_when_caller_queues_then_operator_answers_and_record_says_why(
    rig: Controller, records: Records, operators: Operators
) -> None:
    phone = await operators.online("op1002")
    number = caller_id()
    result = await caller(rig, "7101", number).pause(4000).hangup().run()
    assert result.answered and result.local_bye, result.explain()
    invites = await phone.wait_invites(1)
    assert len(invites) == 1 and number in (invites[0].caller_number or ""), phone.explain()
    assert phone.answered == 1 and await phone.wait_count("REMOTE_BYE", 1)
    record = await records.finished_for(number)
    assert record.outcome == "answered"
    assert (record.queue, record.tier, record.operator) == ("tq_basic", "general", "op1002")
    assert record.routing_reason is not None and record.routing_reason.startswith("op1002: italiano 10 >= 5")
    assert record.queued_at is not None and record.answered_at is not None
    assert record.started_at <= record.queued_at <= record.answered_at <= record.ended_at  # type: ignore[operator]
    assert steps(record, "announce") == [], "an idle operator takes the call before any announcement"
    # after the caller hangs up: wrap-up for the queue's 2 s, then ready again by itself
    agent = await rig.agent("op1002")
    assert agent["state"] in ("wrap_up", "ready"), agent
    await rig.wait_agent("op1002", "ready", timeout=10)


async def test_given_two_ready_operators_when_skill_call_arrives_then_best_proficiency_wins(
    rig: Controller, records: Records, operators: Operators
) -> None:
    best = await operators.online("op1005")  # bancoposta 10
    other = await operators.online("op1001")  # bancoposta 9, idle longer
    number = caller_id()
    result = await caller(rig, "7102", number).pause(2500).hangup().run()
    assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert record.operator == "op1005", record
    assert "bancoposta 10 >= 10" in (record.routing_reason or "") and "best of 1 eligible" in (
        record.routing_reason or ""
    ), record.routing_reason
    assert best.answered == 1 and other.invites == []


async def test_given_only_lower_skill_operator_when_escalation_steps_fire_then_call_reaches_them_in_time(
    rig: Controller, records: Records, operators: Operators
) -> None:
    """tq_escalate: bancoposta >= 10 at first, >= 9 after 3 s, overflow to enterprise after 6 s."""
    op1001 = await operators.online("op1001")  # bancoposta 9: eligible from 3 s
    op1006 = await operators.online("op1006")  # enterprise only: eligible from 6 s
    number = caller_id()
    result = await caller(rig, "7102", number).pause(6000).hangup().run()
    assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert record.operator == "op1001", record
    assert record.queued_at is not None and record.answered_at is not None
    waited = (record.answered_at - record.queued_at).total_seconds()
    assert 3.0 <= waited < 5.5, f"escalation to bancoposta >= 9 should fire at 3 s, answered after {waited:.2f} s"
    assert steps(record, "escalate") == ["after 3s need bancoposta >= 9"]
    assert op1001.answered == 1 and op1006.invites == []


async def test_given_only_enterprise_operator_when_overflow_fires_then_enterprise_takes_the_call(
    rig: Controller, records: Records, operators: Operators
) -> None:
    await operators.online("op1006")  # general + enterprise, bancoposta 6: only by the overflow
    number = caller_id()
    result = await caller(rig, "7102", number).pause(9000).hangup().run()
    assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert record.operator == "op1006", record
    assert record.queued_at is not None and record.answered_at is not None
    waited = (record.answered_at - record.queued_at).total_seconds()
    assert 6.0 <= waited < 8.5, f"overflow fires at 6 s, answered after {waited:.2f} s"
    assert steps(record, "escalate")[-1] == "after 6s overflow to enterprise"
    assert "overflow to tier enterprise" in (record.routing_reason or ""), record.routing_reason


async def test_given_operator_not_answering_when_ring_times_out_then_not_ready_and_call_goes_to_next(
    rig: Controller, records: Records, operators: Operators
) -> None:
    deaf = await operators.online("op1002", "no_answer")
    number = caller_id()
    dialling = caller(rig, "7101", number).pause(9000).hangup()
    task = dialling.run()

    running = asyncio.ensure_future(task)
    await deaf.wait_invites(1, timeout=10)
    agent = await rig.wait_agent("op1002", "not_ready", "ring_no_answer", timeout=10)
    assert agent["call_id"] is None
    await deaf.wait_count("CANCELLED", 1)
    # a second operator arrives: the waiting call goes to them at once
    await operators.online("op1003")
    result = await running
    assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert record.operator == "op1003", record
    assert any(note.startswith("op1002: no answer") or "op1002" in note for note in steps(record, "no_answer"))
    assert len(deaf.invites) == 1, "a not-ready operator is never rung again"


async def test_given_operator_ringing_when_caller_hangs_up_then_ringing_cancelled_and_operator_ready(
    rig: Controller, records: Records, operators: Operators
) -> None:
    phone = await operators.online("op1002", "no_answer")
    number = caller_id()
    result = await caller(rig, "7101", number).pause(1800).hangup().run()
    assert result.answered, result.explain()
    await phone.wait_count("CANCELLED", 1)
    record = await records.finished_for(number)
    assert record.outcome == "abandoned_queue"
    assert record.operator is None
    agent = await rig.wait_agent("op1002", "ready")
    assert agent["reason"] is None


async def test_given_softphone_vanishing_while_ringing_then_unregistered_and_never_offered_again(
    rig: Controller, records: Records, operators: Operators
) -> None:
    phone = await operators.online("op1002", "no_answer")
    number = caller_id()

    running = asyncio.ensure_future(caller(rig, "7101", number).pause(6000).hangup().run())
    await phone.wait_invites(1)
    await phone.unregister()
    await rig.wait_agent("op1002", "not_ready", "unregistered", timeout=10)
    result = await running
    assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert record.outcome == "abandoned_queue" and record.operator is None
    assert len(phone.invites) == 1
    # back online: the softphone's registration alone makes them ready again
    await phone.register()
    await rig.wait_agent("op1002", "ready", timeout=10)


async def test_given_operators_when_calls_ring_them_then_their_legs_events_reach_the_controller_once(
    rig: Controller, operators: Operators
) -> None:
    """The operators' endpoints are watched by an app of their own, filtered to registration
    changes: the calls' app, whose one event queue in Asterisk every call shares, receives each
    operator leg's events once, and only the event types the controller models."""
    phone = await operators.online("op1002")
    result = await caller(rig, "7101", caller_id()).pause(2000).hangup().run()
    assert result.answered, result.explain()
    await phone.wait_count("ANSWERED", 1, timeout=10)
    settings = rig.settings
    calls_app = await asyncio.to_thread(pbx.ari_get, settings, f"/applications/{settings.ari_app}")
    endpoints_app = await asyncio.to_thread(pbx.ari_get, settings, f"/applications/{settings.ari_endpoints_app}")
    assert calls_app["endpoint_ids"] == [], calls_app
    assert "PJSIP/op1002" in endpoints_app["endpoint_ids"], endpoints_app
    assert {e["type"] for e in calls_app["events_allowed"]} == MODELLED_EVENTS
    assert {e["type"] for e in endpoints_app["events_allowed"]} == {"EndpointStateChange", "ApplicationReplaced"}
    health = await rig.health()
    assert health is not None and health["ari_events"] > 0
    # what came, by type, on the one socket of both apps: only what their filters allow
    by_type = health["ari_events_by_type"]
    assert sum(by_type.values()) == health["ari_events"] and by_type.get("StasisStart", 0) > 0, by_type
    assert set(by_type) <= MODELLED_EVENTS | {"EndpointStateChange", "ApplicationReplaced"}, by_type
    # Asterisk applied the endpoints app's filter: no leg event came through it to be dropped
    assert health["endpoint_events_ignored"] == 0, health


async def test_given_conversation_when_operator_hangs_up_then_caller_released_and_operator_wraps_up(
    rig: Controller, records: Records, operators: Operators
) -> None:
    phone = await operators.online("op1002", talk_ms=1500)
    number = caller_id()
    result = await caller(rig, "7101", number).expect_bye(15_000).run()
    assert result.answered and result.remote_bye, result.explain()
    assert phone.local_byes == 1, phone.explain()
    record = await records.finished_for(number)
    assert record.outcome == "answered" and record.operator == "op1002"
    assert "op1002 hung up" in steps(record, "end")
    await rig.wait_agent("op1002", "wrap_up", timeout=5)
    await rig.wait_agent("op1002", "ready", timeout=10)


async def test_given_closed_queue_or_nobody_logged_in_then_unavailable_treatment_with_reason(
    rig: Controller, records: Records
) -> None:
    for dialled, why in (("7103", "closed"), ("7104", "unavailable")):
        number = caller_id()
        result = await caller(rig, dialled, number).expect_bye(15_000).run()
        assert result.answered and result.remote_bye, result.explain()
        record = await records.finished_for(number)
        assert record.outcome == "operators_unavailable"
        assert why in steps(record, "queue"), record.ivr_path


async def test_given_talking_when_operator_transfers_to_enterprise_then_enterprise_operator_gets_caller(
    rig: Controller, records: Records, operators: Operators
) -> None:
    first = await operators.online("op1002")
    number = caller_id()

    running = asyncio.ensure_future(caller(rig, "7101", number).pause(7000).hangup().run())
    await first.wait_count("ANSWERED", 1)
    agent = await rig.wait_agent("op1002", "on_call")
    second = await operators.online("op1006")  # enterprise
    status, body = await rig.api("POST", f"/api/calls/{agent['call_id']}/transfer", {"queue": "tq_enterprise"})
    assert status == 202, body
    await second.wait_count("ANSWERED", 1)
    await rig.wait_agent("op1002", "ready", timeout=10)  # wrap-up after the transfer
    result = await running
    assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert (record.operator, record.queue, record.tier) == ("op1006", "tq_enterprise", "enterprise")
    assert steps(record, "transfer") == ["op1002 -> queue tq_enterprise"]


async def test_given_api_input_when_wrong_then_clear_errors(rig: Controller) -> None:
    assert (await rig.api("POST", "/api/agents/op1002/ready", token="wrong"))[0] == 401
    assert (await rig.api("POST", "/api/agents/nobody/login"))[0] == 404
    assert (await rig.api("POST", "/api/agents/op1002/fly"))[0] == 404
    status, body = await rig.api("POST", "/api/agents/op1002/pause", {"reason": "nap"})
    assert status == 400 and "reason must be one of" in body["error"]
    status, body = await rig.api("POST", "/api/agents/op1002/ready")
    assert status == 409 and "logged_out" in body["error"], body
    status, body = await rig.api("POST", "/api/calls/nope/transfer", {"queue": "tq_basic"})
    assert status == 404
    status, body = await rig.api("POST", "/api/calls/nope/transfer", {"queue": "tq_basic", "operator": "op1001"})
    assert status == 400


async def test_given_operator_when_pausing_with_reason_then_not_offered_until_ready(
    rig: Controller, records: Records, operators: Operators
) -> None:
    phone = await operators.online("op1002")
    status, body = await rig.api("POST", "/api/agents/op1002/pause", {"reason": "lunch"})
    assert status == 200 and (body["state"], body["reason"]) == ("not_ready", "lunch")
    number = caller_id()

    running = asyncio.ensure_future(caller(rig, "7101", number).pause(5000).hangup().run())

    async def waiting() -> bool:
        _, queues = await rig.api("GET", "/api/queues")
        return any(q["name"] == "tq_basic" and q["waiting"] for q in queues)

    await wait_for(waiting, timeout=10, what="call waiting in tq_basic")
    assert phone.invites == []
    status, body = await rig.api("POST", "/api/agents/op1002/ready")
    assert status == 200
    await phone.wait_invites(1)
    result = await running
    assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert record.operator == "op1002"
    assert steps(record, "announce")[0].startswith("position 1, about"), record.ivr_path


async def test_given_operator_dialling_feature_codes_then_login_pause_ready_logout_take_effect(
    rig: Controller, operators: Operators
) -> None:
    await operators.online("op1003", login=False)
    password = ensure_operator_passwords(rig.settings.state_dir, ["op1003"])["op1003"].get_secret_value()
    steps_ = [
        ("*41", "ready", None),
        ("*45", "not_ready", "lunch"),
        ("*43", "ready", None),
        ("*42", "logged_out", None),
    ]
    for code, state, reason in steps_:
        dial = Call(code, caller="op1003", port=rig.settings.sip_port, auth=("op1003", password))
        result = await dial.expect_bye(15_000).run()
        assert result.answered and result.remote_bye, result.explain()
        await rig.wait_agent("op1003", state, reason, timeout=5)
    # an unknown code, or a code from a caller who is not an operator, changes nothing
    dial = Call("*49", caller="op1003", port=rig.settings.sip_port, auth=("op1003", password))
    result = await dial.expect_bye(15_000).run()
    assert result.answered and result.remote_bye, result.explain()
    assert (await rig.agent("op1003"))["state"] == "logged_out"
    wrong = await Call("*41", caller="op1003", port=rig.settings.sip_port, auth=("op1003", "wrong-password")).run()
    assert not wrong.answered, wrong.explain()
    assert (await rig.agent("op1003"))["state"] == "logged_out"


async def test_given_talking_when_operator_blind_transfers_to_a_colleague_then_that_colleague_is_rung(
    rig: Controller, records: Records, operators: Operators
) -> None:
    first = await operators.online("op1002")
    number = caller_id()
    running = asyncio.ensure_future(caller(rig, "7101", number).pause(7000).hangup().run())
    await first.wait_count("ANSWERED", 1)
    agent = await rig.wait_agent("op1002", "on_call")
    colleague = await operators.online("op1003")
    other = await operators.online("op1001")  # idle longer than op1003: a queue transfer would pick them
    status, body = await rig.api("POST", f"/api/calls/{agent['call_id']}/transfer", {"operator": "op1003"})
    assert status == 202, body
    await colleague.wait_count("ANSWERED", 1)
    result = await running
    assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert record.operator == "op1003" and record.queue == "tq_basic"
    assert steps(record, "transfer") == ["op1002 -> operator op1003"]
    assert (record.routing_reason or "").startswith("blind transfer by op1002"), record.routing_reason
    assert other.invites == []


async def test_given_customer_menus_when_caller_picks_bancoposta_or_operator_then_right_tier_answers(
    rig: Controller, records: Records, operators: Operators
) -> None:
    """Through 803160's real menus: 3 products -> 2 BancoPosta (specialist), 0 operator (general)."""
    specialist = await operators.online("op1004")  # specialist only, bancoposta 5: not enough at first
    best = await operators.online("op1005")  # specialist + enterprise, bancoposta 10
    general = await operators.online("op1002")  # general only
    bancoposta, operator = caller_id(), caller_id()
    walk = caller(rig, "803160", bancoposta).pause(800).dtmf("132", mode="info", gap_ms=700)
    result = await walk.pause(5000).hangup().run()
    assert result.answered, result.explain()
    record = await records.finished_for(bancoposta)
    assert (record.queue, record.tier, record.operator) == ("bancoposta", "specialist", "op1005"), record
    assert "bancoposta 10 >= 7" in (record.routing_reason or "")
    walk = caller(rig, "803160", operator).pause(800).dtmf("10", mode="info", gap_ms=700)
    result = await walk.pause(5000).hangup().run()
    assert result.answered, result.explain()
    record = await records.finished_for(operator)
    assert (record.queue, record.tier, record.operator) == ("general", "general", "op1002"), record
    assert specialist.invites == [] and best.answered == 1 and general.answered == 1
