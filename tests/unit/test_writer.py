"""Write-behind of the call path's record writes (contacts/writer.py): order, retries, exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from acd.agents import AgentState
from acd.live import AgentChange
from contacts import AgentStateLog, ContactStore
from contacts.batch import batch
from contacts.customers import CustomerIn, CustomerStore
from contacts.db import make_sync_engine, sqlite_path, upgrade
from contacts.writer import DeferredContactWrites, ThreadReader, ThreadWriter, WriteQueue

from .fake_ari import eventually

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class FlakyDatabase:
    """Applies writes to a list; down (raising OperationalError) for the first ``outage`` tries."""

    def __init__(self, outage: int) -> None:
        self.outage = outage
        self.applied: list[str] = []
        self.tries = 0

    def write(self, name: str):  # type: ignore[no-untyped-def]
        async def apply() -> None:
            self.tries += 1
            if self.outage > 0:
                self.outage -= 1
                raise OperationalError("INSERT ...", {}, ConnectionRefusedError("connection refused"))
            self.applied.append(name)

        return apply


async def test_given_database_down_when_writes_arrive_then_buffered_and_land_once_in_order() -> None:
    db = FlakyDatabase(outage=5)
    queue = WriteQueue(first_retry=0.001, max_retry=0.004)
    for n in range(20):
        queue.submit(f"w{n}", db.write(f"w{n}"))
    assert queue.pending == 20, "submitting never waits for the database"

    await asyncio.wait_for(queue.drained(), 5)

    assert db.applied == [f"w{n}" for n in range(20)], "each write exactly once, in order"
    assert queue.stats() == {
        "pending": 0,
        "written": 20,
        "retries": 5,
        "dropped": 0,
        "failed": 0,
        "commits": 20,
        "database_down": False,
    }
    await queue.close()


async def test_given_a_write_that_can_never_succeed_then_dropped_and_the_rest_go_on() -> None:
    applied: list[str] = []

    async def bad() -> None:
        raise ValueError("ivr step: 'node' must be a non-empty string")

    async def good() -> None:
        applied.append("good")

    queue = WriteQueue()
    queue.submit("bad", bad)
    queue.submit("good", good)
    await asyncio.wait_for(queue.drained(), 5)

    assert applied == ["good"] and queue.failed == 1 and queue.written == 1
    await queue.close()


async def test_given_a_full_buffer_then_the_oldest_write_is_dropped_and_counted() -> None:
    db = FlakyDatabase(outage=0)
    queue = WriteQueue(limit=3)
    for n in range(5):  # nothing runs until the test yields: the buffer fills
        queue.submit(f"w{n}", db.write(f"w{n}"))
    await asyncio.wait_for(queue.drained(), 5)

    assert db.applied == ["w2", "w3", "w4"] and queue.dropped == 2
    await queue.close()


async def test_given_deferred_contact_writes_then_the_record_is_the_same_as_written_directly(
    store: ContactStore,
) -> None:
    writes = DeferredContactWrites(store, WriteQueue())
    writes.start_contact(
        contact_id="c1", channel_id="c1", caller="0612345678", dialled="803160", language="it", started_at=T0
    )
    writes.update_contact("c1", queue="general", tier="general", queued_at=T0)
    writes.record_talk_end("c1", T0)
    path = [{"node": "welcome", "kind": "play", "digits": None, "note": None, "at": T0.isoformat()}]
    writes.finish_contact(contact_id="c1", ended_at=T0, outcome="answered", ivr_path=path, data={}, language="it")
    path.clear()  # the call's own list may change afterwards: the write keeps its copy
    writes.start_contact(  # a retried start after the call ended: changes nothing
        contact_id="c1", channel_id="c1", caller="0612345678", dialled="803160", language="it", started_at=T0
    )
    await writes.queue.drained()

    record = await store.get("c1")
    assert record is not None
    assert (record.queue, record.outcome, record.ended_at, record.talk_ended_at) == ("general", "answered", T0, T0)
    assert [step["node"] for step in record.ivr_path] == ["welcome"]
    await writes.queue.close()


async def test_given_writes_waiting_together_then_one_transaction_and_one_commit_for_all(
    store: ContactStore,
) -> None:
    queue = WriteQueue(batch=lambda: batch(store.sessions))
    writes = DeferredContactWrites(store, queue)
    log = AgentStateLog(store.sessions, queue=queue)
    for n in range(30):  # nothing runs until the test yields: thirty writes wait together
        writes.start_contact(
            contact_id=f"c{n}", channel_id=f"c{n}", caller=None, dialled="803160", language="it", started_at=T0
        )
        log.note(AgentChange(f"op{n % 3}", AgentState.READY if n % 2 else AgentState.NOT_READY, None, None, n))
    await queue.drained()

    assert (queue.written, queue.commits) == (60, 1)
    assert len(await store.recent(100)) == 30
    # the last change of each (n = 27, 28, 29), read back from the spans the batch wrote
    assert {agent: change.state for agent, change in (await log.current()).items()} == {
        "op0": AgentState.READY,
        "op1": AgentState.NOT_READY,
        "op2": AgentState.READY,
    }
    await queue.close()


async def test_given_a_bad_write_inside_a_batch_then_the_others_land_and_only_it_is_dropped(
    store: ContactStore,
) -> None:
    queue = WriteQueue(batch=lambda: batch(store.sessions))
    writes = DeferredContactWrites(store, queue)
    writes.start_contact(contact_id="a", channel_id="a", caller=None, dialled="1", language="it", started_at=T0)
    writes.start_contact(contact_id="", channel_id="b", caller=None, dialled="1", language="it", started_at=T0)
    writes.start_contact(contact_id="c", channel_id="c", caller=None, dialled="1", language="it", started_at=T0)
    await queue.drained()

    assert sorted(r.id for r in await store.recent(10)) == ["a", "c"]
    assert (queue.written, queue.failed) == (2, 1)
    await queue.close()


class CountingThreadWriter(ThreadWriter):
    """The real writer thread, counting the event loop's awaits (one per batch)."""

    def __init__(self, url: str) -> None:
        super().__init__(make_sync_engine(url))
        self.batches: list[int] = []
        self.threads: set[str] = set()

    async def apply(self, runs: list[Callable[[Connection], object]]) -> list[object]:
        self.batches.append(len(runs))
        return await super().apply(runs)

    def _apply(self, runs: list[Callable[[Connection], object]]) -> list[object]:
        self.threads.add(threading.current_thread().name)
        return super()._apply(runs)


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    """The writer thread is for SQLite files (the embedded default)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"


@pytest.fixture
async def sqlite_store(sqlite_file: str) -> AsyncIterator[ContactStore]:
    await upgrade(sqlite_file)
    async with ContactStore(sqlite_file) as opened:
        yield opened


async def test_given_a_sqlite_file_when_writes_wait_together_then_one_await_on_the_writer_thread_lands_them(
    sqlite_store: ContactStore, sqlite_file: str
) -> None:
    store = sqlite_store
    thread = CountingThreadWriter(sqlite_file)
    queue = WriteQueue(batch=lambda: batch(store.sessions), thread=thread)
    writes = DeferredContactWrites(store, queue)
    log = AgentStateLog(store.sessions, queue=queue)
    for n in range(30):  # nothing runs until the test yields: sixty writes wait together
        writes.start_contact(
            contact_id=f"c{n}", channel_id=f"c{n}", caller=None, dialled="803160", language="it", started_at=T0
        )
        writes.update_contact(f"c{n}", queue="general", operator=f"op{n % 3}", answered_at=T0)
        log.note(AgentChange(f"op{n % 3}", AgentState.READY if n % 2 else AgentState.NOT_READY, None, None, n))
    path = [{"node": "welcome", "kind": "play", "digits": None, "note": None, "at": T0.isoformat()}]
    writes.finish_contact(contact_id="c0", ended_at=T0, outcome="answered", ivr_path=path, data={}, language="it")
    await queue.drained()

    assert thread.batches == [91] and queue.commits == 1 and queue.written == 91
    assert {name.split("_")[0] for name in thread.threads} == {"record-writer"}, "not on the event loop's thread"
    records = {r.id: r for r in await store.recent(100)}
    assert len(records) == 30 and all(r.queue == "general" and r.answered_at == T0 for r in records.values())
    assert (records["c0"].outcome, [s["node"] for s in records["c0"].ivr_path]) == ("answered", ["welcome"])
    assert {agent: change.state for agent, change in (await log.current()).items()} == {
        "op0": AgentState.READY,
        "op1": AgentState.NOT_READY,
        "op2": AgentState.READY,
    }
    await queue.close()
    assert thread._pool is None, "close released the thread"


async def test_given_the_writer_thread_when_one_write_is_bad_then_the_others_land_and_only_it_is_dropped(
    sqlite_store: ContactStore, sqlite_file: str
) -> None:
    store = sqlite_store
    thread = CountingThreadWriter(sqlite_file)
    queue = WriteQueue(batch=lambda: batch(store.sessions), thread=thread)
    writes = DeferredContactWrites(store, queue)
    writes.start_contact(contact_id="a", channel_id="a", caller=None, dialled="1", language="it", started_at=T0)
    writes.start_contact(contact_id="", channel_id="b", caller=None, dialled="1", language="it", started_at=T0)
    writes.start_contact(contact_id="c", channel_id="c", caller=None, dialled="1", language="it", started_at=T0)
    await queue.drained()

    assert sorted(r.id for r in await store.recent(10)) == ["a", "c"]
    assert (queue.written, queue.failed) == (2, 1)
    # the batch rolled back whole; then one by one up to the bad one, which goes; then batches again
    assert thread.batches == [3, 1, 2, 1, 1]
    await queue.close()


async def test_given_the_database_locked_by_another_writer_then_the_writer_thread_waits_and_lands_all(
    sqlite_store: ContactStore, sqlite_file: str
) -> None:
    store = sqlite_store
    path = sqlite_path(sqlite_file)
    assert path is not None
    queue = WriteQueue(batch=lambda: batch(store.sessions), thread=ThreadWriter.for_url(sqlite_file))
    writes = DeferredContactWrites(store, queue)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the CLI, say, in the middle of a write
    try:
        for n in range(5):
            writes.start_contact(
                contact_id=f"l{n}", channel_id=f"l{n}", caller=None, dialled="1", language="it", started_at=T0
            )
        await asyncio.sleep(0.5)
        assert queue.pending == 5 and queue.written == 0, "the writes wait for the lock, the loop does not"
    finally:
        other.execute("ROLLBACK")
        other.close()
    await asyncio.wait_for(queue.drained(), 30)

    assert sorted(r.id for r in await store.recent(10)) == [f"l{n}" for n in range(5)]
    await queue.close()


def test_given_other_databases_then_no_writer_thread() -> None:
    assert ThreadWriter.for_url("postgresql+asyncpg://u@127.0.0.1/unico") is None
    assert ThreadWriter.for_url("sqlite+aiosqlite://") is None
    assert ThreadWriter.for_url("sqlite+aiosqlite:///:memory:") is None


async def test_given_a_linger_when_writes_trickle_in_then_they_wait_and_land_together_in_one_commit(
    sqlite_store: ContactStore, sqlite_file: str
) -> None:
    store = sqlite_store
    thread = CountingThreadWriter(sqlite_file)
    queue = WriteQueue(batch=lambda: batch(store.sessions), thread=thread, linger=60.0)
    writes = DeferredContactWrites(store, queue)
    for n in range(5):  # one at a time, each with the event loop's turn in between
        writes.start_contact(
            contact_id=f"c{n}", channel_id=f"c{n}", caller=None, dialled="1", language="it", started_at=T0
        )
        await asyncio.sleep(0.02)
    assert (thread.batches, queue.written) == ([], 0), "the first write waits for the others"

    await asyncio.wait_for(queue.drained(), 10)  # waiting for the writes ends the linger at once

    assert thread.batches == [5] and queue.commits == 1
    assert sorted(r.id for r in await store.recent(10)) == [f"c{n}" for n in range(5)]
    await queue.close()


async def test_given_a_linger_when_a_batch_fills_up_then_it_goes_without_waiting(
    sqlite_store: ContactStore, sqlite_file: str
) -> None:
    store = sqlite_store
    thread = CountingThreadWriter(sqlite_file)
    queue = WriteQueue(batch=lambda: batch(store.sessions), thread=thread, linger=60.0, batch_size=3)
    writes = DeferredContactWrites(store, queue)
    for n in range(4):
        writes.start_contact(
            contact_id=f"c{n}", channel_id=f"c{n}", caller=None, dialled="1", language="it", started_at=T0
        )
        await asyncio.sleep(0.02)

    await eventually(lambda: queue.written == 3, within=10)  # a full batch, long before the minute's linger

    assert thread.batches == [3] and queue.pending == 1, "the fourth write waits for company"
    await queue.close()  # closing lands the rest at once
    assert thread.batches == [3, 1] and queue.written == 4


async def test_given_a_sqlite_file_then_the_caller_lookup_reads_on_its_own_thread_and_finds_the_same_customer(
    sqlite_store: ContactStore,
) -> None:
    store = sqlite_store
    reader = store.reader
    assert reader is not None
    seen: set[str] = set()
    original = reader._read

    def spying(run: Callable[[Connection], object]) -> object:
        seen.add(threading.current_thread().name.split("_")[0])
        return original(run)

    reader._read = spying  # type: ignore[method-assign]
    on_sessions, on_reader = CustomerStore(store.sessions), CustomerStore(store.sessions, reader=reader)
    saved, _ = await on_sessions.upsert(
        CustomerIn(name="Anna Rossi", phones=["+39 333 111 0000", "06 1234 5678"], segment="vip", products=["bpiu"])
    )
    writes = DeferredContactWrites(store, WriteQueue())
    writes.start_contact(
        contact_id="k1", channel_id="k1", caller="3331110000", dialled="1", language="it", started_at=T0
    )
    writes.update_contact("k1", operator="op7", answered_at=T0)
    await writes.queue.drained()

    found = await on_reader.lookup("+393331110000")

    assert seen == {"record-reader"}, "not on the event loop's thread nor aiosqlite's"
    assert found == await on_sessions.lookup("333 111 0000") == dataclasses.replace(saved, last_operator="op7")
    assert (found.last_operator, found.phones) == ("op7", ("+390612345678", "+393331110000"))
    assert await on_reader.lookup("+39 02 0000 0000") is None, "a guest"
    await writes.queue.close()
    await store.close()
    assert reader._pool is None, "the store's close released the reader's thread"


def test_given_other_databases_then_no_reader_thread() -> None:
    assert ThreadReader.for_url("postgresql+asyncpg://u@127.0.0.1/unico") is None
    assert ThreadReader.for_url("sqlite+aiosqlite:///:memory:") is None
