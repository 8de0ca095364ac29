"""Shared test set-up: the PostgreSQL test URL written by scripts/bootstrap.sh, if any, and the
figures tests report (restart-to-serving time, burst outcomes ...), printed at the end of the run."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_pg_url_file = ROOT / ".unico" / "test-postgres.url"
if "UNICO_TEST_POSTGRES" not in os.environ and _pg_url_file.exists():
    os.environ["UNICO_TEST_POSTGRES"] = _pg_url_file.read_text().strip()


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``figure("restart -> serving 1.5 s")``: shown in the run's summary, also from parallel
    workers (a report's user properties travel back to the main process; printed output does not)."""

    def note(text: str) -> None:
        request.node.user_properties.append(("figure", text))

    return note


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        f"{report.nodeid.split('::')[-1][:70]}: {value}"
        for kind in ("passed", "failed")
        for report in terminalreporter.stats.get(kind, [])
        if getattr(report, "when", "") == "call"
        for key, value in getattr(report, "user_properties", [])
        if key == "figure"
    ]
    if lines:
        terminalreporter.section("figures measured by the tests")
        for line in lines:
            terminalreporter.write_line(line)
