"""Today's counts per queue from the contact records (SQLite and PostgreSQL), and their cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from acd.queues import QueueSpec
from contacts import ContactStore
from unico.console.snapshot import QueueCounts
from unico.console.today import TodayCache, today_counts

ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=ROME)
QUEUES = {
    "fast": QueueSpec.model_validate(
        {"name": "Fast", "tier": "general", "calendar": "c", "service_level": {"threshold": 20}, "short_abandon": 5}
    ),
    "slow": QueueSpec.model_validate(
        {"name": "Slow", "tier": "specialist", "calendar": "c", "service_level": {"threshold": 60}}
    ),
}


async def contact(
    store: ContactStore,
    contact_id: str,
    *,
    queue: str | None,
    started: datetime,
    waited: float | None = None,
    gone_after: float | None = None,
    talking: bool = False,
) -> None:
    """A contact queued 10 s after it started; answered after ``waited`` s in the queue, or gone
    after ``gone_after`` s; still talking when ``talking``."""
    await store.start_contact(
        contact_id=contact_id, channel_id=contact_id, caller=None, dialled="803160", language="it", started_at=started
    )
    queued = started + timedelta(seconds=10)
    if queue is not None:
        await store.update_contact(contact_id, queue=queue, tier="general", queued_at=queued)
    outcome = "contained"
    if waited is not None:
        await store.update_contact(contact_id, answered_at=queued + timedelta(seconds=waited), operator="op1001")
        outcome = "answered"
    ended = queued + timedelta(seconds=waited or 0) + timedelta(seconds=60)
    if gone_after is not None:
        outcome, ended = "abandoned_queue", queued + timedelta(seconds=gone_after)
    if not talking:
        await store.finish_contact(
            contact_id=contact_id, ended_at=ended, outcome=outcome, ivr_path=[], data={}, language="it"
        )


async def test_given_todays_contacts_then_answered_within_threshold_abandoned_and_short_abandons_per_queue(
    store: ContactStore,
) -> None:
    morning = datetime(2026, 3, 2, 9, 0, tzinfo=ROME)
    await contact(store, "a1", queue="fast", started=morning, waited=5)
    await contact(store, "a2", queue="fast", started=morning, waited=20)  # on the threshold: within
    await contact(store, "a3", queue="fast", started=morning, waited=20.5)
    await contact(store, "a4", queue="fast", started=morning, waited=3, talking=True)  # answered, still talking
    await contact(store, "g1", queue="fast", started=morning, gone_after=4)  # short abandon
    await contact(store, "g2", queue="fast", started=morning, gone_after=30)
    await contact(store, "g3", queue="fast", started=morning, gone_after=5)  # on the short-abandon mark: abandoned
    await contact(store, "s1", queue="slow", started=morning, waited=45)  # slow's threshold is 60 s
    await contact(store, "s2", queue="slow", started=morning, gone_after=6)  # default short abandon: 5 s
    await contact(store, "ivr", queue=None, started=morning)  # never queued
    # 23:30 in Rome on 1 March: yesterday
    await contact(store, "old", queue="fast", started=datetime(2026, 3, 1, 23, 30, tzinfo=ROME), waited=1)
    # just after midnight Rome (still 1 March in UTC): today
    await contact(store, "new", queue="slow", started=datetime(2026, 3, 2, 0, 10, tzinfo=ROME), waited=100)

    counts = await today_counts(store.sessions, QUEUES, NOW)
    assert counts == {
        "fast": QueueCounts(answered=4, answered_in_threshold=3, abandoned=2, short_abandoned=1),
        "slow": QueueCounts(answered=2, answered_in_threshold=1, abandoned=1, short_abandoned=0),
    }


async def test_given_no_contacts_or_no_queues_then_empty_counts(store: ContactStore) -> None:
    assert await today_counts(store.sessions, QUEUES, NOW) == {}
    await contact(store, "x", queue="fast", started=NOW - timedelta(hours=1), waited=1)
    assert await today_counts(store.sessions, {}, NOW) == {
        "fast": QueueCounts(answered=1, answered_in_threshold=0, abandoned=0, short_abandoned=0)
    }, "a queue no longer configured still counts, against a threshold of 0 s"


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_today_cache_reads_when_stale_at_most_once_per_gap_and_at_least_every_max_age() -> None:
    reads: list[datetime] = []

    async def load(now: datetime) -> dict[str, QueueCounts]:
        reads.append(now)
        return {"fast": QueueCounts(answered=len(reads))}

    clock = FakeMonotonic()
    cache = TodayCache(load, max_age=5.0, min_gap=1.0, monotonic=clock)
    now = datetime.now(UTC)
    assert (await cache.get(now))["fast"].answered == 1
    assert (await cache.get(now))["fast"].answered == 1, "fresh: no read"
    cache.invalidate()
    clock.now += 0.5
    assert (await cache.get(now))["fast"].answered == 1, "stale but read less than a second ago"
    clock.now += 0.6
    assert (await cache.get(now))["fast"].answered == 2
    clock.now += 4.9
    assert (await cache.get(now))["fast"].answered == 2
    clock.now += 0.2
    assert (await cache.get(now))["fast"].answered == 3, "max age reached"


async def test_today_cache_keeps_the_last_counts_when_a_read_fails() -> None:
    fail = False

    async def load(now: datetime) -> dict[str, QueueCounts]:
        if fail:
            raise OSError("database down")
        return {"fast": QueueCounts(answered=7)}

    clock = FakeMonotonic()
    cache = TodayCache(load, monotonic=clock)
    now = datetime.now(UTC)
    await cache.get(now)
    fail = True
    clock.now += 10
    with pytest.raises(OSError):
        await cache.get(now)
    assert cache.counts == {"fast": QueueCounts(answered=7)}
    assert cache.errors == 1
