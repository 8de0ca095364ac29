"""The supervisors' panel of the wallboard in headless Chromium against the real stack: sipp
callers, softphones for the operators and for supervisor sup3001, real Asterisk, Redis and the
controller serving the page.

The supervisor acts only through the page (the buttons call the REST API with their token); what
happened is read independently: the lines and the operators' states from Redis, the snoop from
ARI (``GET /channels``, ``GET /bridges``), the move on the contact record. Each test saves a
screenshot to tests/artifacts/console/supervisor-*.png and ends with the rig's leak check.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from acd.live import LiveState
from acd.routing import WaitingCall
from contacts.users import UserStore
from tests.browser import chromium, sign_in
from tests.e2e.rig import Controller, Operators, Records, wait_for
from tests.e2e.test_acd import caller, steps
from tests.e2e.test_console import base_url, mobile
from tests.e2e.test_supervision import SUPERVISOR, layout
from tests.softphone import Softphone
from unico.pbx.operators import ensure_operator_passwords


async def new_supervisor(records: Records) -> tuple[str, str]:
    """A supervisor user of the rig's database: (name, token)."""
    name = f"sala-{os.getpid()}-{mobile()[-3:]}"
    _, token = await UserStore(records.store.sessions).create(name, "supervisor", by="e2e")
    return name, token


@pytest.fixture
async def live(rig: Controller) -> AsyncIterator[LiveState]:
    redis = aioredis.Redis.from_url(rig.settings.redis_url, decode_responses=True)
    try:
        yield LiveState(redis, rig.settings.redis_prefix)
    finally:
        await redis.aclose()


@pytest.fixture
async def supervisor_phone(rig: Controller) -> AsyncIterator[Softphone]:
    """sup3001's softphone, registered and answering at once (it hangs up only when told)."""
    password = ensure_operator_passwords(rig.settings.state_dir, [SUPERVISOR])[SUPERVISOR]
    phone = Softphone(SUPERVISOR, password, port=rig.settings.sip_port)
    try:
        await phone.register()
        await phone.start("answer")
        yield phone
    finally:
        await phone.close()


async def test_given_a_caller_waiting_in_tq_basic_when_the_supervisor_moves_them_on_the_page_then_in_tq_enterprise(
    rig: Controller, records: Records, operators: Operators, live: LiveState
) -> None:
    name, token = await new_supervisor(records)
    # op1006 (general and enterprise) is on a break: both queues are staffed, nobody is ready, so
    # the caller waits until they hang up (with nobody logged in the queue would turn them away)
    await operators.online("op1006")
    assert (await rig.api("POST", "/api/agents/op1006/pause", {"reason": "break"}))[0] == 200
    number = mobile()
    running = asyncio.ensure_future(caller(rig, "7101", number).pause(15_000).hangup().run())

    async def in_line(queue: str) -> WaitingCall | None:
        line = await live.waiting(queue)
        return line[0] if line else None

    call: WaitingCall = await wait_for(lambda: in_line("tq_basic"), what="a caller waiting in tq_basic")
    async with chromium() as browser:
        page = await browser.page(f"{base_url(rig)}/wallboard")
        await sign_in(page, token)
        row = f'#floor-waiting tr[data-call="{call.call_id}"]'
        await page.wait_for_selector(f'{row}[data-queue="tq_basic"]')
        assert "***" in (await page.text_content(f"{row} td:nth-child(2)") or ""), "the caller's number is masked"
        await page.select_option(f"{row} select[data-move]", "tq_enterprise")
        await browser.screenshot(page, "supervisor-waiting")
        await page.click(f"{row} [data-move-go]")

        moved: WaitingCall = await wait_for(lambda: in_line("tq_enterprise"), what="the caller in tq_enterprise")
        assert moved.call_id == call.call_id and moved.enqueued_at == call.enqueued_at, "keeps their place in time"
        assert await live.waiting("tq_basic") == []
        await page.wait_for_selector(f'{row}[data-queue="tq_enterprise"]')

        async def recorded() -> bool:  # the record's write lands a moment later (linger)
            contact = await records.store.get(call.call_id)
            return contact is not None and contact.queue == "tq_enterprise"

        await wait_for(recorded, what="the record's queue moved to tq_enterprise")
        await browser.screenshot(page, "supervisor-moved")

    result = await running
    assert result.answered and result.local_bye, result.explain()
    record = await records.finished_for(number)
    assert (record.queue, record.outcome) == ("tq_enterprise", "abandoned_queue")
    assert steps(record, "move") == [f"tq_basic -> tq_enterprise by {name}"]


async def test_given_an_operator_talking_when_the_supervisor_clicks_listen_then_snooped_and_all_clean_after(
    rig: Controller, records: Records, operators: Operators, supervisor_phone: Softphone
) -> None:
    _, token = await new_supervisor(records)
    operator = await operators.online("op1002")
    number = mobile()
    # the caller speaks for 28 s, then hangs up. The speech matters: a Snoop channel on a leg
    # without any media outlives its DELETE until the conversation ends (seen on Asterisk 22)
    sipp = caller(rig, "7101", number)
    for _ in range(4):
        sipp = sipp.play_audio()
    running = asyncio.ensure_future(sipp.hangup().run())
    await operator.wait_count("ANSWERED", 1)
    call_id = str((await rig.wait_agent("op1002", "on_call"))["call_id"])

    # the browser logs the refused request below (400) as a console error: expected here
    async with chromium(allow_errors=("status of 400",)) as browser:
        page = await browser.page(f"{base_url(rig)}/wallboard")
        await sign_in(page, token)
        row = f'#floor-talking tr[data-call="{call_id}"]'
        await page.wait_for_selector(f'{row}[data-operator="op1002"][data-queue="tq_basic"]')

        # a phone that is no supervisor's: the API's refusal is shown, nothing rings
        await page.fill("#sup-phone", "sup9999")
        await page.click(f'{row} [data-monitor="listen"]')
        await page.wait_for_selector("#floor-error:has-text(\"unknown supervisor 'sup9999'\")")
        assert supervisor_phone.answered == 0

        await page.fill("#sup-phone", SUPERVISOR)
        await page.click(f'{row} [data-monitor="listen"]')
        await supervisor_phone.wait_count("ANSWERED", 1)

        async def snooped() -> Any:
            now = await layout(rig, call_id)
            return now if len(now.snoops) == 1 and len(now.supervisor_legs) == 1 else None

        now = await wait_for(snooped, what="a Snoop channel and the supervisor's leg in ARI")
        (snoop,) = now.snoops
        assert snoop["name"].startswith("Snoop/"), now
        assert len(now.conversation) == 2, "the conversation's bridge is untouched"
        await page.wait_for_selector(f'#toast:has-text("squilla il telefono {SUPERVISOR}")', state="attached")
        assert await page.text_content("#floor-error") == ""
        assert await page.evaluate("sessionStorage.getItem('unico.console.supervisor-phone')") == SUPERVISOR
        await browser.screenshot(page, "supervisor-listen")

        # the supervisor hangs up: snoop gone, the conversation goes on
        await supervisor_phone.stop()

        async def left() -> Any:
            after = await layout(rig, call_id)
            return after if not after.snoops and not after.supervisor_legs and len(after.conversation) == 2 else None

        await wait_for(left, timeout=10, what="snoop and supervisor's leg gone, conversation intact")
        assert (await rig.agent("op1002"))["state"] == "on_call"

    result = await running  # the caller hangs up
    assert result.answered and result.local_bye, result.explain()
    record = await records.finished_for(number)
    monitoring = steps(record, "monitor")
    assert monitoring == [f"{SUPERVISOR} listen", f"{SUPERVISOR} ended: hung up"], record.ivr_path


async def test_given_a_ready_operator_when_the_supervisor_forces_a_pause_from_the_page_then_redis_says_not_ready(
    rig: Controller, records: Records, operators: Operators, live: LiveState
) -> None:
    _, token = await new_supervisor(records)
    await operators.online("op2001")
    async with chromium() as browser:
        page = await browser.page(f"{base_url(rig)}/wallboard")
        await sign_in(page, token)
        row = '#floor-operators tr[data-operator="op2001"]'
        await page.wait_for_selector(f'{row}[data-state="ready"]')
        assert await page.is_disabled(f'{row} [data-force="ready"]'), "already ready"

        await page.click(f'{row} [data-force="not_ready"]')

        async def paused() -> bool:
            agent = await live.get_agent("op2001")
            return agent is not None and agent.state.value == "not_ready" and agent.reason is not None

        await wait_for(paused, what="op2001 not_ready in Redis")
        agent = await live.get_agent("op2001")
        assert agent is not None and agent.reason is not None and agent.reason.value == "supervisor"
        await page.wait_for_selector(f'{row}[data-state="not_ready"][data-reason="supervisor"]')
        await browser.screenshot(page, "supervisor-operators")

        await page.click(f'{row} [data-force="ready"]')
        await page.wait_for_selector(f'{row}[data-state="ready"]')
        ready = await live.get_agent("op2001")
        assert ready is not None and ready.state.value == "ready"
