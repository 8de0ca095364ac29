"""What the console reads from the contact records: today's counts per queue, and the queue and
caller of the live calls the supervisors' panel lists.

The database is the source of truth for history (Redis forgets a call when it ends), so the
wallboard's "today" figures come from ``contacts``: one aggregate query over the contacts that
started since midnight Europe/Rome and entered a queue, grouped by queue, answering a few numbers
per queue whatever the day's volume. The definitions are the reports' (docs/reports.md, KPI
definitions): *wait* is ``answered_at - queued_at`` (answered) or ``ended_at - queued_at``
(abandoned); answered within the threshold is *wait* <= T; a short abandon is *wait* < S, an
abandon *wait* >= S. The service-level and short-abandon thresholds are per queue
(``QueueSpec.service_level.threshold``, ``QueueSpec.short_abandon``), written into the query as a
``CASE`` on the queue name. A contact counts in the queue it ended in (after a transfer, the
second queue).

``TodayCache`` keeps the answer: the live view marks it stale on a queue change (a call answered,
ended or gone) and re-reads it at most once a second, and at least every ``max_age`` seconds.

Redis holds a waiting call's queue but forgets the call once it is answered, and never holds
the caller's number; ``call_details`` reads both for a set of calls in one ``IN`` query (the
console keeps the answers, so a call is read about once while it lasts; see ``LiveHub``).

Example::

    counts = await today_counts(controller.store.sessions, config.queues, now)
    counts["bancoposta"].answered
    details = await call_details(controller.store.sessions, ["1700000000.42"])
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from acd.queues import QueueSpec
from contacts.models import Contact
from contacts.records import Outcome
from unico.console.snapshot import CallDetails, QueueCounts, day_bounds


def _seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    """``end - start`` in seconds: SQLite keeps UTC text (julianday reads it), PostgreSQL timestamps."""
    if dialect == "sqlite":
        # julianday is a double of days: rounded to the millisecond, 20 s stay 20 s (not 20.00001)
        return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)
    return func.extract("epoch", end - start)


def _per_queue(queues: Mapping[str, QueueSpec], value: Callable[[QueueSpec], int]) -> ColumnElement[Any]:
    if not queues:
        return literal(0)
    return case({name: value(spec) for name, spec in queues.items()}, value=Contact.queue, else_=0)


async def today_counts(
    sessions: async_sessionmaker[AsyncSession], queues: Mapping[str, QueueSpec], now: datetime
) -> dict[str, QueueCounts]:
    """Answered (within the threshold or not), abandoned and short-abandoned contacts per queue,
    over the Europe/Rome day holding ``now``. Queues with no contact today are missing."""
    start, end = day_bounds(now)
    async with sessions() as session:
        bind = session.bind
        dialect = bind.dialect.name if bind is not None else "sqlite"
        waited = _seconds_between(dialect, Contact.queued_at, Contact.answered_at)
        stayed = _seconds_between(dialect, Contact.queued_at, Contact.ended_at)
        threshold = _per_queue(queues, lambda spec: spec.service_level.threshold)
        short = _per_queue(queues, lambda spec: spec.short_abandon)
        gone = and_(Contact.answered_at.is_(None), Contact.outcome == Outcome.ABANDONED_QUEUE.value)
        statement = (
            select(
                Contact.queue,
                func.count(Contact.answered_at),
                func.coalesce(func.sum(case((and_(Contact.answered_at.is_not(None), waited <= threshold), 1))), 0),
                func.coalesce(func.sum(case((and_(gone, stayed >= short), 1))), 0),
                func.coalesce(func.sum(case((and_(gone, stayed < short), 1))), 0),
            )
            .where(
                Contact.started_at >= start,
                Contact.started_at < end,
                Contact.queue.is_not(None),
                Contact.queued_at.is_not(None),
            )
            .group_by(Contact.queue)
        )
        rows = (await session.execute(statement)).all()
    return {
        str(queue): QueueCounts(
            answered=int(answered),
            answered_in_threshold=int(in_threshold),
            abandoned=int(abandoned),
            short_abandoned=int(short_abandoned),
        )
        for queue, answered, in_threshold, abandoned, short_abandoned in rows
    }


#: ids per ``IN`` query: far under SQLite's and PostgreSQL's limits on bound parameters
DETAILS_BATCH = 500


async def call_details(sessions: async_sessionmaker[AsyncSession], call_ids: Iterable[str]) -> dict[str, CallDetails]:
    """Queue and caller of each call (its contact row has the same id); calls without a row are
    missing. The caller is raw here: ``build_floor`` masks it."""
    ids = sorted(set(call_ids))
    found: dict[str, CallDetails] = {}
    async with sessions() as session:
        for start in range(0, len(ids), DETAILS_BATCH):
            batch = ids[start : start + DETAILS_BATCH]
            statement = select(Contact.id, Contact.queue, Contact.caller).where(Contact.id.in_(batch))
            for call_id, queue, caller in (await session.execute(statement)).all():
                found[str(call_id)] = CallDetails(queue=queue, caller=caller)
    return found


class TodayCache:
    """``today_counts`` kept between snapshots: re-read when stale, one read at a time.

    ``load(now)`` is the query (``today_counts`` with the sessions and queues bound). A failed
    read raises and is retried on the next call; :attr:`counts` still holds the last answer, so
    the wallboard can show slightly old counts rather than none.
    """

    def __init__(
        self,
        load: Callable[[datetime], Awaitable[dict[str, QueueCounts]]],
        *,
        max_age: float = 5.0,
        min_gap: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.max_age = max_age
        self.min_gap = min_gap
        self._monotonic = monotonic
        self._counts: dict[str, QueueCounts] = {}
        self._read_at: float | None = None
        self._stale = True
        self._lock = asyncio.Lock()
        self.errors = 0

    def invalidate(self) -> None:
        """A call was answered, ended or left a line: read again (at most once per ``min_gap``)."""
        self._stale = True

    def _due(self) -> bool:
        if self._read_at is None:
            return True
        age = self._monotonic() - self._read_at
        return age >= self.max_age or (self._stale and age >= self.min_gap)

    async def get(self, now: datetime) -> dict[str, QueueCounts]:
        if not self._due():
            return self._counts
        async with self._lock:
            if self._due():
                self._stale = False
                self._read_at = self._monotonic()
                try:
                    self._counts = await self._load(now)
                except Exception:
                    self.errors += 1
                    self._stale = True
                    raise
        return self._counts

    @property
    def counts(self) -> dict[str, QueueCounts]:
        """The last answer read, whatever its age."""
        return self._counts


__all__ = ["DETAILS_BATCH", "TodayCache", "call_details", "today_counts"]
