"""The records layer against real databases: a SQLite file and a throw-away PostgreSQL database.

Every test runs on both back ends (the ``db_url`` fixture of ``conftest.py``). PostgreSQL gets one
fresh database per test session, wiped to an empty schema before each test and dropped at the
end; each test ends by checking that no connection to it was left open.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Connection

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
from contacts.models import Base, UTCDateTime

T0 = datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)


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
    assert {"customers", "customer_phones", "complaints", "complaint_events", "surveys", "audit_log"} <= tables
    assert {"ix_contacts_started_at", "ix_contacts_caller", "ix_contacts_customer_id"} <= indexes


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


async def test_given_database_at_0002_with_data_when_upgraded_to_head_then_every_value_is_kept(db_url: str) -> None:
    """``make run`` on a database from before customers and complaints (revision 0002)."""
    await upgrade(db_url, "0002")
    path = [make_step("main", "menu", "2", at=T0)]
    engine = make_engine(db_url)
    try:
        async with engine.begin() as connection:
            # Written as 0002's code wrote it: the models of today have columns 0002 lacks.
            await connection.execute(
                text(
                    "INSERT INTO contacts (id, channel_id, caller, dialled, language, started_at, answered_at,"
                    " ended_at, ivr_path, operator, routing_reason, recording, outcome, data, node)"
                    " VALUES ('c-1', 'ch-1', '3331234567', '803160', 'it', :started, :answered, :ended, :path,"
                    " 'op1003', :reason, 'rec-c-1', 'answered', :data, 'n1')"
                ).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in ("started", "answered", "ended"))),
                {
                    "started": T0,
                    "answered": T0 + timedelta(seconds=40),
                    "ended": T0 + timedelta(minutes=5),
                    "path": json.dumps(path),
                    "reason": "op1003: bancoposta 8 >= 7, idle 42 s " * 10,
                    "data": json.dumps({"parcel_code": "RR1"}),
                },
            )
            await connection.execute(
                text(
                    "INSERT INTO parcels (code, status, updated_at, detail) VALUES ('RR1', 'delivered', :at, 'Roma')"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                {"at": T0},
            )
    finally:
        await engine.dispose()

    await upgrade(db_url)

    assert await current_revision(db_url) == head_revision()
    async with ContactStore(db_url) as store:
        record = await store.get("c-1")
        parcel = await store.parcel_status("RR1")
    assert record is not None and parcel is not None
    assert (record.caller, record.operator, record.recording, record.outcome) == (
        "3331234567",
        "op1003",
        "rec-c-1",
        "answered",
    )
    assert (record.started_at, record.answered_at, record.ended_at) == (
        T0,
        T0 + timedelta(seconds=40),
        T0 + timedelta(minutes=5),
    )
    assert list(record.ivr_path) == path and dict(record.data) == {"parcel_code": "RR1"}
    assert record.routing_reason == "op1003: bancoposta 8 >= 7, idle 42 s " * 10
    assert record.customer_id is None
    assert (parcel.status, parcel.detail) == ("delivered", "Roma")


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
