"""``unico report`` as an admin runs it: a temporary SQLite database with seeded calls."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contacts import ContactStore, upgrade
from contacts.models import Contact
from unico.cli import main

ROOT = Path(__file__).resolve().parents[2]
ROME = ZoneInfo("Europe/Rome")
PERIOD = ["--from", "2026-11-02", "--to", "2026-11-03", "--as-of", "2026-11-23T12:00"]


def rome(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, 2, hour, minute, second, tzinfo=ROME)


async def _seed(url: str) -> None:
    await upgrade(url)
    calls = [
        # general: answered after 12 s and 40 s, one abandon after 30 s; spedizioni: one answered after 8 s
        ("c1", "general", rome(9, 0), 12),
        ("c2", "general", rome(9, 30), 40),
        ("c3", "general", rome(10, 15), None),
        ("c4", "spedizioni", rome(10, 45), 8),
    ]
    async with ContactStore(url) as store, store.sessions.begin() as session:
        for cid, queue, queued, wait in calls:
            answered = None if wait is None else queued + timedelta(seconds=wait)
            session.add(
                Contact(
                    id=cid,
                    channel_id=cid,
                    caller=None,
                    dialled="800",
                    language="it",
                    started_at=queued - timedelta(minutes=1),
                    queued_at=queued,
                    answered_at=answered,
                    ended_at=queued + timedelta(minutes=5 if wait else 0.5),
                    queue=queue,
                    tier="general",
                    operator="op1" if wait else None,
                    outcome="answered" if wait else "abandoned_queue",
                    ivr_path=[],
                    data={},
                )
            )


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"
    asyncio.run(_seed(url))
    return url


def test_given_seeded_db_when_report_by_queue_then_table_printed_and_exit_0(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", *PERIOD, "--interval", "day", "--by", "queue", "--db-url", db_url, "--config", str(ROOT)])

    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("KPIs 2026-11-02 00:00 to 2026-11-03 00:00 (Europe/Rome), daily by queue")
    rows = {line.split()[1]: line.split() for line in lines[2:]}
    assert "bancoposta" in rows  # configured, quiet: listed with zeros
    # general: 3 contacts, offered 3, answered 2, abandoned 1, short 0, SL 1/2 (40 s > 20 s), ASA (12 + 40) / 2
    assert rows["general"][2:9] == ["3", "3", "2", "1", "0", "50.0%", "26.0s"]
    assert rows["spedizioni"][2:5] == ["1", "1", "1"]
    assert rows["bancoposta"][2:9] == ["0", "0", "0", "0", "0", "-", "-"]


def test_given_json_csv_and_png_options_when_run_then_json_printed_and_files_written(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no configuration here: default thresholds, and a note says so
    csv_path, png_path = tmp_path / "out.csv", tmp_path / "out.png"

    files = ["--csv", str(csv_path), "--png", str(png_path)]
    code = main(["report", *PERIOD, "--interval", "60m", "--sl", "offered", "--db-url", db_url, "--json", *files])

    captured = capsys.readouterr()
    assert code == 0
    body = json.loads(captured.out)
    assert (body["interval"], body["by"], body["sl_definition"], len(body["rows"])) == ("60m", "total", "offered", 24)
    nine = body["rows"][9]
    assert (nine["start"], nine["offered"], nine["service_level"]) == ("2026-11-02T09:00:00+01:00", 2, 0.5)
    assert "default thresholds" in captured.err and "wrote" in captured.err
    with csv_path.open(newline="") as handle:
        assert [row["offered"] for row in csv.DictReader(handle)][9:11] == ["2", "2"]
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "02/11/2026"])
def test_given_bad_date_when_run_then_clear_error_and_exit_2(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--from", bad, "--to", "2026-11-03", "--db-url", "sqlite+aiosqlite:///nowhere.db"])

    assert exit_info.value.code == 2
    assert f"argument --from: {bad!r} is not a date; write YYYY-MM-DD" in capsys.readouterr().err


def test_given_end_before_start_when_run_then_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "--from", "2026-11-03", "--to", "2026-11-02", "--db-url", "sqlite+aiosqlite:///x.db"])

    assert code == 2
    assert "--to (2026-11-02) must be after --from (2026-11-03)" in capsys.readouterr().err


def test_given_missing_sqlite_file_when_run_then_exit_1_and_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}"

    code = main(["report", *PERIOD, "--db-url", url, "--config", str(ROOT)])

    assert code == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()


def test_given_installed_command_when_bad_date_then_exit_2_from_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "unico.cli", "report", "--from", "2026-02-30", "--to", "2026-03-01"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "'2026-02-30' is not a date" in result.stderr
