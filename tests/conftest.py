"""Shared test set-up: the PostgreSQL test URL written by scripts/bootstrap.sh, if any."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_pg_url_file = ROOT / ".unico" / "test-postgres.url"
if "UNICO_TEST_POSTGRES" not in os.environ and _pg_url_file.exists():
    os.environ["UNICO_TEST_POSTGRES"] = _pg_url_file.read_text().strip()
