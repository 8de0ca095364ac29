"""Engines and schema migrations for the records database.

``upgrade(url)`` is safe on every start: Alembic only applies revisions the database lacks and
the migrations never drop data. It runs Alembic in a worker thread (Alembic is synchronous and
reads its scripts from disk), where ``migrations/env.py`` drives the async engine on that
thread's own event loop, so callers may await it from a running loop.

Example::

    await upgrade("sqlite+aiosqlite:///.unico/unico.db")
    engine = make_engine("postgresql+asyncpg://unico@127.0.0.1/unico")

A new revision after changing ``contacts/models.py`` (against a database already at head)::

    command.revision(alembic_config(url), "add queue_wait", autogenerate=True)
"""

from __future__ import annotations

import asyncio
import fcntl
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, pool
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Our own version table, so another package can later keep its own Alembic history in the same
# database without the two fighting over ``alembic_version``.
VERSION_TABLE = "alembic_version_contacts"
# How long a SQLite writer waits for another's lock before failing ("database is locked").
SQLITE_BUSY_TIMEOUT_MS = 5000

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str | URL) -> URL:
    """Parse ``url`` and pick the async driver when none is named (``postgresql://`` -> asyncpg)."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def safe_url(url: str | URL) -> str:
    """The URL for messages and logs, password masked (and never echoed if unparseable)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


#: aiosqlite connections kept open (each one a thread)
SQLITE_POOL_SIZE = 20


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; ``None`` for other back ends and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite with WAL and a busy timeout so the CLI can read while the
    controller writes. Extra keyword arguments go to ``create_async_engine``."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(parsed, **kwargs)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    if sqlite_path(parsed) is not None and "poolclass" not in kwargs:
        # each aiosqlite connection is a thread and an open file: the default pool (5) closed
        # the connections beyond it and opened new ones all the time under load (bench/capacity.py:
        # a dozen threads a second at 24 calls a second, each caller's lookup one read)
        kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
    engine = create_async_engine(parsed, connect_args=connect_args, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def make_sync_engine(url: str | URL) -> Engine:
    """A synchronous engine on the same SQLite file as ``make_engine``'s, with the same pragmas
    (the record writer's thread: ``contacts.writer.ThreadWriter``)."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(f"a synchronous engine is made for SQLite only, not {parsed.get_backend_name()}")
    engine = create_engine(parsed.set(drivername="sqlite"), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers run beside one writer; it is a property of the file and sticks.
        # In-memory databases answer "memory" and carry on.
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL syncs at checkpoints instead of at every commit: a crash of the process
        # (or of the controller killed with -9) loses nothing; a power cut may lose the last
        # commits, never consistency (sqlite.org/wal.html). Production runs PostgreSQL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def dialect_insert(dialect: str, entity: Any) -> Any:
    """``INSERT`` with ``on_conflict_do_*``: idempotent writes need INSERT .. ON CONFLICT, which
    each dialect spells on its own (``dialect`` is ``engine.dialect.name``)."""
    if dialect == "postgresql":
        return postgresql.insert(entity)
    if dialect == "sqlite":
        return sqlite.insert(entity)
    raise NotImplementedError(f"the records layer supports SQLite and PostgreSQL, not {dialect}")


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic ``Config`` built in code: no ``alembic.ini`` needed in the working directory.

    The URL travels in ``config.attributes`` rather than the ini options, where ``%`` in an
    escaped password would trip ConfigParser's interpolation.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    if url is not None:
        config.attributes["url"] = async_url(url)
    return config


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "contacts/migrations/versions is empty"
    return head


async def current_revision(url: str | URL) -> str | None:
    """The revision the database is at; ``None`` for an empty (or, on SQLite, missing) one."""
    path = sqlite_path(url)
    if path is not None and not await asyncio.to_thread(path.exists):
        return None  # asking must not create the file
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(
                    sync, opts={"version_table": VERSION_TABLE}
                ).get_current_revision()
            )
    finally:
        await engine.dispose()


async def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the schema to ``revision``; creates the SQLite file's folder when missing.

    Safe when several processes (controllers of two sites, ``make run`` beside a running one)
    upgrade at once: PostgreSQL takes an advisory lock in the migration transaction
    (``migrations/env.py``), SQLite a lock file beside the database. One process at a time only:
    Alembic's ``context`` is process-global.
    """
    path = sqlite_path(url)
    if path is None:
        await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
        return
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(_upgrade_locked, path.with_name(path.name + ".migrate.lock"), url, revision)


def _upgrade_locked(lock_path: Path, url: str | URL, revision: str) -> None:
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(url), revision)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
