"""Write-behind for the call path: record writes never hold up a caller, and none is lost.

A call must not wait for the database, nor fail because it is slow or down: at 10 calls a second
SQLite answered "database is locked" and callers were released without an operator
(bench/capacity.py). So the call path hands its record writes (start, link to the customer, queue
columns, talk end, finish) to a :class:`WriteQueue` and carries on. One task applies them in the
order they were made. A write that fails for a reason that may pass (the database is down,
locked, or a connection dropped) is retried, with backoff, until it lands; the ones queued behind
it wait, so the order holds. A write that can never succeed (a programming error: bad arguments)
is logged with its traceback and dropped.

Every deferred write is idempotent: a retry after a failure whose commit did in fact land changes
nothing (``start_contact`` inserts ``ON CONFLICT DO NOTHING``, ``finish_contact`` only closes an
open row, the others set columns to the same values, an agent state span is skipped when it is
already the open one). So each write lands exactly once in effect.

Each write is a :class:`~contacts.batch.Plan`: a synchronous function of a connection. On a SQLite
file the writes waiting together run in one transaction on the record writer's thread
(:class:`ThreadWriter`), one await of the event loop for the whole batch; elsewhere they run on
the async engine, one await per statement (``batch``: one transaction and one commit).

With a ``linger`` (the controller's is 0.1 s) a write waits that long for others to share its
transaction, unless the batch fills up or someone awaits the writes (``drained``, ``close``): at
24 calls a second that made one commit of about twenty writes instead of one commit each, and cut
the controller's CPU per call by a quarter together with the caller lookup's reader thread
(``ThreadReader``; bench/results/ab_records/).

The buffer lives in memory, bounded by ``limit``: beyond it the oldest writes are dropped and
counted (a database down for hours at full traffic). A controller killed while writes wait loses
them (with the linger, at least the last tenth of a second's); the records it left open are closed
as interrupted by the next start (reconcile), and a queued caller's recovery snapshot carries its
queue columns to the controller that takes the call over.

Example::

    queue = WriteQueue()
    queue.start()
    writes = DeferredContactWrites(store, queue)
    writes.start_contact(contact_id=..., ...)      # returns at once
    await queue.close(grace=5)                    # lands what it can, then stops
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError

from contacts.batch import Plan
from contacts.db import make_sync_engine, sqlite_path

if TYPE_CHECKING:
    from contacts.store import ContactStore

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[object]]
T = TypeVar("T")
A = TypeVar("A")


def retryable(exc: BaseException) -> bool:
    """May this write succeed later? Yes, unless the statement itself is wrong: the database said
    so (integrity, data or programming errors) or our code did (a bad argument). A connection
    refused, reset or timed out, or a pool exhausted, in whatever wrapper the driver and SQLAlchemy
    put it, passes once the database is back, and a write dropped by mistake is a record lost."""
    never = (IntegrityError, DataError, ProgrammingError, ValueError, TypeError, KeyError, AttributeError)
    return not isinstance(exc, never)


class WriteQueue:
    """Applies writes in order, retrying those that may succeed later.

    With ``batch`` (``contacts.batch.batch`` on the store's sessions), the writes waiting together
    (up to ``batch_size``) run in one transaction and land with one commit; if that transaction
    fails for a reason that will not pass, they are applied one by one, so only the bad one is
    dropped.
    """

    def __init__(
        self,
        *,
        limit: int = 200_000,
        first_retry: float = 0.2,
        max_retry: float = 5.0,
        batch: Callable[[], AbstractAsyncContextManager[object]] | None = None,
        batch_size: int = 100,
        thread: ThreadWriter | None = None,
        linger: float = 0.0,
    ) -> None:
        self.batch = batch
        self.thread = thread
        self.batch_size = batch_size
        #: with batches, wait this long after a write for others to join it (unless the batch is
        #: full, or someone waits for the writes to land): one transaction, one commit and one
        #: trip to the writer's thread for many writes instead of one each
        self.linger = linger
        self.commits = 0
        self.limit = limit
        self.first_retry = first_retry
        self.max_retry = max_retry
        self._items: collections.deque[tuple[str, Write]] = collections.deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._hurry = asyncio.Event()  # skip the linger: a batch is full, or writes are awaited
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.retries = 0
        self.dropped = 0
        self.failed = 0
        self.outage_since: float | None = None

    @property
    def pending(self) -> int:
        return len(self._items)

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="record-writer")

    def submit(self, what: str, write: Write) -> None:
        """Queue ``write`` (a coroutine function); ``what`` names it in logs."""
        if len(self._items) >= self.limit:
            lost, _ = self._items.popleft()
            self.dropped += 1
            log.error("record writes: buffer full (%d), dropped %s", self.limit, lost)
        self._items.append((what, write))
        self._idle.clear()
        self._wake.set()
        if len(self._items) >= self.batch_size:
            self._hurry.set()
        self.start()  # the first write starts the writer (inside the event loop)

    async def drained(self) -> None:
        """Wait until every write submitted so far has landed (or was dropped)."""
        if not self._idle.is_set():
            self._hurry.set()
        await self._idle.wait()

    async def close(self, grace: float = 5.0) -> None:
        """Land what can land within ``grace`` seconds, then stop; what is left is logged."""
        if self._task is None:
            if self.thread is not None:
                await self.thread.close()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.drained()
        self._stopping = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._items:
            log.error("record writes: %d not written at shutdown (database unreachable)", len(self._items))
        if self.thread is not None:
            await self.thread.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._items:
                self._idle.set()
                self._hurry.clear()
                self._wake.clear()
                await self._wake.wait()
                continue
            size = self.batch_size if self.batch is not None or self.thread is not None else 1
            if size > 1 and self.linger > 0 and len(self._items) < size and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.linger):
                        await self._hurry.wait()
            group = list(itertools.islice(self._items, size))
            delay = self.first_retry
            while True:
                try:
                    await self._apply(group)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a bug in one write must not stop the others
                    if not retryable(exc):
                        if len(group) > 1:
                            group = group[:1]  # one by one from here: only the bad write goes
                            continue
                        self.failed += 1
                        log.error("record writes: %s failed, dropped: %s", group[0][0], exc, exc_info=exc)
                        break
                    self.retries += 1
                    if self.outage_since is None:
                        self.outage_since = loop.time()
                        log.warning("record writes: database unavailable (%s: %s); buffering", type(exc).__name__, exc)
                    await asyncio.sleep(delay)
                    delay = min(self.max_retry, delay * 2)
                    continue
                if self.outage_since is not None:
                    log.warning(
                        "record writes: database back after %.1f s; %d writes waiting",
                        loop.time() - self.outage_since,
                        len(self._items) - len(group),
                    )
                    self.outage_since = None
                self.written += len(group)
                break
            done = {id(write) for _, write in group}
            while self._items and id(self._items[0][1]) in done:
                self._items.popleft()

    async def _apply(self, group: list[tuple[str, Write]]) -> None:
        if self.thread is not None and all(isinstance(write, Plan) for _, write in group):
            await self.thread.apply([write.run for _, write in group if isinstance(write, Plan)])
            self.commits += 1
            return
        if len(group) == 1 or self.batch is None:
            for _, write in group:
                await write()
                self.commits += 1
            return
        async with self.batch():
            for _, write in group:
                await write()
        self.commits += 1

    def stats(self) -> dict[str, int | bool]:
        return {
            "pending": self.pending,
            "written": self.written,
            "retries": self.retries,
            "dropped": self.dropped,
            "failed": self.failed,
            "commits": self.commits,
            "database_down": self.outage_since is not None,
        }


class SqliteThread:
    """A thread of its own with a synchronous engine on a SQLite file: the base of
    :class:`ThreadWriter` and :class:`ThreadReader`. ``for_url`` answers ``None`` for other
    databases and in-memory SQLite, whose users keep the async engine."""

    thread_name = "record-thread"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    @classmethod
    def for_url(cls, url: str | URL) -> Self | None:
        """One for a SQLite file database, else ``None``."""
        if sqlite_path(url) is None:
            return None
        return cls(make_sync_engine(url))

    async def _on_thread(self, function: Callable[[A], T], argument: A) -> T:
        if self._pool is None:  # the first use, or the first after a close
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.thread_name)
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, argument)

    async def close(self) -> None:
        """Wait for the work in progress, then release the thread and the connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        self.engine.dispose()


class ThreadWriter(SqliteThread):
    """Runs a batch of plans (``contacts.batch.Plan``) in one transaction on a thread of its own,
    through a synchronous engine on the same database.

    On the async engine each statement is an await, and each await waits for the event loop's
    turn: with the loop busy with calls, that wait, not the database, bounded the writes to a
    few hundred statements a second, and at 30 calls a second (about fifteen statements each:
    the contact's five, the operator's state spans) the backlog grew (bench/capacity.py). Here
    a batch of up to ``batch_size`` writes costs the loop one await. The thread only runs
    SQLAlchemy and the driver, no event loop of its own (one that did, with the async engine in
    it, was tried and cost more CPU than it saved).

    SQLite only for now (the standard library's driver; the queue keeps the async engine
    elsewhere): PostgreSQL's async driver costs half of aiosqlite's CPU per write, and a
    synchronous one is not a dependency.
    """

    thread_name = "record-writer"

    async def apply(self, runs: list[Callable[[Connection], object]]) -> list[object]:
        """Run ``runs`` in order in one transaction (committed, or rolled back if one raises)."""
        return await self._on_thread(self._apply, runs)

    def _apply(self, runs: list[Callable[[Connection], object]]) -> list[object]:
        with self.engine.begin() as conn:
            return [run(conn) for run in runs]


class ThreadReader(SqliteThread):
    """Reads of the call path (the caller's customer record) on a SQLite file, on a thread of
    their own with the standard library's driver: one trip to the thread a read.

    Through aiosqlite and the ORM the same read cost about 0.9 ms of CPU (a dozen trips between
    the loop and the driver's thread: check-out, statement, rows, reset; and the statement built
    anew each time), a twentieth of the controller's CPU per call (bench/capacity.py); here, with
    its statements built once, about 0.25 ms (both measured on the 2-core EPYC). Reads do not
    queue behind the record writer's batches: a thread and a connection of their own.

    Example::

        reader = ThreadReader.for_url(url)
        customer_id = await reader.read(lambda conn: conn.scalar(statement, {"number": number}))
    """

    thread_name = "record-reader"

    async def read(self, run: Callable[[Connection], T]) -> T:
        """``run`` on a connection of the reader's thread (no transaction is left open)."""
        return await self._on_thread(self._read, run)

    def _read(self, run: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            return run(conn)


class DeferredContactWrites:
    """The call path's record writes, queued on a :class:`WriteQueue` (same arguments as the
    :class:`~contacts.store.ContactStore` methods they stand for; they return at once)."""

    def __init__(self, store: ContactStore, queue: WriteQueue) -> None:
        self.store = store
        self.queue = queue

    def start_contact(self, **kwargs: Any) -> None:
        self.queue.submit(f"start {kwargs.get('contact_id')}", self.store.start_contact_write(**kwargs))

    def link_customer(self, contact_id: str, customer_id: str) -> None:
        self.queue.submit(f"link {contact_id}", self.store.link_customer_write(contact_id, customer_id))

    def update_contact(self, contact_id: str, **kwargs: Any) -> None:
        self.queue.submit(f"update {contact_id}", self.store.update_contact_write(contact_id, **kwargs))

    def record_talk_end(self, contact_id: str, at: datetime) -> None:
        self.queue.submit(f"talk end {contact_id}", self.store.record_talk_end_write(contact_id, at))

    def finish_contact(self, **kwargs: Any) -> None:
        # the plan copies the path and the data: the call may change its own later
        self.queue.submit(f"finish {kwargs.get('contact_id')}", self.store.finish_contact_write(**kwargs))


__all__ = ["DeferredContactWrites", "SqliteThread", "ThreadReader", "ThreadWriter", "WriteQueue", "retryable"]
