"""Fixtures for the end-to-end suite: real Asterisk, real controller process, real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from acd.live import LiveState
from contacts import ContactStore
from ivr.config import load_config
from tests.e2e.rig import (
    ARTIFACTS,
    SESSION_CONTROLLERS,
    SLOT,
    Controller,
    Operators,
    Records,
    copy_config,
    rig_settings,
    wait_for,
)
from unico import pbx
from unico.pbx.config import write_generated
from unico.pbx.operators import write_operators
from unico.settings import Settings

FLOWS = Path(__file__).with_name("flows.yaml")
ACD_TEST = Path(__file__).with_name("acd_test.yaml")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
    # test_asterisk checks Asterisk alone (the fallback when no controller is connected): it runs
    # first (it also stops the session's controller itself when, in a parallel run, another file
    # came first on its worker)
    # Then the longest files: parallel workers take whole files in this order (--dist loadfile), so
    # a long one left for the end would keep one worker busy while the other has nothing to do.
    items.sort(key=_file_rank)


def _file_rank(item: pytest.Item) -> int:
    if item.path.parent.name != "e2e":
        return 99
    return 0 if item.path.name == "test_asterisk.py" else LONGEST.get(item.path.name, 98)


#: the end-to-end files that take longest (about a minute or more each), longest first
LONGEST = {
    name: rank
    for rank, name in enumerate(
        (
            "test_faults.py",
            "test_burst.py",
            "test_recovery.py",
            "test_customers.py",
            "test_failover.py",
            "test_resilience.py",
            "test_console_supervisor.py",
            "test_console.py",
            "test_acd.py",
            "test_outcomes.py",
        ),
        start=1,
    )
}


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("unico-state")


@pytest.fixture(scope="session")
def asterisk(state_dir: Path, config_dir: Path) -> Iterator[Settings]:
    """The ``test`` Asterisk instance, installed (cached) and started once per session.

    Operator endpoints come from the test config (the shipped roster plus the test operators).
    Numbers ``8<n>`` go to a second ARI app, ``<app>-b``, for the two-controller test.
    """
    settings = rig_settings(state_dir)
    pbx.install(settings)
    write_operators(settings, load_config(config_dir / "dialplan", config_dir / "skills"))
    write_generated(
        settings,
        "extensions_local.conf",
        "[from-carrier](+)\n"
        # digits only, as the shipped routes: '.' matches any character (a dial-string injection)
        "exten => _8X.,1,GotoIf($[${LEN(${FILTER(0123456789,${EXTEN})})} != ${LEN(${EXTEN})}]?unico-refused,s,1)\n"
        f" same => n,Stasis({settings.ari_app}-b,inbound,${{EXTEN:1}})\n same => n,Hangup()\n",
    )
    pbx.start(settings)
    try:
        yield settings
    finally:
        pbx.stop(settings)


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = copy_config(tmp_path_factory.mktemp("config") / "unico", FLOWS, ACD_TEST)
    # The shipped menus reach the shipped queues only in office hours; the copy's customer area
    # opens around the clock so callers can walk 803160's menus to the operators at any hour
    # (the calendars themselves are tested with an injected clock in tests/unit).
    hours = folder / "dialplan" / "hours.yaml"
    text = hours.read_text()
    shipped = '  customers:\n    timezone: Europe/Rome\n    holidays: IT\n    hours:\n      mon-sat: "08:00-20:00"'
    assert shipped in text, "dialplan/hours.yaml changed: update the e2e override"
    always = '  customers:\n    timezone: Europe/Rome\n    holidays: null\n    hours:\n      mon-sun: "00:00-24:00"'
    hours.write_text(text.replace(shipped, always))
    return folder


@pytest.fixture(scope="session")
def controller(asterisk: Settings, config_dir: Path) -> Iterator[Controller]:
    """One controller process for the session; tests that stop or kill it start it again."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / ("controller.log" if SLOT == 0 else f"controller-slot{SLOT}.log")
    log.unlink(missing_ok=True)
    process = Controller(asterisk, config_dir, log)
    SESSION_CONTROLLERS.append(process)
    process.start()
    asyncio.run(process.wait_ready())
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def records(controller: Controller) -> AsyncIterator[Records]:
    store = ContactStore(controller.settings.db_url)
    await store.open()
    try:
        yield Records(store)
    finally:
        await store.close()


async def acd_leftovers(settings: Settings) -> bool:
    """True when Redis holds no waiting or owned call, no call's recovery snapshot, and no operator
    ringing or on a call."""
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        live = LiveState(redis, settings.redis_prefix)
        keys = await live.keys()
        calls = [k for k in keys if k.startswith((live.call_key(""), live.queue_key(""), live.session_key("")))]
        owners = await redis.hgetall(live.owners_key)
        agents = await live.agents(await live.agent_ids())
        busy = [a.id for a in agents.values() if a.state.value in ("ringing", "on_call") or a.call_id]
        return not calls and not owners and not busy
    finally:
        await redis.aclose()


@pytest.fixture
async def rig(controller: Controller, records: Records) -> AsyncIterator[Controller]:
    """The running controller; after the test, checks that nothing leaked anywhere.

    Leaks looked for: calls, timers, running actions, actors and asyncio tasks (against the count
    before the test) in the controller; channels and
    bridges in Asterisk; contact records left open in the database.
    """
    if not controller.running:
        controller.start()
    baseline = await controller.wait_ready()
    yield controller
    if not controller.running:
        return

    async def settled() -> dict[str, object] | None:
        health = await controller.health()
        if not health:
            return None
        busy = {k: health[k] for k in ("calls", "timers", "actions", "actors") if health[k]}
        if health["tasks"] > baseline["tasks"]:
            busy["tasks"] = health["tasks"]
        writes = health["record_writes"]
        if writes["pending"] or writes["dropped"] or writes["failed"]:
            busy["record_writes"] = writes  # every record write landed, none lost
        return None if busy else health

    await wait_for(
        settled, timeout=20, what="controller idle (no calls, timers, actions, actors, extra tasks, record writes)"
    )
    settings = controller.settings

    async def asterisk_clean() -> bool:
        channels = await asyncio.to_thread(pbx.ari_get, settings, "/channels")
        bridges = await asyncio.to_thread(pbx.ari_get, settings, "/bridges")
        return not channels and not bridges

    await wait_for(asterisk_clean, timeout=15, what="no channels or bridges left in Asterisk")
    await wait_for(lambda: acd_leftovers(settings), timeout=10, what="no calls left in Redis, no operator busy")

    async def records_closed() -> bool:  # the last record writes land a moment later (linger)
        return await records.store.open_contacts() == []

    await wait_for(records_closed, timeout=10, what="no contact record left open")
    health = await controller.health()
    assert health is not None and health["handler_errors"] == 0, controller.log_text()[-3000:]


@pytest.fixture
async def operators(rig: Controller) -> AsyncIterator[Operators]:
    ops = Operators(rig)
    try:
        yield ops
    finally:
        await ops.close()
