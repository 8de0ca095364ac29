"""Throw-away PostgreSQL databases for the tests (the server is ``UNICO_TEST_POSTGRES``).

PostgreSQL is a supported production database and ``make test`` starts it, so a missing server
fails the test rather than skipping it.

Example::

    with pg_database("unico_e2e") as name:
        url = async_url_for(name)            # postgresql+asyncpg://...
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

PG_SERVER = os.environ.get("UNICO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_SERVER, timeout=3)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def pg_database(prefix: str) -> Iterator[str]:
    """A new, uniquely named database, dropped (with its connections) afterwards; yields its name.

    Synchronous (``asyncio.run``): call it from synchronous fixtures only.
    """
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {make_url(PG_SERVER).render_as_string()} unavailable: {exc}")
    try:
        yield name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def dsn_for(name: str) -> str:
    """``postgresql://...`` for asyncpg."""
    return make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)


def async_url_for(name: str) -> str:
    """``postgresql+asyncpg://...`` for SQLAlchemy and the controller."""
    return make_url(PG_SERVER).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
