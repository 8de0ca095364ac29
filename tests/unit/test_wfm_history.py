"""Reading history: CSV rows (errors as file:line), JSON rows, contact records and the database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contacts import ContactRecord, ContactStore, Outcome, upgrade
from wfm import (
    PlanInputError,
    load_queued_calls,
    read_interval_csv,
    rows_from_json,
    table_from_contacts,
    table_from_rows,
)

ROME = ZoneInfo("Europe/Rome")
MONDAY = date(2026, 3, 2)


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(text)
    return path


def _record(n: int, **values: Any) -> ContactRecord:
    return ContactRecord(
        id=f"c-{n}",
        channel_id=f"17000.{n}",
        caller=None,
        dialled="803160",
        language="it",
        started_at=datetime(2026, 3, 2, 7, 0, tzinfo=UTC),
        **values,
    )


def test_given_csv_when_read_then_rows_land_in_their_local_interval(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "timestamp,queue,offered,aht,abandoned\n"
        "2026-03-02T09:00:00,general,4,100,0\n"  # naive: local time
        "2026-03-02T09:15:00,general,6,200,1\n"  # 15-minute rows add up into the 09:00 half hour
        "2026-03-02T08:30:00+00:00,general,2,,0\n"  # 08:30 UTC is 09:30 in Rome (CET); no AHT known
        "2026-03-03T10:00:00,bancoposta,0,,0\n",
    )
    table = read_interval_csv(path, interval_minutes=30, zone=ROME)

    assert (table.first_day, table.days, table.slots_per_day) == (MONDAY, 2, 48)
    general = table.offered["general"]
    assert general[0, 18] == 10 and general[0, 19] == 2 and general.sum() == 12
    assert table.handle_seconds["general"][0, 18] == 4 * 100 + 6 * 200
    assert table.handled["general"][0, 18] == 10 and table.handled["general"][0, 19] == 0
    assert table.offered["bancoposta"].sum() == 0  # a queue with no traffic is zeros, not missing


def test_given_bad_csv_rows_when_read_then_every_problem_named_by_file_and_line(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "timestamp,queue,offered,aht\n"
        "2026-03-02T09:00,general,x,\n"
        "2026-03-02T25:00,general,3,100\n"
        "2026-03-02T09:30,Bad Queue,-1,5\n"
        "2026-03-02T10:00,general,1,1,extra\n",
    )
    with pytest.raises(PlanInputError) as info:
        read_interval_csv(path, interval_minutes=30, zone=ROME)

    problems = info.value.problems
    assert problems[0].startswith(f"{path}:2: offered: ") and "'x'" in problems[0]
    assert problems[1].startswith(f"{path}:3: timestamp: ")
    assert any(p.startswith(f"{path}:4: queue: ") for p in problems)
    assert any(p.startswith(f"{path}:4: offered: ") and "greater than or equal to 0" in p for p in problems)
    assert f"{path}:5: more fields than the header has" in problems


def test_given_duplicate_row_when_read_then_both_lines_named(tmp_path: Path) -> None:
    path = _csv(tmp_path, "timestamp,queue,offered\n2026-03-02T09:00,general,4\n2026-03-02T09:00,general,5\n")
    with pytest.raises(PlanInputError, match=rf"{path}:3: queue 'general' at .* is already given at {path}:2"):
        read_interval_csv(path, interval_minutes=30, zone=ROME)


def test_given_csv_without_required_column_when_read_then_header_line_named(tmp_path: Path) -> None:
    path = _csv(tmp_path, "time,queue,calls\n2026-03-02T09:00,general,4\n")
    with pytest.raises(PlanInputError, match=rf"{path}:1: missing column\(s\) timestamp, offered"):
        read_interval_csv(path, interval_minutes=30, zone=ROME)


def test_given_missing_file_when_read_then_plan_input_error(tmp_path: Path) -> None:
    with pytest.raises(PlanInputError, match="cannot read"):
        read_interval_csv(tmp_path / "nowhere.csv", interval_minutes=30, zone=ROME)


def test_given_hourly_rows_on_half_hour_plan_when_read_then_note_says_so(tmp_path: Path) -> None:
    path = _csv(tmp_path, "timestamp,queue,offered\n2026-03-02T09:00,general,4\n2026-03-02T10:00,general,4\n")
    table = read_interval_csv(path, interval_minutes=30, zone=ROME)
    assert any("60-minute boundary" in note for note in table.notes)


def test_given_json_rows_with_errors_when_validated_then_named_by_index_and_field() -> None:
    items = [
        {"timestamp": "2026-03-02T09:00:00+01:00", "queue": "general", "offered": 3},
        {"timestamp": "2026-03-02T09:30:00+01:00", "queue": "general", "offered": -2},
        {"timestamp": "2026-03-02T10:00:00+01:00", "queue": "general", "offered": 1, "calls": 2},
    ]
    with pytest.raises(PlanInputError) as info:
        rows_from_json(items, name="history")
    assert info.value.problems[0].startswith("history[1].offered: ")
    assert info.value.problems[1] == "history[2].calls: unknown field (expected timestamp, queue, offered, aht)"
    with pytest.raises(PlanInputError, match="must be a list"):
        rows_from_json({"a": 1}, name="forecast")
    table = table_from_rows(rows_from_json(items[:1], name="history"), interval_minutes=15, zone=ROME)
    assert table.offered["general"][0, 36] == 3


def test_given_contact_records_when_tabled_then_queued_ones_count_with_talk_plus_wrapup() -> None:
    at = datetime(2026, 3, 2, 9, 5, tzinfo=ROME).astimezone(UTC)
    records = [
        _record(
            1,
            queue="general",
            queued_at=at,
            answered_at=at + timedelta(seconds=30),
            ended_at=at + timedelta(seconds=230),
        ),
        _record(2, queue="general", queued_at=at, ended_at=at + timedelta(seconds=50), outcome=Outcome.ABANDONED_QUEUE),
        _record(3, queue="general", queued_at=at + timedelta(minutes=30), answered_at=at + timedelta(minutes=31)),
        _record(4, outcome=Outcome.CONTAINED),  # self-service only: never offered to a queue
        _record(5, queued_at=at),  # queued without a queue name: left out, with a note
    ]
    table = table_from_contacts(
        records,
        interval_minutes=30,
        zone=ROME,
        first_day=MONDAY,
        last_day=MONDAY + timedelta(days=6),
        wrapup={"general": 20},
    )

    general = table.offered["general"]
    assert table.days == 7 and general.shape == (7, 48)
    assert general[0, 18] == 2 and general[0, 19] == 1 and general.sum() == 3
    assert table.handle_seconds["general"][0, 18] == 200 + 20
    assert table.handled["general"][0, 18] == 1 and table.handled["general"][0, 19] == 0  # still talking
    assert table.notes == ("1 queued contact(s) without a queue name were left out",)


async def test_given_contacts_database_when_loaded_then_queued_contacts_in_range_only(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"
    await upgrade(url)
    base = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    async with ContactStore(url) as store:
        for n, hours in enumerate((0, 1, 30, 200)):
            started = base + timedelta(hours=hours)
            await store.start_contact(
                contact_id=f"c-{n}",
                channel_id=f"1.{n}",
                caller=None,
                dialled="803160",
                language="it",
                started_at=started,
            )
            if n != 1:  # c-1 never reaches a queue
                await store.update_contact(f"c-{n}", queue="general", queued_at=started + timedelta(seconds=10))
            await store.update_contact(f"c-{n}", answered_at=started + timedelta(seconds=40))
            await store.finish_contact(
                contact_id=f"c-{n}",
                ended_at=started + timedelta(seconds=100),
                outcome=Outcome.ANSWERED,
                ivr_path=[],
                data={},
                language="it",
            )
    calls = await load_queued_calls(url, since=base, until=base + timedelta(days=7))

    assert [c.queued_at for c in calls] == [base + timedelta(seconds=10), base + timedelta(hours=30, seconds=10)]
    assert all(c.queue == "general" and c.ended_at is not None and c.answered_at is not None for c in calls)
    table = table_from_contacts(
        calls, interval_minutes=30, zone=ROME, first_day=MONDAY, last_day=MONDAY + timedelta(days=6)
    )
    assert table.offered["general"].sum() == 2
    assert table.handle_seconds["general"].sum() == 2 * 60
