"""The operators' state history: one ``agent_states`` row per interval in one state.

The ACD's live state (Redis) says where each operator is now; the reports need where they were
(occupancy is handle time over handle plus ready time, per interval). Every state a controller
writes to Redis is handed to :class:`AgentStateLog` (``LiveState(on_agent=log.note)``), which
closes the operator's open span and opens the next, in order, off the call path: ``note`` only
queues, one background task writes.

When an operator leaves wrap-up, the contact they last talked to gets ``wrapup_ended_at`` (the
end of its handle time). Only the process that made a change writes it, so several controllers never write one change
twice. Repeats (a softphone re-registering leaves state, reason and call unchanged) are skipped.
The writes go through a :class:`~contacts.writer.WriteQueue` (the one the contact records use):
a database outage delays them, in order, and a retry after an unclear failure is a repeat.

Example::

    log = AgentStateLog(store.sessions, node="roma-a")
    log.start()
    live = LiveState(redis, "unico:", on_agent=log.note)
    ...
    await log.close()          # writes what is queued, then stops
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, and_, bindparam, insert, not_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from acd.agents import AgentState, NotReadyReason
from acd.live import AgentChange
from contacts.batch import Plan
from contacts.models import AgentStateSpan, Contact
from contacts.writer import WriteQueue

log = logging.getLogger(__name__)

_SPANS = cast(Table, AgentStateSpan.__table__)
_CONTACTS = cast(Table, Contact.__table__)
#: the agent's open span (the latest, should a crash have left two)
_CURRENT = (
    select(_SPANS.c.state, _SPANS.c.reason, _SPANS.c.call_id)
    .where(_SPANS.c.agent == bindparam("b_agent"), _SPANS.c.ended_at.is_(None))
    .order_by(_SPANS.c.started_at.desc())
    .limit(1)
)
#: the call the agent last talked to
_SERVED = (
    select(_SPANS.c.call_id)
    .where(_SPANS.c.agent == bindparam("b_agent"), _SPANS.c.state == "on_call", _SPANS.c.call_id.is_not(None))
    .order_by(_SPANS.c.started_at.desc())
    .limit(1)
)
_WRAPUP_END = update(_CONTACTS).where(_CONTACTS.c.id == bindparam("b_id"))
#: close the agent's open span unless it already holds the new state, reason and call (a repeat)
_CLOSE_UNLESS_SAME = (
    update(_SPANS)
    .where(
        _SPANS.c.agent == bindparam("b_agent"),
        _SPANS.c.ended_at.is_(None),
        not_(
            and_(
                _SPANS.c.state.is_not_distinct_from(bindparam("b_state")),
                _SPANS.c.reason.is_not_distinct_from(bindparam("b_reason")),
                _SPANS.c.call_id.is_not_distinct_from(bindparam("b_call")),
            )
        ),
    )
    .returning(_SPANS.c.state)
)
_OPEN = insert(_SPANS)


class AgentStateLog:
    """Writes agent state spans in the order the changes were made (see the module docstring)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, node: str | None = None, queue: WriteQueue | None = None
    ) -> None:
        self._sessions = sessions
        self.node = node
        #: shared with the contact records' writes (contacts/writer.py): one order, retried
        self.queue = queue or WriteQueue()
        self.written = 0

    def start(self) -> None:
        self.queue.start()

    def note(self, change: AgentChange) -> None:
        """Queue one change (called from ``LiveState`` right after Redis accepted it)."""
        self.queue.submit(f"agent {change.agent_id} {change.state.value}", self.record_write(change))

    async def close(self) -> None:
        """Write what is queued (within a few seconds), then stop."""
        await self.queue.close()

    async def flush(self) -> None:
        """Wait until every change queued so far is written (tests)."""
        await self.queue.drained()

    async def record(self, change: AgentChange) -> bool:
        """Close the agent's open span and open one for ``change``; False for a repeat."""
        return bool(await self.record_write(change)())

    def record_write(self, change: AgentChange) -> Plan:
        """:meth:`record` as a :class:`~contacts.batch.Plan` (the write-behind queue's)."""
        key = (change.state.value, change.reason.value if change.reason else None, change.call_id)
        at = datetime.fromtimestamp(change.since, UTC)
        # Statements built once, on the tables (not the ORM entities), parameters bound at each
        # run: this runs for every state change of every operator, and building the statement,
        # its cache key and the ORM's DML bookkeeping cost more than the SQL (bench/capacity.py)
        params = {"b_agent": change.agent_id, "ended_at": at, "b_state": key[0], "b_reason": key[1], "b_call": key[2]}

        def run(conn: Connection) -> bool:
            # one statement in the usual case: close the open span unless it is this very state
            # (a repeat), and say what it was
            closed = conn.execute(_CLOSE_UNLESS_SAME, params).all()
            if not closed:
                current = conn.execute(_CURRENT, {"b_agent": change.agent_id}).first()
                if current is not None and tuple(current) == key:
                    return False
            if any(row.state == "wrap_up" for row in closed) and key[0] != "wrap_up":
                # read from the history, not from memory: another node may have started the wrap-up
                served = conn.scalar(_SERVED, {"b_agent": change.agent_id})
                if served is not None:
                    conn.execute(_WRAPUP_END, {"b_id": served, "wrapup_ended_at": at})
            conn.execute(
                _OPEN,
                {
                    "agent": change.agent_id,
                    "state": key[0],
                    "reason": key[1],
                    "call_id": change.call_id,
                    "started_at": at,
                    "node": self.node,
                },
            )
            self.written += 1
            return True

        return Plan(run, self._sessions)

    async def current(self) -> dict[str, AgentChange]:
        """Every operator's open span: where each one was last, by this history.

        Redis restarted without its data (``acd.live`` is a rebuildable cache) is rebuilt from
        here: who was logged in, ready, paused (and why) or in wrap-up.
        """
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(AgentStateSpan)
                    .where(AgentStateSpan.ended_at.is_(None))
                    .order_by(AgentStateSpan.agent, AgentStateSpan.started_at)
                )
            ).scalars()
            result: dict[str, AgentChange] = {}
            for row in rows:  # the latest open span wins if a crash left two
                result[row.agent] = AgentChange(
                    row.agent,
                    AgentState(row.state),
                    NotReadyReason(row.reason) if row.reason else None,
                    row.call_id,
                    row.started_at.timestamp(),
                )
        return result


__all__ = ["AgentStateLog"]
