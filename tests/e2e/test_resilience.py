"""The controller survives losing Asterisk's websocket and its own restart; callers never hear dead air.

These tests stop and start parts of the rig, so they run after the others (file order)."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.e2e.rig import Controller, Records, inputs, nodes_visited, wait_for
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
