"""Alembic environment for the ``contacts`` tables.

Normally driven from code (``contacts.db.upgrade``), which builds the Config without an ini file
and puts the URL in ``config.attributes["url"]``. A caller that already holds a synchronous
connection (inside ``AsyncConnection.run_sync``) may pass it as ``config.attributes["connection"]``
instead. Online runs over a URL use ``asyncio.run``, so they must not be started on a thread whose
event loop is running: ``contacts.db.upgrade`` runs Alembic in a worker thread for that reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection

from contacts.db import VERSION_TABLE, async_url, make_engine
from contacts.models import Base

config = context.config
target_metadata = Base.metadata
version_table = config.get_main_option("version_table") or VERSION_TABLE


def _include_name(name: str | None, type_: str, _parent: Any) -> bool:
    # Autogenerate must not propose dropping tables other packages own in the same database.
    return type_ != "table" or name in target_metadata.tables


def _url() -> Any:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set config.attributes['url'] or sqlalchemy.url")
    return async_url(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=version_table,
        include_name=_include_name,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


#: pg_advisory_xact_lock key: controllers starting together on an empty PostgreSQL database
#: (two sites) take turns; the second finds the schema at head and does nothing
_MIGRATION_LOCK = 0x756E69636F  # "unico"


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        version_table=version_table,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_offline()
else:
    run_online()
