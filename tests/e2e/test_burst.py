"""Ten times the nominal arrival rate for a minute (issue 6, row 8).

The rig's nominal rate is one call a second; the burst is ten a second for sixty seconds, to a
short queue (five places, two operators) through a controller whose dialplan allows 12 calls at
once (``settings.max_calls``). Beyond that, callers hear the overload node ("call again later");
beyond the queue's length, its "please call later" treatment. Nothing crashes, every call ends
with one closed record, nothing leaks, and the event loop never stalls long enough for Asterisk to
drop the websocket (the controller never reconnects).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contacts.models import Contact
from tests.e2e.rig import Controller, Operators, Records, unique_caller
from tests.e2e.test_failover import health_of, second, until_health
from tests.sipp import Call, free_media_port, free_udp_port

RATE = 10  # calls per second: ten times the rig's nominal one
SECONDS = 60
MAX_CALLS = 12


@pytest.fixture
async def burst_controller(rig: Controller, tmp_path: Path) -> AsyncIterator[Controller]:
    config = tmp_path / "config"
    shutil.copytree(rig.config_dir, config)
    settings = config / "dialplan" / "settings.yaml"
    text = settings.read_text()
    assert "max_calls: 250" in text, "dialplan/settings.yaml changed: update the burst test"
    settings.write_text(text.replace("max_calls: 250", f"max_calls: {MAX_CALLS}"))
    process = second(rig, "burst", 7, ari_app=f"{rig.settings.ari_app}-b")
    process.config_dir = config
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        assert process.stop() == 0, process.log_text()[-3000:]


async def run_burst(rig: Controller, folder: Path, number: str) -> dict[str, int]:
    """sipp at RATE calls/s for SECONDS: each caller waits up to 10 s, then hangs up."""
    folder.mkdir(parents=True, exist_ok=True)
    call = Call("87108", caller=number, port=rig.settings.sip_port, answer_timeout_ms=15_000).pause(10_000).hangup()
    scenario = folder / "burst.xml"
    scenario.write_text(call.scenario_xml(folder))
    total = RATE * SECONDS
    process = await asyncio.create_subprocess_exec(
        "sipp",
        f"127.0.0.1:{rig.settings.sip_port}",
        "-sf",
        str(scenario),
        "-r",
        str(RATE),
        "-m",
        str(total),
        "-l",
        "400",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_udp_port("127.0.0.1")),
        "-mp",
        str(free_media_port()),
        "-nostdin",
        "-timeout",
        f"{SECONDS + 60}s",
        "-trace_logs",
        "-log_file",
        str(folder / "events.log"),
        "-trace_err",
        "-error_file",
        str(folder / "errors.log"),
        cwd=folder,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    events = Counter(
        line.split("]", 1)[-1].strip() for line in (folder / "events.log").read_text().splitlines() if line.strip()
    )
    events["sipp_exit"] = process.returncode or 0
    if err:
        (folder / "stderr.txt").write_bytes(err)
    return dict(events)


async def test_given_ten_times_the_nominal_rate_for_a_minute_then_admission_control_and_nothing_lost_or_stalled(
    rig: Controller,
    records: Records,
    operators: Operators,
    burst_controller: Controller,
    figure: Callable[[str], None],
) -> None:
    for op in ("op2001", "op2002"):
        await operators.online(op, talk_ms=1_500)
    before = await health_of(burst_controller)
    number = unique_caller("35")
    peak: dict[str, Any] = {"calls": 0}

    async def watch() -> None:
        while True:
            health = await burst_controller.health()
            if health is not None:
                peak["calls"] = max(peak["calls"], health["calls_admitted"])
                peak["ready_lost"] = peak.get("ready_lost", False) or not health["ready"]
            await asyncio.sleep(0.5)

    watcher = asyncio.ensure_future(watch())
    started = time.monotonic()
    try:
        events = await run_burst(rig, rig.log_path.parent / "sipp" / f"burst-{number}", number)
    finally:
        watcher.cancel()
    took = time.monotonic() - started
    after = await until_health(
        burst_controller,
        lambda h: h["calls"] == 0 and h["record_writes"]["pending"] == 0,
        "every burst call over and its record written",
        timeout=60,
    )
    total = RATE * SECONDS

    # every caller was answered (by the IVR, the overload node or the queue) and hung up cleanly
    assert events.get("ANSWERED", 0) == total, events
    assert events.get("REMOTE_BYE", 0) + events.get("LOCAL_BYE_OK", 0) == total, events
    # admission control: never more than max_calls in the controller, the rest heard "call later"
    assert peak["calls"] <= MAX_CALLS, peak
    assert after["calls_overloaded"] - before["calls_overloaded"] > 0, after
    # the event loop never stalled long enough to lose the websocket: no reconnect, always ready
    assert after["reconnects"] == before["reconnects"] and not peak.get("ready_lost"), (after, peak)
    assert after["handler_errors"] == 0 and after["command_errors"] == 0, burst_controller.log_text()[-3000:]
    assert after["tasks"] <= before["tasks"] + 2, "no task leaked"

    # one closed record per call, each with a terminal outcome
    async with records.store.sessions() as session:
        rows = (
            await session.execute(
                select(Contact.outcome, func.count()).where(Contact.caller == number).group_by(Contact.outcome)
            )
        ).all()
        still_open = await session.scalar(
            select(func.count()).where(Contact.caller == number, Contact.ended_at.is_(None))
        )
    outcomes = {str(outcome): int(n) for outcome, n in rows}
    assert sum(outcomes.values()) == total and still_open == 0, outcomes
    assert outcomes.get("overload", 0) == after["calls_overloaded"] - before["calls_overloaded"], outcomes
    assert outcomes.get("answered", 0) > 0 and outcomes.get("operators_unavailable", 0) > 0, outcomes
    lag = after["loop_lag"]
    assert isinstance(after["python_blocks"], int) and after["python_blocks"] > 0, "the memory figure /health shows"
    figure(
        f"{total} calls at {RATE}/s in {took:.0f} s: {outcomes}; peak {peak['calls']} calls in the"
        f" controller (max {MAX_CALLS}); event loop lag max {lag['max_ms']} ms, {lag['stalls']} over"
        f" {lag['stall_ms']:.0f} ms; {after['python_blocks']} Python memory blocks after"
    )
