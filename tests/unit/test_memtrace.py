"""The memory diagnosis (``UNICO_TRACEMALLOC``, SIGUSR2): snapshots, and what grew between them."""

from __future__ import annotations

import logging
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from unico import memtrace
from unico.settings import SettingsError, load_settings

#: what the test keeps alive between two snapshots
_held: list[bytes] = []


def _hold(count: int) -> None:
    _held.extend(bytes(512) + str(n).encode() for n in range(count))


@pytest.fixture
def tracing() -> Iterator[None]:
    assert not tracemalloc.is_tracing(), "another test left tracemalloc on"
    assert memtrace.start(4)
    try:
        yield
    finally:
        tracemalloc.stop()
        _held.clear()


def test_given_frames_zero_then_nothing_traced_and_a_dump_asked_for_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not memtrace.start(0)
    with caplog.at_level(logging.WARNING, "unico.memtrace"):
        assert memtrace.Tracer(tmp_path / "memory").dump() is None
    assert not (tmp_path / "memory").exists()
    assert "UNICO_TRACEMALLOC is not set" in caplog.text


def test_given_memory_held_between_two_dumps_then_the_holding_line_tops_the_growth(
    tracing: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracer = memtrace.Tracer(tmp_path / "memory")
    with caplog.at_level(logging.WARNING, "unico.memtrace"):
        first = tracer.dump()
        _hold(2_000)
        second = tracer.dump()
    assert first is not None and second is not None and first != second and second.exists()
    rows = memtrace.compare(first, second)
    assert rows, "something grew"
    top = rows[0]
    assert "test_memtrace.py" in top.where.split(" <- ")[0] and "_hold" not in top.where  # file:line, not names
    line = _hold.__code__.co_firstlineno + 1
    assert top.where.split(" <- ")[0].endswith(f"test_memtrace.py:{line}")
    assert top.count >= 2_000 and top.size_bytes >= 2_000 * 512
    assert f"test_memtrace.py:{line}" in caplog.text, "the second dump logs what grew since the first"


def test_given_memory_released_then_it_is_not_reported_as_growth(tracing: None, tmp_path: Path) -> None:
    tracer = memtrace.Tracer(tmp_path)
    _hold(2_000)
    first = tracer.dump()
    _held.clear()
    second = tracer.dump()
    assert first is not None and second is not None
    line = f"test_memtrace.py:{_hold.__code__.co_firstlineno + 1}"
    assert all(row.size_bytes <= 0 for row in memtrace.compare(first, second, limit=50) if line in row.where)


def test_cli_prints_the_comparison_and_refuses_wrong_arguments(
    tracing: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracer = memtrace.Tracer(tmp_path)
    first = tracer.dump()
    _hold(1_000)
    second = tracer.dump()
    assert memtrace.main([str(first), str(second)]) == 0
    assert "test_memtrace.py" in capsys.readouterr().out
    assert memtrace.main([str(first)]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("raw", ["51", "-1", "many"])
def test_given_a_bad_frame_count_then_the_settings_are_refused_by_name(
    raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNICO_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("UNICO_TRACEMALLOC", raw)
    with pytest.raises(SettingsError, match="UNICO_TRACEMALLOC"):
        load_settings()


def test_given_a_frame_count_then_the_settings_carry_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNICO_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("UNICO_TRACEMALLOC", "8")
    assert load_settings().tracemalloc == 8
    monkeypatch.delenv("UNICO_TRACEMALLOC")
    assert load_settings().tracemalloc == 0 and "UNICO_TRACEMALLOC" not in os.environ


def test_given_a_signal_without_tracing_then_memory_before_and_after_a_trim_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not tracemalloc.is_tracing()
    with caplog.at_level(logging.WARNING, "unico.memtrace"):
        assert memtrace.Tracer(tmp_path).on_signal() is None
    assert "after a full collection and malloc_trim" in caplog.text and "Python memory blocks" in caplog.text
    assert list(tmp_path.iterdir()) == [], "no snapshot without tracing"


def test_given_tracing_then_a_signal_also_writes_a_snapshot(tracing: None, tmp_path: Path) -> None:
    path = memtrace.Tracer(tmp_path).on_signal()
    assert path is not None and path.parent == tmp_path and path.stat().st_size > 0


def test_trim_reports_resident_memory_before_and_after(tmp_path: Path) -> None:
    before, after = memtrace.trim()
    assert before["rss"] > 0 and after["rss"] > 0 and before["anon"] > 0
    status = tmp_path / "status"
    status.write_text("Name:\tx\nVmRSS:\t  2048 kB\nRssAnon:\t  1024 kB\nRssFile:\t 1000 kB\n")
    assert memtrace.resident_kib(status) == {"rss": 2048, "anon": 1024, "file": 1000}
    assert memtrace.resident_kib(tmp_path / "missing") == {}
