"""Faults the single national number must survive (issue 6), on the real rig.

The database goes away for a minute while callers are served: calls still route and are answered,
the record writes wait in the controller (``/health`` says so), and once the database is back every
call has exactly one closed record with the right outcome. The database is PostgreSQL reached
through a TCP proxy the test cuts (tests/faultproxy.py), so the server itself keeps serving the
rest of the suite.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.engine import make_url

from contacts import ContactStore
from tests.e2e.rig import ARTIFACTS, WEB_PORT, Controller, unique_caller, wait_for
from tests.faultproxy import FaultProxy
from tests.pg import async_url_for, pg_database
from tests.sipp import Call
from tests.softphone import Softphone
from unico.pbx.operators import ensure_operator_passwords
from unico.settings import Settings

OUTAGE_SECONDS = 60.0


@pytest.fixture
def faults_db() -> Iterator[str]:
    with pg_database("unico_faults") as name:
        yield async_url_for(name)


@pytest.fixture
async def through_proxy(controller: Controller, faults_db: str) -> AsyncIterator[tuple[Controller, FaultProxy, str]]:
    """A controller whose PostgreSQL is behind a proxy the test can cut (the session's one stops)."""
    controller.stop()
    direct = make_url(faults_db)
    async with FaultProxy(direct.host or "127.0.0.1", direct.port or 5432) as proxy:
        proxied = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = controller.settings.model_copy(
            update={"database_url": proxied, "web_port": WEB_PORT + 4, "controller_id": "faults"}
        )
        process = Controller(settings, controller.config_dir, ARTIFACTS / "controller-faults.log")
        process.log_path.unlink(missing_ok=True)
        process.start()
        try:
            await process.wait_ready()
            yield process, proxy, faults_db
        finally:
            process.stop()


async def test_given_database_down_for_a_minute_when_callers_are_served_then_records_land_once_after(
    through_proxy: tuple[Controller, FaultProxy, str], asterisk: Settings
) -> None:
    rig, proxy, direct_url = through_proxy
    port = asterisk.sip_port
    password = ensure_operator_passwords(asterisk.state_dir, ["op1002"])["op1002"]
    phone = Softphone("op1002", password, port=port)
    await phone.register()
    await phone.start("answer")
    numbers = [unique_caller("33") for _ in range(4)]
    try:
        await rig.wait_agent("op1002", "logged_out")
        assert (await rig.api("POST", "/api/agents/op1002/login"))[0] == 200
        await rig.wait_agent("op1002", "ready")

        proxy.cut()
        down_at = time.monotonic()
        # four callers, one after the other, each talks 3 s with the operator and hangs up
        for number in numbers:
            result = await Call("7101", caller=number, port=port, answer_timeout_ms=15_000).pause(3000).hangup().run()
            assert result.answered, result.explain()
            await rig.wait_agent("op1002", "ready", timeout=15)

        health = await rig.health()
        assert health is not None
        writes = health["record_writes"]
        assert writes["database_down"] and writes["pending"] > 0, writes
        assert phone.answered == len(numbers), "every caller reached the operator while the database was down"

        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        proxy.restore()

        async def landed() -> dict[str, object] | None:
            now = await rig.health()
            writes = now["record_writes"] if now else None
            return writes if writes and writes["pending"] == 0 and not writes["database_down"] else None

        writes = await wait_for(landed, timeout=30, what="buffered writes landed")
        assert writes["dropped"] == 0 and writes["failed"] == 0, writes
    finally:
        await rig.api("POST", "/api/agents/op1002/logout")
        await phone.close()

    store = ContactStore(direct_url)
    await store.open()
    try:
        mine = [r for r in await store.recent(100) if r.caller in numbers]
        assert await store.open_contacts() == []
    finally:
        await store.close()
    assert sorted(r.caller for r in mine) == sorted(numbers), "exactly one record per call"
    for record in mine:
        assert record.outcome == "answered" and record.operator == "op1002", record
        assert record.answered_at is not None and record.ended_at is not None
        assert record.talk_ended_at is not None
