"""Several record writes in one transaction: the write-behind queue's group commit.

The call path's record writes (``contacts.writer``) and the operators' state spans
(``contacts.agent_log``) are many small statements; one transaction each made the commit, not the
statement, the controller's largest cost (bench/capacity.py, py-spy). The queue now opens one
transaction for the writes waiting together (``batch``) and every write that runs inside it uses
that transaction (``transaction``) instead of opening its own; one commit lands them all. A write
run anywhere else (the API, the CLI, a test) opens its own transaction as before.

The shared session is found through a context variable: only the coroutine that opened the batch
(and what it awaits) sees it, never another task, and only for the same session factory.

Example::

    async with batch(store.sessions):
        await store.start_contact(...)     # no commit yet
        await agent_log.record(change)     # same transaction
    # one commit here
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

_open: ContextVar[tuple[async_sessionmaker[AsyncSession], AsyncSession] | None] = ContextVar(
    "contacts_batch", default=None
)


@asynccontextmanager
async def transaction(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """The open batch's session (its commit comes at the end of the batch), or a new transaction
    committed on exit."""
    current = _open.get()
    if current is not None and current[0] is maker:
        yield current[1]
        return
    async with maker.begin() as session:
        yield session


@asynccontextmanager
async def batch(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """One transaction for every ``transaction(maker)`` entered inside; committed on exit, rolled
    back (all of it) if anything inside raised."""
    async with maker.begin() as session:
        token = _open.set((maker, session))
        try:
            yield
        finally:
            _open.reset(token)


@dataclass(frozen=True, slots=True)
class Plan:
    """A write as a synchronous function of a connection (``run``), so that it can run either
    here, awaited on the store's async engine (``await plan()``: in the open batch, else in a
    transaction of its own), or, with a batch of others, in one call on the record writer's
    thread (``contacts.writer.ThreadWriter``). One body for both: the statements and their checks
    are written once. ``run`` checks its arguments itself (``ValueError``), so building a plan
    never raises in the call path."""

    run: Callable[[Connection], Any]
    sessions: async_sessionmaker[AsyncSession]

    async def __call__(self) -> Any:
        async with transaction(self.sessions) as session:
            conn = await session.connection()
            return await conn.run_sync(self.run)


__all__ = ["Plan", "batch", "transaction"]
