"""Every way a call can end produces exactly one closed contact record with its outcome, on SQLite
and on PostgreSQL: a controller process per database, the same real calls through each.

Outcomes: contained (self-service), answered (an operator), abandoned in the IVR, abandoned in the
queue, callback requested, complaint recorded, operators unavailable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from contacts import ContactStore
from tests.e2e.rig import ARTIFACTS, WEB_PORT, Controller, wait_for
from tests.pg import async_url_for, pg_database
from tests.sipp import Call
from tests.softphone import Softphone
from unico.pbx.operators import ensure_operator_passwords
from unico.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('outcomes') / 'unico.db'}"
        return
    with pg_database("unico_outcomes") as name:
        yield async_url_for(name)


@pytest.fixture
async def on_database(controller: Controller, database_url: str) -> AsyncIterator[Controller]:
    """A controller writing to ``database_url`` (the session's one stops meanwhile)."""
    controller.stop()
    settings = controller.settings.model_copy(
        update={"database_url": database_url, "web_port": WEB_PORT + 3, "controller_id": "outcomes"}
    )
    process = Controller(settings, controller.config_dir, ARTIFACTS / "controller-outcomes.log")
    process.log_path.unlink(missing_ok=True)
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()


async def test_given_each_way_a_call_ends_then_exactly_one_closed_record_with_its_outcome(
    on_database: Controller, asterisk: Settings
) -> None:
    rig = on_database
    port = asterisk.sip_port
    tag = f"36{os.getpid() % 100000:05d}"
    numbers = {
        name: f"{tag}{i:04d}"
        for i, name in enumerate(
            ["contained", "answered", "abandoned_ivr", "abandoned_queue", "callback", "complaint", "unavailable"]
        )
    }
    password = ensure_operator_passwords(asterisk.state_dir, ["op1002"])["op1002"]
    phone = Softphone("op1002", password, port=port)
    await phone.register()
    await phone.start("answer")
    try:
        await rig.wait_agent("op1002", "logged_out")
        assert (await rig.api("POST", "/api/agents/op1002/login"))[0] == 200
        # contained: 1 (skip welcome), 1 information, 1 opening hours, then 2 goodbye
        contained = Call("803160", caller=numbers["contained"], port=port).pause(800)
        contained.dtmf("111", mode="info", gap_ms=700).pause(9000).dtmf("2").expect_bye(20_000)
        answered = Call("7101", caller=numbers["answered"], port=port).pause(3000).hangup()
        abandoned_ivr = Call("7001", caller=numbers["abandoned_ivr"], port=port).pause(500).hangup()
        complaint = Call("7003", caller=numbers["complaint"], port=port).pause(1500).play_audio().hangup()
        callback = Call("7106", caller=numbers["callback"], port=port).pause(800).dtmf("3").expect_bye(30_000)
        unavailable = Call("7104", caller=numbers["unavailable"], port=port).expect_bye(15_000)
        results = await asyncio.gather(
            *(c.run() for c in (contained, answered, abandoned_ivr, complaint, callback, unavailable))
        )
        for result in results:
            assert result.answered, result.explain()
        # abandoned in the queue: the only operator is paused, the caller gives up
        assert (await rig.api("POST", "/api/agents/op1002/pause", {"reason": "break"}))[0] == 200
        queue_gone = await Call("7101", caller=numbers["abandoned_queue"], port=port).pause(2500).hangup().run()
        assert queue_gone.answered, queue_gone.explain()
    finally:
        await rig.api("POST", "/api/agents/op1002/logout")
        await phone.close()

    store = ContactStore(rig.settings.db_url)
    await store.open()
    try:

        async def closed() -> list[object] | None:
            mine = [r for r in await store.recent(200) if r.caller in numbers.values()]
            ok = len(mine) == len(numbers) and all(r.ended_at is not None for r in mine)
            return mine if ok else None

        records = await wait_for(closed, timeout=30, what="one closed record per call")
        assert await store.open_contacts() == []
    finally:
        await store.close()
    outcome = {r.caller: r.outcome for r in records}  # type: ignore[attr-defined]
    assert sorted(r.caller for r in records) == sorted(numbers.values())  # type: ignore[attr-defined]
    assert outcome == {
        numbers["contained"]: "contained",
        numbers["answered"]: "answered",
        numbers["abandoned_ivr"]: "abandoned_ivr",
        numbers["abandoned_queue"]: "abandoned_queue",
        numbers["callback"]: "callback",
        numbers["complaint"]: "complaint",
        numbers["unavailable"]: "operators_unavailable",
    }
