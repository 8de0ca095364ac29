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

The buffer lives in memory, bounded by ``limit``: beyond it the oldest writes are dropped and
counted (a database down for hours at full traffic). A controller killed while writes wait loses
them; the records it left open are closed as interrupted by the next start (reconcile).

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
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError

if TYPE_CHECKING:
    from contacts.store import ContactStore

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[object]]


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
    ) -> None:
        self.batch = batch
        self.batch_size = batch_size
        self.commits = 0
        self.limit = limit
        self.first_retry = first_retry
        self.max_retry = max_retry
        self._items: collections.deque[tuple[str, Write]] = collections.deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
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
        self.start()  # the first write starts the writer (inside the event loop)

    async def drained(self) -> None:
        """Wait until every write submitted so far has landed (or was dropped)."""
        await self._idle.wait()

    async def close(self, grace: float = 5.0) -> None:
        """Land what can land within ``grace`` seconds, then stop; what is left is logged."""
        if self._task is None:
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

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._items:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            size = self.batch_size if self.batch is not None else 1
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


class DeferredContactWrites:
    """The call path's record writes, queued on a :class:`WriteQueue` (same arguments as the
    :class:`~contacts.store.ContactStore` methods they stand for; they return at once)."""

    def __init__(self, store: ContactStore, queue: WriteQueue) -> None:
        self.store = store
        self.queue = queue

    def start_contact(self, **kwargs: Any) -> None:
        self.queue.submit(f"start {kwargs.get('contact_id')}", lambda: self.store.start_contact(**kwargs))

    def link_customer(self, contact_id: str, customer_id: str) -> None:
        self.queue.submit(f"link {contact_id}", lambda: self.store.link_customer(contact_id, customer_id))

    def update_contact(self, contact_id: str, **kwargs: Any) -> None:
        self.queue.submit(f"update {contact_id}", lambda: self.store.update_contact(contact_id, **kwargs))

    def record_talk_end(self, contact_id: str, at: datetime) -> None:
        self.queue.submit(f"talk end {contact_id}", lambda: self.store.record_talk_end(contact_id, at))

    def finish_contact(
        self,
        *,
        contact_id: str,
        ended_at: datetime,
        outcome: str,
        ivr_path: Iterable[Mapping[str, object]],
        data: Mapping[str, Any],
        language: str,
        **kwargs: Any,
    ) -> None:
        path, values = list(ivr_path), dict(data)  # copies: the call may change its own later

        async def write() -> object:
            return await self.store.finish_contact(
                contact_id=contact_id,
                ended_at=ended_at,
                outcome=outcome,
                ivr_path=path,
                data=values,
                language=language,
                **kwargs,
            )

        self.queue.submit(f"finish {contact_id}", write)


__all__ = ["DeferredContactWrites", "WriteQueue", "retryable"]
