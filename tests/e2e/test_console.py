"""The console in headless Chromium against the real stack: sipp callers and softphones, real
Asterisk, Redis and the controller process serving the pages and the live socket.

The wallboard's numbers are compared with what they claim to show, read independently: the waiting
line and the operators' states from Redis, today's answered and abandoned calls from the contact
records. The operator page is driven like an operator would: sign in with their token, log in,
pause, get ready, see the caller's customer card pop up, and code the call after it.

Each test saves a screenshot to tests/artifacts/console/ and ends with the rig's leak check.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from datetime import datetime
from datetime import time as day_time
from pathlib import Path
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from playwright.async_api import Page

from acd.live import LiveState
from contacts import CustomerIn, CustomerStore
from contacts.users import UserStore
from ivr.config import IvrConfig, load_config
from tests.browser import chromium, sign_in, value, wait_for_value
from tests.e2e.rig import Controller, Operators, Records, unique_caller, wait_for
from tests.e2e.test_acd import caller, steps
from unico.console.snapshot import OPERATOR_STATES, eligible

ROME = ZoneInfo("Europe/Rome")
QUEUE = "tq_basic"
_numbers = itertools.count(1)


def mobile() -> str:
    """An Italian mobile number unique to this run (customers are matched by number)."""
    return unique_caller("35")


def base_url(rig: Controller) -> str:
    return f"http://127.0.0.1:{rig.settings.web_port}"


def config_of(rig: Controller) -> IvrConfig:
    return load_config(Path(rig.config_dir) / "dialplan", Path(rig.config_dir) / "skills")


async def new_user(records: Records, role: str, operator: str | None = None) -> str:
    """A console user of the rig's database; returns their token."""
    name = f"{role}-{operator or 'x'}-{os.getpid()}-{next(_numbers)}"
    _, token = await UserStore(records.store.sessions).create(name, role, operator=operator, by="e2e")
    return token


async def today_from_records(records: Records, queue: str) -> dict[str, int]:
    """Answered and abandoned (past the queue's 5 s short-abandon) calls of ``queue`` today, counted
    here from the contact rows, not with the console's query."""
    midnight = datetime.combine(datetime.now(ROME).date(), day_time(0), tzinfo=ROME)
    rows = [
        r for r in await records.store.recent(5000) if r.queue == queue and r.queued_at and r.started_at >= midnight
    ]
    answered = sum(1 for r in rows if r.answered_at is not None)
    abandoned = sum(
        1
        for r in rows
        if r.answered_at is None
        and r.outcome == "abandoned_queue"
        and r.ended_at is not None
        and r.queued_at is not None
        and (r.ended_at - r.queued_at).total_seconds() >= 5
    )
    return {"answered": answered, "abandoned": abandoned}


async def from_redis(live: LiveState, config: IvrConfig, queue: str) -> dict[str, int]:
    """Calls waiting in ``queue`` and its eligible operators by state, straight from Redis."""
    spec = config.queues[queue]
    members = [op for op, operator in config.operators.items() if eligible(operator, spec)]
    agents = await live.agents(members)
    counts = {f"operators.{state}": 0 for state in OPERATOR_STATES}
    for op in members:
        agent = agents.get(op)
        counts[f"operators.{agent.state.value if agent else 'logged_out'}"] += 1
    counts["waiting"] = len(await live.waiting(queue))
    return counts


async def page_numbers(page: Page, queue: str, kpis: list[str]) -> dict[str, int]:
    numbers = {}
    for kpi in kpis:
        raw = await value(page, f'[data-queue="{queue}"] [data-kpi="{kpi}"]')
        numbers[kpi] = int(raw) if raw not in (None, "") else -1
    return numbers


async def page_matches(
    page: Page, live: LiveState, config: IvrConfig, records: Records, **expected: int
) -> dict[str, int] | None:
    """None until the page's row for QUEUE shows exactly what Redis and the records say (and they
    say ``expected``, keys written with ``__`` for ``.``: ``operators__on_call=1``)."""
    truth = await from_redis(live, config, QUEUE) | await today_from_records(records, QUEUE)
    if any(truth[key.replace("__", ".")] != want for key, want in expected.items()):
        return None
    shown = await page_numbers(page, QUEUE, list(truth))
    return truth if shown == truth else None


async def test_given_callers_and_operators_then_the_wallboard_shows_what_redis_and_the_records_say(
    rig: Controller, records: Records, operators: Operators
) -> None:
    config = config_of(rig)
    token = await new_user(records, "supervisor")
    redis = aioredis.Redis.from_url(rig.settings.redis_url, decode_responses=True)
    live = LiveState(redis, rig.settings.redis_prefix)
    phone = await operators.online("op2001", talk_ms=None)
    assert (await rig.api("POST", "/api/agents/op2001/pause", {"reason": "break"}))[0] == 200
    try:
        async with chromium() as browser:
            page = await browser.page(f"{base_url(rig)}/wallboard")
            await sign_in(page, token)
            await page.wait_for_selector(f'tr[data-queue="{QUEUE}"]')
            await wait_for(lambda: page_matches(page, live, config, records), what="wallboard = Redis + records")
            assert await value(page, '[data-area="t_always"]', "data-state") == "open"
            assert await value(page, '[data-area="t_never"]', "data-state") == "closed"

            # a caller enters the line (op2001 is on a break): the page follows within a second or so
            number = mobile()
            waiting_call = asyncio.ensure_future(caller(rig, "7101", number).pause(12_000).hangup().run())

            async def in_line() -> float | None:
                return time.monotonic() if await live.waiting(QUEUE) else None

            entered = await wait_for(in_line, interval=0.02, what=f"a caller waiting in {QUEUE}")
            shown = await wait_for_value(page, f'[data-queue="{QUEUE}"] [data-kpi="waiting"]', "1", timeout=10)
            lag = time.monotonic() - entered
            assert lag < 3.0, f"the wallboard showed the caller {lag:.2f} s after Redis had them"
            print(f"wallboard lag after a call entered the line: {lag * 1000:.0f} ms (page poll {shown:.2f} s)")
            await wait_for(
                lambda: page_matches(page, live, config, records, waiting=1),
                what="caller waiting on the page",
            )
            await browser.screenshot(page, "wallboard-waiting")

            # the operator gets ready: answered, on a call, then the caller hangs up
            assert (await rig.api("POST", "/api/agents/op2001/ready"))[0] == 200
            await phone.wait_invites(1)
            await rig.wait_agent("op2001", "on_call")
            await wait_for(
                lambda: page_matches(page, live, config, records, waiting=0, operators__on_call=1),
                what="operator on a call on the page",
            )
            result = await waiting_call
            assert result.answered, result.explain()
            answered = await records.finished_for(number)
            assert answered.outcome == "answered" and answered.operator == "op2001"

            # a second caller gives up after 7 s in the line (past the 5 s short abandon)
            await rig.wait_agent("op2001", "ready", timeout=10)
            assert (await rig.api("POST", "/api/agents/op2001/pause", {"reason": "lunch"}))[0] == 200
            gone = mobile()
            result = await caller(rig, "7101", gone).pause(8_000).hangup().run()
            assert result.answered, result.explain()
            abandoned = await records.finished_for(gone)
            assert abandoned.outcome == "abandoned_queue"
            truth = await wait_for(
                lambda: page_matches(page, live, config, records), timeout=15, what="counts after the calls"
            )
            assert truth["answered"] >= 1 and truth["abandoned"] >= 1, truth
            await browser.screenshot(page, "wallboard")
    finally:
        await redis.aclose()


async def test_given_operator_page_when_a_known_customer_calls_then_screen_pop_and_wrap_up_lands_on_the_contact(
    rig: Controller, records: Records, operators: Operators
) -> None:
    number = mobile()
    customer, _ = await CustomerStore(records.store.sessions).upsert(
        CustomerIn(
            phones=(number,),
            name="Mario Bianchi",
            segment="business",
            language="it",
            products=("bancoposta", "postepay"),
            consents={"recording": True},
        )
    )
    token = await new_user(records, "operator", "op2002")
    phone = await operators.online("op2002", ring_ms=2500, login=False)
    async with chromium() as browser:
        page = await browser.page(f"{base_url(rig)}/operator")
        await sign_in(page, token)
        await page.wait_for_selector('#state[data-state="logged_out"]')
        await page.click('[data-action="login"]')
        await page.wait_for_selector('#state[data-state="ready"]')
        await page.select_option("#pause-reason", "training")
        await page.click('[data-action="pause"]')
        await page.wait_for_selector('#state[data-state="not_ready"]')
        assert await value(page, "#reason", "data-reason") == "training"
        agent = await rig.agent("op2002")
        assert (agent["state"], agent["reason"]) == ("not_ready", "training")
        await page.click('[data-action="ready"]')
        await page.wait_for_selector('#state[data-state="ready"]')
        assert (await rig.agent("op2002"))["state"] == "ready"

        call = asyncio.ensure_future(caller(rig, "7101", number).pause(6_000).hangup().run())
        await page.wait_for_selector('#pop[data-call-state="ringing"]', timeout=15_000)
        await page.wait_for_selector('[data-pop="customer-name"]:has-text("Mario Bianchi")')
        assert await page.text_content('[data-pop="customer-segment"]') == "business"
        assert "postepay" in (await page.text_content('[data-pop="customer-products"]') or "")
        assert await value(page, "#customer dl", "data-customer") == customer.id
        await page.wait_for_selector('#pop[data-call-state="on_call"]', timeout=10_000)
        await page.wait_for_selector('#state[data-state="on_call"]')
        assert await page.is_visible("#call-actions")
        assert await page.is_visible('[data-escalate="enterprise"]')
        await browser.screenshot(page, "operator-screenpop")

        result = await call
        assert result.answered and result.local_bye, result.explain()
        assert phone.answered == 1
        record = await records.finished_for(number)
        assert record.operator == "op2002" and record.customer_id == customer.id
        await page.wait_for_selector("#wrapup:not([hidden])", timeout=10_000)
        assert await value(page, "#wrapup", "data-call-id") == record.id
        await page.fill("#wrapup-code", "informazioni")
        await page.select_option("#wrapup-disposition", "nessun_seguito")
        await page.check("#wrapup-resolved")
        await browser.screenshot(page, "operator-wrapup")
        await page.click('#wrapup-form button[type="submit"]')
        await page.wait_for_selector("#wrapup[hidden]", state="attached")

        async def coded() -> bool:
            contact = await records.store.get(record.id)
            return contact is not None and contact.wrapup_code == "informazioni"

        await wait_for(coded, what="wrap-up code on the contact")
        stored = await records.store.get(record.id)
        assert stored is not None and stored.disposition == "nessun_seguito"
        await page.wait_for_selector('#state[data-state="ready"]', timeout=10_000)
        await page.click('[data-action="logout"]')
        await page.wait_for_selector('#state[data-state="logged_out"]')
        await browser.screenshot(page, "operator")


async def test_given_operator_page_on_a_call_when_escalating_to_enterprise_then_an_enterprise_operator_takes_it(
    rig: Controller, records: Records, operators: Operators
) -> None:
    token = await new_user(records, "operator", "op2003")
    first = await operators.online("op2003")
    number = mobile()
    async with chromium() as browser:
        page = await browser.page(f"{base_url(rig)}/operator")
        await sign_in(page, token)
        await page.wait_for_selector('#state[data-state="ready"]')
        running = asyncio.ensure_future(caller(rig, "7101", number).pause(8_000).hangup().run())
        await first.wait_count("ANSWERED", 1)
        await page.wait_for_selector('#state[data-state="on_call"]')
        await page.wait_for_selector('[data-pop="customer-name"][data-guest="1"]')  # a guest: no card
        second = await operators.online("op1006")  # general and enterprise
        await page.select_option('[data-escalate-tier="enterprise"]', "tq_enterprise")
        await page.click('[data-escalate="enterprise"]')
        await second.wait_count("ANSWERED", 1)
        # after-call work, then ready; the call is op1006's now, and so is its wrap-up code
        await page.wait_for_selector('#state[data-state="wrap_up"]', timeout=10_000)
        await browser.screenshot(page, "operator-escalated")
        await page.wait_for_selector('#state[data-state="ready"]', timeout=10_000)
        assert await page.is_hidden("#wrapup") and await page.is_hidden("#pop")
        result = await running
        assert result.answered, result.explain()
    record = await records.finished_for(number)
    assert (record.operator, record.queue, record.tier) == ("op1006", "tq_enterprise", "enterprise")
    assert steps(record, "transfer") == ["op2003 -> queue tq_enterprise"]


async def test_given_an_operator_token_on_the_wallboard_then_refused_and_asked_again(
    rig: Controller, records: Records
) -> None:
    token = await new_user(records, "operator", "op2004")
    async with chromium() as browser:
        page = await browser.page(f"{base_url(rig)}/wallboard")
        await page.fill("#token", token)
        await page.click('#login-form button[type="submit"]')
        await page.wait_for_selector('#login-form [data-role="error"]:has-text("non può aprire")')
        assert await page.is_visible("#login") and await page.is_hidden("#board")
        assert await page.evaluate("sessionStorage.length") == 0, "a refused token is not kept"
        await page.fill("#token", "not-a-token")
        await page.click('#login-form button[type="submit"]')
        await page.wait_for_selector('#login-form [data-role="error"]:has-text("Token non valido")')
        await browser.screenshot(page, "wallboard-refused")
