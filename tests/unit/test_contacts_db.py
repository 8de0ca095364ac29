"""The records layer against real databases: a SQLite file and a throw-away PostgreSQL database.

Every test runs on both back ends (the ``db_url`` fixture). PostgreSQL gets one fresh database per
test session, wiped to an empty schema before each test and dropped at the end; each test ends by
checking that no connection to it was left open.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from contacts import (
    ContactStore,
    Outcome,
    current_revision,
    db_upgrade,
    head_revision,
    make_engine,
    make_step,
    parcel_set,
    print_recent,
    upgrade,
)
from contacts.db import VERSION_TABLE
from contacts.models import Base

PG_SERVER = os.environ.get("UNICO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)


def _pg_dsn(database: str) -> str:
    return make_url(PG_SERVER).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A uniquely named PostgreSQL database for this session; dropped afterwards."""
    name = f"unico_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(PG_SERVER, timeout=3)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        # PostgreSQL is a supported production database: `make test` starts it, so its absence is a failure.
        pytest.fail(f"PostgreSQL at {make_url(PG_SERVER).render_as_string()} unavailable: {exc}")
    try:
        yield name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_other_backends(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(count)
    finally:
        await connection.close()


async def _wait_until(condition: Any, within: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(async URL, asyncpg DSN or None); the SQLite file sits in a folder not created yet.

    Synchronous on purpose: the session fixture it may pull in runs its own event loop.
    """
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'state' / 'unico.db'}", None
    dsn = _pg_dsn(request.getfixturevalue("pg_database"))
    return f"postgresql+asyncpg://{dsn.removeprefix('postgresql://')}", dsn


@pytest.fixture
async def db_url(backend: tuple[str, str | None]) -> AsyncIterator[str]:
    """An empty database; on PostgreSQL also checks afterwards that no connection leaked."""
    url, dsn = backend
    if dsn is None:
        yield url
        return
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()
    yield url

    async def no_leaked_connections() -> bool:
        return await _pg_other_backends(dsn) == 0

    assert await _wait_until(no_leaked_connections), "a test left connections open"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[ContactStore]:
    await upgrade(db_url)
    async with ContactStore(db_url) as opened:
        yield opened


async def _start(store: ContactStore, contact_id: str, at: datetime, **extra: Any) -> bool:
    values: dict[str, Any] = {
        "channel_id": f"chan-{contact_id}",
        "caller": "+390612345678",
        "dialled": "800100100",
        "language": "it",
    }
    values.update(extra)
    return await store.start_contact(contact_id=contact_id, started_at=at, **values)


async def _finish(store: ContactStore, contact_id: str, at: datetime, outcome: str, **extra: Any) -> bool:
    values: dict[str, Any] = {"ivr_path": [], "data": {}, "language": "it"}
    values.update(extra)
    return await store.finish_contact(contact_id=contact_id, ended_at=at, outcome=outcome, **values)


# -- migrations -------------------------------------------------------------------------------


async def test_given_empty_database_when_three_processes_upgrade_at_once_then_all_succeed(db_url: str) -> None:
    """Sites starting together on a new database: the migration lock makes them take turns."""
    code = "import asyncio, sys; from contacts.db import upgrade; asyncio.run(upgrade(sys.argv[1]))"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, db_url, stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2]
        )
        for _ in range(3)
    ]
    results = [await asyncio.wait_for(p.communicate(), 60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err.decode()[-2000:] for _, err in results]
    assert await current_revision(db_url) == head_revision()


async def test_given_empty_database_when_upgrade_then_tables_and_indexes_exist_at_head(db_url: str) -> None:
    assert await current_revision(db_url) is None

    await upgrade(db_url)

    assert await current_revision(db_url) == head_revision()
    engine = make_engine(db_url)
    try:
        async with engine.connect() as connection:

            def describe(sync: Connection) -> tuple[set[str], set[str]]:
                inspector = inspect(sync)
                indexes = {index["name"] or "" for index in inspector.get_indexes("contacts")}
                return set(inspector.get_table_names()), indexes

            tables, indexes = await connection.run_sync(describe)
    finally:
        await engine.dispose()
    assert {"contacts", "parcels", VERSION_TABLE} <= tables
    assert {"ix_contacts_started_at", "ix_contacts_caller"} <= indexes


async def test_given_upgraded_database_when_compared_with_models_then_no_difference(db_url: str) -> None:
    await upgrade(db_url)
    engine = make_engine(db_url)
    try:
        async with engine.connect() as connection:

            def diff(sync: Connection) -> list[Any]:
                context = MigrationContext.configure(sync, opts={"version_table": VERSION_TABLE})
                return list(compare_metadata(context, Base.metadata))

            differences = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    # The version table is Alembic's own; anything else means a model and 0001 disagree.
    assert [d for d in differences if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)] == []


async def test_given_recorded_contact_when_upgrade_runs_again_then_data_is_kept(db_url: str) -> None:
    await upgrade(db_url)
    async with ContactStore(db_url) as store:
        await _start(store, "c-1", T0)
        await store.upsert_parcel("RR123", "delivered", at=T0)

    await upgrade(db_url)

    async with ContactStore(db_url) as store:
        record = await store.get("c-1")
        parcel = await store.parcel_status("RR123")
    assert record is not None and record.caller == "+390612345678"
    assert parcel is not None and parcel.status == "delivered"


# -- contacts -------------------------------------------------------------------------------


async def test_given_started_contact_when_started_again_then_nothing_changes(store: ContactStore) -> None:
    assert await _start(store, "c-1", T0, caller="111") is True

    assert await _start(store, "c-1", T0 + timedelta(seconds=5), caller="222") is False

    record = await store.get("c-1")
    assert record is not None
    assert (record.caller, record.started_at, record.ended_at) == ("111", T0, None)


async def test_given_finished_contact_when_finished_again_then_first_outcome_kept(store: ContactStore) -> None:
    await _start(store, "c-1", T0)
    first = await _finish(store, "c-1", T0 + timedelta(seconds=30), Outcome.CONTAINED, recording="rec/c-1.wav")

    second = await _finish(store, "c-1", T0 + timedelta(seconds=90), Outcome.ERROR, data={"late": True})

    record = await store.get("c-1")
    assert (first, second) == (True, False)
    assert record is not None
    assert record.outcome == "contained"
    assert record.ended_at == T0 + timedelta(seconds=30)
    assert record.recording == "rec/c-1.wav"
    assert dict(record.data) == {}


async def test_given_unknown_contact_when_finished_then_nothing_is_written(store: ContactStore) -> None:
    assert await _finish(store, "ghost", T0, Outcome.ANSWERED) is False
    assert await store.get("ghost") is None


async def test_given_contacts_when_recent_then_newest_first_and_limited(store: ContactStore) -> None:
    # Inserted out of order, and one in another offset, so ordering is the database's doing.
    await _start(store, "c-2", T0 + timedelta(minutes=2))
    await _start(store, "c-1", T0)
    await _start(store, "c-3", (T0 + timedelta(minutes=3)).astimezone(timezone(timedelta(hours=-5))))
    await _start(store, "c-0", T0 - timedelta(days=1))

    assert [r.id for r in await store.recent(3)] == ["c-3", "c-2", "c-1"]
    assert [r.id for r in await store.recent(10)] == ["c-3", "c-2", "c-1", "c-0"]
    with pytest.raises(ValueError, match="limit"):
        await store.recent(0)


async def test_given_open_and_closed_contacts_when_open_contacts_then_only_unended(store: ContactStore) -> None:
    await _start(store, "c-1", T0, node="a")
    await _start(store, "c-2", T0 + timedelta(seconds=1), node="b")
    await _start(store, "c-3", T0 + timedelta(seconds=2), node="a")
    await _finish(store, "c-3", T0 + timedelta(seconds=9), Outcome.ABANDONED_IVR)

    assert [r.id for r in await store.open_contacts()] == ["c-1", "c-2"]
    assert [r.id for r in await store.open_contacts(node="a")] == ["c-1"]


async def test_given_contacts_left_open_when_close_stale_then_only_dead_ones_of_that_node_close(
    store: ContactStore,
) -> None:
    for index, node in enumerate(["a", "a", "a", "b"]):
        await _start(store, f"c-{index}", T0 + timedelta(seconds=index), node=node)
    await _finish(store, "c-2", T0 + timedelta(seconds=5), Outcome.ANSWERED)

    closed = await store.close_stale(ended_at=T0 + timedelta(minutes=1), except_ids={"c-1"}, node="a")

    assert closed == 1
    stale = await store.get("c-0")
    assert stale is not None and (stale.outcome, stale.ended_at) == ("error", T0 + timedelta(minutes=1))
    assert [r.id for r in await store.open_contacts()] == ["c-1", "c-3"]
    finished = await store.get("c-2")
    assert finished is not None and finished.outcome == "answered"


async def test_given_ivr_path_when_finished_then_path_and_data_round_trip(store: ContactStore) -> None:
    path = [
        make_step("welcome", "prompt", None, at=T0),
        make_step("main", "menu", "2", at=T0 + timedelta(seconds=4)),
        make_step("parcel", "input", "RR12345678", at=T0 + timedelta(seconds=12)),
    ]
    data = {"parcel_code": "RR12345678", "attempts": 2, "nested": {"città": "Roma", "ok": True}}
    await _start(store, "c-1", T0)

    await _finish(
        store,
        "c-1",
        T0 + timedelta(seconds=20),
        Outcome.CONTAINED,
        ivr_path=path,
        data=data,
        language="en",
        ivr_ended_at=T0 + timedelta(seconds=19),
        queue="parcels",
    )

    record = await store.get("c-1")
    assert record is not None
    assert list(record.ivr_path) == path
    assert dict(record.data) == data
    assert (record.language, record.queue, record.ivr_ended_at) == ("en", "parcels", T0 + timedelta(seconds=19))


async def test_given_open_contact_when_steps_added_concurrently_then_none_is_lost(store: ContactStore) -> None:
    await _start(store, "c-1", T0)
    steps = [make_step(f"n{i}", "menu", str(i), at=T0 + timedelta(seconds=i)) for i in range(8)]

    results = await asyncio.gather(*(store.add_step("c-1", step) for step in steps))

    record = await store.get("c-1")
    assert all(results)
    assert record is not None
    assert sorted(record.ivr_path, key=lambda s: s["node"]) == steps
    await _finish(store, "c-1", T0 + timedelta(seconds=30), Outcome.ABANDONED_IVR)
    assert await store.add_step("c-1", steps[0]) is False
    assert await store.add_step("ghost", steps[0]) is False


async def test_given_aware_datetimes_in_any_offset_when_read_back_then_aware_utc_and_equal(
    store: ContactStore,
) -> None:
    rome = timezone(timedelta(hours=1))
    started = datetime(2025, 3, 30, 2, 59, 59, 999999, tzinfo=rome)
    ended = started + timedelta(hours=1, microseconds=1)
    await _start(store, "c-1", started)
    await _finish(store, "c-1", ended, Outcome.ANSWERED)

    record = await store.get("c-1")

    assert record is not None
    assert record.started_at == started and record.ended_at == ended
    assert record.started_at.utcoffset() == timedelta(0)
    assert record.ended_at is not None and record.ended_at.utcoffset() == timedelta(0)


async def test_given_naive_datetime_when_start_contact_then_rejected(store: ContactStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await _start(store, "c-1", datetime(2025, 1, 1, 12, 0))
    assert await store.get("c-1") is None


# -- parcels --------------------------------------------------------------------------------


async def test_given_parcel_when_upserted_again_then_latest_status_is_read(store: ContactStore) -> None:
    assert await store.parcel_status("RR1") is None
    await store.upsert_parcel("RR1", "in_transit", "Bologna hub", at=T0)

    await store.upsert_parcel("RR1", "delivered", at=T0 + timedelta(hours=5))

    parcel = await store.parcel_status("RR1")
    assert parcel is not None
    assert (parcel.status, parcel.detail, parcel.updated_at) == ("delivered", None, T0 + timedelta(hours=5))


async def test_given_store_clock_when_parcel_upserted_without_time_then_clock_time_stored(db_url: str) -> None:
    await upgrade(db_url)
    async with ContactStore(db_url, clock=lambda: T0) as store:
        await store.upsert_parcel("RR2", "ready_for_pickup")
        parcel = await store.parcel_status("RR2")
    assert parcel is not None and parcel.updated_at == T0


# -- command line ---------------------------------------------------------------------------


async def test_given_contacts_when_print_recent_as_json_then_lines_parse_with_fields(
    store: ContactStore, db_url: str
) -> None:
    await _start(store, "c-1", T0)
    await _start(store, "c-2", T0 + timedelta(minutes=1), caller=None)
    path = [make_step("main", "menu", "1", at=T0)]
    await _finish(store, "c-1", T0 + timedelta(seconds=40), Outcome.CONTAINED, ivr_path=path, recording="r/c-1.wav")
    out, err = io.StringIO(), io.StringIO()

    status = await print_recent(db_url, last=5, as_json=True, out=out, err=err)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (status, err.getvalue()) == (0, "")
    assert [line["id"] for line in lines] == ["c-2", "c-1"]
    first = lines[1]
    for key in ("caller", "dialled", "started_at", "ended_at", "ivr_path", "outcome", "language", "recording"):
        assert key in first
    assert first["ivr_path"] == [{"node": "main", "kind": "menu", "digits": "1", "note": None, "at": T0.isoformat()}]
    assert datetime.fromisoformat(first["started_at"]) == T0
    assert (first["outcome"], first["recording"], lines[0]["caller"]) == ("contained", "r/c-1.wav", None)


async def test_given_contacts_when_print_recent_as_table_then_header_and_one_row_each(
    store: ContactStore, db_url: str
) -> None:
    await _start(store, "c-1", T0)
    await _finish(
        store,
        "c-1",
        T0 + timedelta(seconds=40),
        Outcome.CONTAINED,
        ivr_path=[make_step("main", "menu", None, at=T0), make_step("main", "input", "3", at=T0, note="choice")],
    )
    await _start(store, "c-2", T0 + timedelta(minutes=1))
    out = io.StringIO()

    status = await print_recent(db_url, last=5, as_json=False, out=out)

    lines = out.getvalue().splitlines()
    assert status == 0 and len(lines) == 3
    assert lines[0].startswith("STARTED (UTC)")
    assert "open" in lines[1] and "c-2" in lines[1]
    assert "main:3" in lines[2] and "contained" in lines[2] and "40" in lines[2]


async def test_given_fresh_database_when_cli_upgrade_and_parcel_set_then_exit_zero(db_url: str) -> None:
    out = io.StringIO()

    assert await db_upgrade(db_url, out=out) == 0
    assert await db_upgrade(db_url, out=out) == 0
    assert await parcel_set(db_url, "RR9", "held_at_customs", "Milano", out=out) == 0

    assert out.getvalue().count(f"at revision {head_revision()}") == 2
    assert json.loads(out.getvalue().splitlines()[-1])["status"] == "held_at_customs"
    async with ContactStore(db_url) as store:
        parcel = await store.parcel_status("RR9")
    assert parcel is not None and parcel.detail == "Milano"


# -- single back end ----------------------------------------------------------------------------


async def test_given_unreachable_database_when_print_recent_then_exit_one_and_password_masked() -> None:
    err = io.StringIO()

    status = await print_recent("postgresql://u:s3cret@127.0.0.1:1/x", last=5, as_json=True, err=err)

    assert status == 1
    assert "s3cret" not in err.getvalue() and "127.0.0.1:1" in err.getvalue()


async def test_given_sqlite_store_when_opened_then_wal_and_busy_timeout_are_set(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            timeout = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
    finally:
        await engine.dispose()
    assert (mode, timeout) == ("wal", 5000)
