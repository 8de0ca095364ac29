"""Report output: the CSV parses back, the table reads, the PNG is a real PNG of sensible size."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reports import CSV_COLUMNS, ContactRow, KpiOptions, QueueRules, Report, compute, format_table, write_csv, write_png
from reports.output import csv_value

ROME = ZoneInfo("Europe/Rome")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def call(cid: str, queued: datetime, *, wait: float | None, queue: str = "general", gave_up: float = 0) -> ContactRow:
    if wait is None:  # hung up after gave_up seconds
        return ContactRow(
            id=cid,
            started_at=queued,
            queued_at=queued,
            ended_at=queued + timedelta(seconds=gave_up),
            queue=queue,
            outcome="abandoned_queue",
        )
    answered = queued + timedelta(seconds=wait)
    return ContactRow(
        id=cid,
        started_at=queued,
        queued_at=queued,
        answered_at=answered,
        talk_ended_at=answered + timedelta(seconds=100),
        wrapup_ended_at=answered + timedelta(seconds=110),
        ended_at=answered + timedelta(seconds=100),
        queue=queue,
        operator="op1",
        outcome="answered",
    )


def autumn_night(by: str = "total") -> Report:
    """25 Oct 2026, 00:00-05:00 Rome: six hourly buckets (two at 02:00), traffic in the first four."""
    calls = [
        call("a", datetime(2026, 10, 24, 22, 10, tzinfo=UTC), wait=10),  # 00:10 CEST
        call("b", datetime(2026, 10, 24, 22, 20, tzinfo=UTC), wait=30),  # 00:20 CEST: not in SL
        call("c", datetime(2026, 10, 24, 23, 20, tzinfo=UTC), wait=None, gave_up=40),  # 01:20 CEST
        call("d", datetime(2026, 10, 25, 0, 30, tzinfo=UTC), wait=5, queue="vip"),  # 02:30 CEST
        call("e", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), wait=5),  # 02:30 CET
    ]
    return compute(
        calls,
        start=datetime(2026, 10, 25, tzinfo=ROME),
        end=datetime(2026, 10, 25, 5, tzinfo=ROME),
        interval="60m",
        by=by,  # type: ignore[arg-type]
        as_of=datetime(2026, 11, 23, tzinfo=UTC),
        options=KpiOptions(queues={"general": QueueRules(), "vip": QueueRules()}),
    )


def test_given_report_when_written_as_csv_then_parses_back_with_headers_and_values() -> None:
    buffer = io.StringIO()

    write_csv(autumn_night(), buffer)

    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 6
    first = rows[0]
    assert (first["start"], first["end"], first["key"]) == (
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T01:00:00+02:00",
        "all",
    )
    # a waited 10 s, b 30 s: 2 offered, 2 answered, SL 1/2, ASA (10 + 30) / 2, AHT 100 talk + 10 wrap-up
    assert (first["offered"], first["answered"], first["service_level"], first["asa"], first["aht"]) == (
        "2",
        "2",
        "0.5",
        "20",
        "110",
    )
    assert [row["start"][11:] for row in rows[2:4]] == ["02:00:00+02:00", "02:00:00+01:00"]
    assert [row["offered"] for row in rows] == ["2", "1", "1", "1", "0", "0"]
    quiet = rows[-1]
    assert (quiet["offered"], quiet["service_level"], quiet["asa"], quiet["occupancy"]) == ("0", "", "", "")


def test_given_path_when_csv_written_then_file_created(tmp_path: Path) -> None:
    target = tmp_path / "kpi.csv"

    write_csv(autumn_night(by="queue"), target)

    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["key"], row["offered"]) for row in rows[:2]] == [("general", "2"), ("vip", "0")]


@pytest.mark.parametrize(
    ("value", "cell"),
    [(None, ""), (0, "0"), (12, "12"), (0.5, "0.5"), (2 / 3, "0.6667"), (1e-9, "0"), (3600.0, "3600")],
)
def test_given_kpi_values_when_formatted_for_csv_then_compact_and_empty_for_none(
    value: float | None, cell: str
) -> None:
    assert csv_value(value) == cell


def test_given_report_when_printed_then_heading_and_one_line_per_bucket() -> None:
    text = format_table(autumn_night())

    lines = text.splitlines()
    assert lines[0].startswith("KPIs 2026-10-25 00:00 to 2026-10-25 05:00 (Europe/Rome), hourly by total")
    assert lines[1].split()[:4] == ["START", "TOTAL", "CONTACTS", "OFFERED"]
    assert len(lines) == 2 + 6
    assert "50.0%" in lines[2] and "20.0s" in lines[2]
    assert lines[4].split()[1].endswith("+0200") and lines[5].split()[1].endswith("+0100")


@pytest.mark.parametrize(("by", "metric"), [("total", "service_level"), ("queue", "asa")])
def test_given_report_when_drawn_then_valid_png_of_sensible_size(tmp_path: Path, by: str, metric: str) -> None:
    target = tmp_path / "kpi.png"

    written = write_png(autumn_night(by=by), target, metric=metric)

    data = target.read_bytes()
    assert written == target
    assert data[:8] == PNG_MAGIC
    assert 10_000 < len(data) < 2_000_000


def test_given_report_without_rows_when_drawn_then_still_a_png(tmp_path: Path) -> None:
    empty = compute(
        [],
        start=datetime(2026, 11, 2, tzinfo=ROME),
        end=datetime(2026, 11, 3, tzinfo=ROME),
        interval="day",
        by="operator",
        as_of=datetime(2026, 11, 23, tzinfo=UTC),
    )

    write_png(empty, tmp_path / "empty.png")

    assert (tmp_path / "empty.png").read_bytes()[:8] == PNG_MAGIC


def test_given_unknown_metric_when_drawn_then_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        write_png(autumn_night(), tmp_path / "x.png", metric="happiness")
