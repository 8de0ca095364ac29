"""Two controller processes (two ARI apps, as two sites would run) share one Redis and one
PostgreSQL database: 50 callers, 10 operators on sipp softphones. No operator ever has two calls at
once, and no call is lost: every caller gets exactly one closed contact record, answered.

The session's controller is stopped for the test (it holds the ``unico`` app) and started again by
the next test's ``rig`` fixture.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from contacts import ContactStore
from tests.e2e.conftest import acd_leftovers
from tests.e2e.rig import ARTIFACTS, WEB_PORT, Controller, wait_for
from tests.pg import async_url_for, pg_database
from tests.sipp import Call
from tests.softphone import Softphone
from unico import pbx
from unico.pbx.operators import ensure_operator_passwords
from unico.settings import Settings

OPERATORS = ["op1001", "op1002", "op1003", "op1004", "op1005", "op1006", "op2001", "op2002", "op2003", "op2004"]
CALLS = 50


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_database("unico_e2e") as name:
        yield async_url_for(name)


@pytest.fixture
async def two_controllers(controller: Controller, pg_url: str) -> AsyncIterator[tuple[Controller, Controller]]:
    controller.stop()
    base = controller.settings
    prefix = f"unico-test-two-{uuid.uuid4().hex[:6]}:"
    pair = []
    for name, app, port in (("site-a", base.ari_app, WEB_PORT + 1), ("site-b", f"{base.ari_app}-b", WEB_PORT + 2)):
        settings = base.model_copy(
            update={
                "ari_app": app,
                "web_port": port,
                "controller_id": name,
                "redis_prefix": prefix,
                "database_url": pg_url,
            }
        )
        process = Controller(settings, controller.config_dir, ARTIFACTS / f"controller-{name}.log")
        process.log_path.unlink(missing_ok=True)
        process.start()
        pair.append(process)
    try:
        for process in pair:
            await process.wait_ready()
        yield pair[0], pair[1]
    finally:
        for process in pair:
            process.stop()


async def test_given_two_controllers_and_ten_operators_when_fifty_calls_then_no_double_assignment_nor_loss(
    two_controllers: tuple[Controller, Controller], asterisk: Settings
) -> None:
    site_a, site_b = two_controllers
    phones = []
    for i, op_id in enumerate(OPERATORS):
        password = ensure_operator_passwords(asterisk.state_dir, [op_id])[op_id]
        phone = Softphone(op_id, password, port=asterisk.sip_port)
        await phone.register()
        await phone.start("answer", ring_ms=100, talk_ms=700 + 100 * (i % 4))
        phones.append(phone)
    try:
        for op_id in OPERATORS:
            await site_a.wait_agent(op_id, "logged_out")
            api = site_a if OPERATORS.index(op_id) % 2 == 0 else site_b  # log in at either site
            status, body = await api.api("POST", f"/api/agents/{op_id}/login")
            assert status == 200 and body["state"] == "ready", body

        numbers = [f"37{os.getpid() % 100000:05d}{i:04d}" for i in range(CALLS)]

        async def place(i: int) -> None:
            await asyncio.sleep(0.15 * i)
            dialled = "7105" if i % 2 == 0 else "87105"  # 8<n>: the second controller's app
            call = Call(dialled, caller=numbers[i], port=asterisk.sip_port, answer_timeout_ms=20_000)
            result = await call.expect_bye(60_000).run()
            assert result.answered and result.remote_bye, result.explain()

        await asyncio.gather(*(place(i) for i in range(CALLS)))

        store = ContactStore(site_a.settings.db_url)
        await store.open()
        try:

            async def all_closed() -> list[object] | None:
                records = [r for r in await store.recent(500) if r.caller in numbers]
                done = len(records) == CALLS and all(r.ended_at is not None for r in records)
                return records if done else None

            records = await wait_for(all_closed, timeout=30, what=f"{CALLS} closed contact records")
        finally:
            await store.close()

        assert sorted(r.caller for r in records) == sorted(numbers), "one record per call"  # type: ignore[attr-defined]
        assert {r.outcome for r in records} == {"answered"}, [(r.caller, r.outcome) for r in records]  # type: ignore[attr-defined]
        assert {r.node for r in records} == {"site-a", "site-b"}  # type: ignore[attr-defined]
        by_operator: dict[str, list[tuple[float, float]]] = {}
        for r in records:
            assert r.operator in OPERATORS and r.routing_reason, r  # type: ignore[attr-defined]
            by_operator.setdefault(r.operator, []).append(  # type: ignore[attr-defined]
                (r.answered_at.timestamp(), r.ended_at.timestamp())  # type: ignore[attr-defined]
            )
        for op_id, spans in by_operator.items():
            spans.sort()
            for (_, end), (start, _) in itertools.pairwise(spans):
                assert start >= end - 0.05, f"{op_id} had two calls at once: {spans}"
        assert sum(phone.answered for phone in phones) == CALLS
        assert len(by_operator) >= 8, f"the load spreads over the operators: {sorted(by_operator)}"
        for site in (site_a, site_b):
            health = await site.health()
            assert health is not None and health["handler_errors"] == 0 and health["routing_decisions"] > 0, health
    finally:
        for op_id in OPERATORS:
            await site_a.api("POST", f"/api/agents/{op_id}/logout")
        for phone in phones:
            await phone.close()

    async def clean() -> bool:
        channels = await asyncio.to_thread(pbx.ari_get, asterisk, "/channels")
        return not channels and await acd_leftovers(site_a.settings)

    await wait_for(clean, timeout=20, what="no channels and no ACD state left")
