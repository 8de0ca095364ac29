"""The controller survives losing Asterisk's websocket and its own restart; callers never hear dead air.

These tests stop and start parts of the rig, so they run after the others (file order)."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.e2e.rig import Controller, Operators, Records, inputs, nodes_visited, wait_for
from tests.e2e.test_acd import caller as acd_caller
from tests.e2e.test_ivr_calls import call, caller_id
from unico import pbx


async def test_given_controller_running_when_asterisk_restarts_then_it_reconnects_and_next_call_works(
    rig: Controller, records: Records
) -> None:
    before = await rig.health()
    assert before is not None
    await asyncio.to_thread(pbx.stop, rig.settings)

    async def noticed() -> bool:
        health = await rig.health()
        return bool(health and not health["ready"])

    await wait_for(noticed, timeout=20, what="controller not ready while Asterisk is down")
    await asyncio.to_thread(pbx.start, rig.settings)

    async def back() -> bool:
        health = await rig.health()
        return bool(health and health["ready"] and health["reconnects"] > before["reconnects"])

    await wait_for(back, timeout=40, what="controller reconnected to the restarted Asterisk")
    caller = caller_id()
    result = await call(rig, "7001", caller).pause(500).dtmf("1").expect_bye(15_000).run()
    assert result.remote_bye, result.explain()
    assert (await records.finished_for(caller)).outcome == "contained"


async def test_given_controller_stopped_when_803160_called_then_dialplan_fallback_answers_not_silence(
    rig: Controller, records: Records
) -> None:
    assert rig.stop() == 0, rig.log_text()[-2000:]
    log_before = pbx.cli(rig.settings, "core show uptime")  # the instance is up
    assert "System uptime" in log_before
    caller = caller_id()
    result = await call(rig, "803160", caller).expect_bye(30_000).run()
    # answered by Asterisk's own fallback (apology prompt), then hung up by Asterisk
    assert result.answered and result.remote_bye, result.explain()
    assert result.elapsed > 1.0  # a prompt was played, not an instant hang-up
    assert await records.all_for(caller) == []  # the controller never saw it
    rig.start()
    await rig.wait_ready()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
async def test_given_call_in_menu_when_controller_killed_or_stopped_and_restarted_then_call_is_adopted_and_served(
    rig: Controller, records: Records, sig: signal.Signals
) -> None:
    caller = caller_id()
    # t_wait gives 20 s to choose; the caller presses 1 after 9 s, by when the new process is up
    waiting = asyncio.create_task(call(rig, "7004", caller).pause(9000).dtmf("1").expect_bye(20_000).run())

    async def in_call() -> bool:
        health = await rig.health()
        return bool(health and health["calls"] == 1)

    await wait_for(in_call, timeout=10, what="call in the controller")
    rig.signal(sig)
    assert rig.process is not None
    await asyncio.to_thread(rig.process.wait, 10)
    await asyncio.sleep(1.0)  # the caller is in Stasis with nobody listening
    rig.start()
    health = await rig.wait_ready()
    assert health is not None
    result = await waiting
    assert result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    # the record opened by the killed process is continued by the new one: one contact, closed
    assert len(await records.all_for(caller)) == 1
    assert inputs(record) == [("t_wait", "1", "choice")]
    assert nodes_visited(record)[-1] == "t_done"


async def test_given_calls_waiting_and_talking_when_asterisk_restarts_then_records_closed_and_operators_resync(
    rig: Controller, records: Records, operators: Operators
) -> None:
    talking_op = await operators.online("op2001", talk_ms=60_000)
    talker = caller_id()
    talk = asyncio.ensure_future(acd_caller(rig, "7107", talker).expect_bye(60_000).run())
    await talking_op.wait_count("ANSWERED", 1, timeout=15)
    await operators.online("op2002")
    status, body = await rig.api("POST", "/api/agents/op2002/pause", {"reason": "break"})
    assert status == 200, body
    waiter = caller_id()
    wait = asyncio.ensure_future(acd_caller(rig, "7107", waiter).expect_bye(60_000).run())

    async def waiting() -> bool:
        status, body = await rig.api("GET", "/api/queues")
        return status == 200 and any(q["name"] == "tq_recover" and q["waiting"] for q in body)

    await wait_for(waiting, timeout=15, what="a caller waiting")
    before = await rig.health()
    assert before is not None
    await asyncio.to_thread(pbx.stop, rig.settings)  # every call is hung up
    talked, waited = await asyncio.gather(talk, wait)
    assert talked.remote_bye and waited.remote_bye, (talked.explain(), waited.explain())
    await asyncio.to_thread(pbx.start, rig.settings)

    async def back() -> bool:
        health = await rig.health()
        return bool(health and health["ready"] and health["reconnects"] > before["reconnects"])

    await wait_for(back, timeout=40, what="controller reconnected to the restarted Asterisk")
    talk_record = await records.finished_for(talker)
    assert (talk_record.outcome, talk_record.operator) == ("answered", "op2001")
    assert talk_record.talk_ended_at is not None
    assert (await records.finished_for(waiter)).outcome == "abandoned_queue"

    # operators: nobody left on a call; each one's registration follows its endpoint in Asterisk
    # (offline while the restarted Asterisk reloads the contacts, then online again)
    async def in_step(op: str, state: str) -> bool:
        listed = await asyncio.to_thread(pbx.ari_get, rig.settings, "/endpoints/PJSIP")
        online = any(e["resource"] == op and e["state"] == "online" for e in listed)
        agent = await rig.agent(op)
        return agent["state"] == state and agent["call_id"] is None and online and agent["registered"]

    await wait_for(lambda: in_step("op2001", "ready"), timeout=30, what="op2001 ready and registered again")
    await wait_for(lambda: in_step("op2002", "not_ready"), timeout=30, what="op2002 still on a break, registered")
    assert (await rig.agent("op2002"))["reason"] == "break"
    nxt = caller_id()
    result = await acd_caller(rig, "7107", nxt).pause(1_000).hangup().run()
    assert result.answered, result.explain()
    assert (await records.finished_for(nxt)).operator == "op2001"
