"""Fixtures shared by the database tests: every test that takes ``db_url`` (or ``store``) runs
twice, on a SQLite file and on a throw-away PostgreSQL database.

PostgreSQL gets one fresh database per test session (``UNICO_TEST_POSTGRES`` names the server),
wiped to an empty schema before each test and dropped at the end; each test ends by checking that
no connection to it was left open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from contacts import ContactStore, upgrade
from tests.pg import dsn_for
from tests.pg import pg_database as pg_database_for


def _pg_dsn(database: str) -> str:
    return dsn_for(database)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A uniquely named PostgreSQL database for this session; dropped afterwards."""
    with pg_database_for("unico_test") as name:
        yield name


async def _pg_other_backends(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(count)
    finally:
        await connection.close()


async def _wait_until(condition: Any, within: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(async URL, asyncpg DSN or None); the SQLite file sits in a folder not created yet.

    Synchronous on purpose: the session fixture it may pull in runs its own event loop.
    """
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'state' / 'unico.db'}", None
    dsn = _pg_dsn(request.getfixturevalue("pg_database"))
    return f"postgresql+asyncpg://{dsn.removeprefix('postgresql://')}", dsn


@pytest.fixture
async def db_url(backend: tuple[str, str | None]) -> AsyncIterator[str]:
    """An empty database; on PostgreSQL also checks afterwards that no connection leaked."""
    url, dsn = backend
    if dsn is None:
        yield url
        return
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()
    yield url

    async def no_leaked_connections() -> bool:
        return await _pg_other_backends(dsn) == 0

    assert await _wait_until(no_leaked_connections), "a test left connections open"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[ContactStore]:
    await upgrade(db_url)
    async with ContactStore(db_url) as opened:
        yield opened
