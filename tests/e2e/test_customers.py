"""The customer database on real calls: a complaint recorded through 803160's menus becomes a
ticket whose number the caller hears; a known caller is recognised, greeted in their language and
served before guests by their segment's priority; a post-call survey lands on the contact."""

from __future__ import annotations

import asyncio

from contacts import ComplaintStore, CustomerIn, CustomerStore
from tests.e2e.rig import Controller, Operators, Records, unique_caller, wait_for
from tests.e2e.test_acd import caller, steps
from tests.e2e.test_ivr_calls import audio_seconds, recording_file
from tests.sipp import Call


def mobile() -> str:
    """An Italian mobile number unique to this run (customers are matched by number)."""
    return unique_caller("34")


async def test_given_caller_records_a_complaint_then_ticket_with_audio_and_the_number_they_heard(
    rig: Controller, records: Records
) -> None:
    number = mobile()
    # 1 skips the welcome, 2 complaints, 2 payments and cards; then the message, '#' to end it
    call = Call("803160", caller=number, port=rig.settings.sip_port).pause(800)
    # The consent notice and the instructions take ~17 s; 14 s of speech from ~12 s on spans the
    # beep, whatever the exact prompt lengths, then '#' ends the message.
    call.dtmf("122", mode="info", gap_ms=700).pause(9000).play_audio().play_audio().dtmf("#")
    call.expect_bye(40_000)
    result = await call.run(max_seconds=90)
    assert result.answered and result.remote_bye, result.explain()
    record = await records.finished_for(number, timeout=30)
    assert record.outcome == "complaint" and record.recording, record
    heard = record.data.get("complaint_number")
    assert heard and heard.isdigit() and len(heard) == 9, record.data
    complaints = ComplaintStore(records.store.sessions)
    ticket = await complaints.get(heard)
    assert ticket is not None, f"no complaint {heard}"
    assert (ticket.category, ticket.status, ticket.channel) == ("payments", "received", "ivr")
    assert ticket.contact_id == record.id and ticket.recording == record.recording
    assert audio_seconds(recording_file(rig, record.recording)) > 2.0
    assert ticket.due_on > ticket.received_at.date()
    said = [s for s in record.ivr_path if s["node"] in ("complaint_number", "complaint_number_repeat")]
    assert len(said) == 2, "the number is read back twice"


async def test_given_known_vip_caller_then_recognised_in_their_language_and_served_before_a_guest(
    rig: Controller, records: Records, operators: Operators
) -> None:
    vip, guest = mobile(), mobile()
    customers = CustomerStore(records.store.sessions)
    customer, _ = await customers.upsert(
        CustomerIn(phones=(vip,), name="Anna Verdi", segment="VIP", language="en", consents={"recording": True})
    )
    phone = await operators.online("op1002", login=False)
    status, _ = await rig.api("POST", "/api/agents/op1002/login")
    assert status == 200
    assert (await rig.api("POST", "/api/agents/op1002/pause", {"reason": "break"}))[0] == 200
    guest_call = asyncio.ensure_future(caller(rig, "7101", guest).pause(9000).hangup().run())
    await asyncio.sleep(2.5)  # the guest waits first
    vip_call = asyncio.ensure_future(caller(rig, "7101", vip).pause(6000).hangup().run())

    async def both_waiting() -> bool:
        _, queues = await rig.api("GET", "/api/queues")
        line = next(q for q in queues if q["name"] == "tq_basic")["waiting"]
        return len(line) == 2

    await wait_for(both_waiting, timeout=10, what="guest and VIP waiting")
    assert (await rig.api("POST", "/api/agents/op1002/ready"))[0] == 200
    await phone.wait_invites(1)
    for result in await asyncio.gather(guest_call, vip_call):
        assert result.answered, result.explain()
    vip_record = await records.finished_for(vip)
    guest_record = await records.finished_for(guest)
    assert vip_record.customer_id == customer.id and guest_record.customer_id is None
    assert vip_record.language == "en" and guest_record.language == "it"
    assert vip_record.operator == "op1002", "the VIP (priority 10) goes first although the guest waited longer"
    assert "entered tq_basic (tier general, priority 10)" in steps(vip_record, "queue")
    assert guest_record.operator is None or guest_record.answered_at > vip_record.answered_at  # type: ignore[operator]
    log = rig.log_text()
    assert vip not in log and guest not in log, "caller numbers never reach the logs, even at DEBUG"


async def test_given_operator_hangs_up_first_then_caller_answers_the_survey_and_it_lands_on_the_contact(
    rig: Controller, records: Records, operators: Operators
) -> None:
    await operators.online("op1002", talk_ms=1500)
    number = mobile()
    # 1 skips the welcome, 0 an operator (general queue); after the operator's goodbye: 4, then 1
    call = caller(rig, "803160", number).pause(800).dtmf("10", mode="info", gap_ms=700).pause(9000)
    call.dtmf("4", mode="info").pause(2500).dtmf("1", mode="info").expect_bye(20_000)
    result = await call.run(max_seconds=60)
    assert result.answered and result.remote_bye, result.explain()
    record = await records.finished_for(number)
    assert record.outcome == "answered" and record.operator == "op1002"
    survey = await records.store.survey(record.id)
    assert survey is not None and (survey.score, survey.solved) == (4, True), survey
    assert "survey_thanks" in [s["node"] for s in record.ivr_path]
