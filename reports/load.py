"""Read what a report needs from the records database and compute it (SQLite or PostgreSQL).

Theory of operation: a handful of column selects in one read-only session, each bounded by the
period so the work grows with the period and not with the table (``started_at`` and
``agent_states.started_at`` are indexed):

* contacts started in ``[start - MAX_CALL, end)`` with every column the KPIs read; the extra day
  before catches a call that started before the period and entered a queue inside it;
* for first-contact resolution, the caller identity and start of contacts in
  ``[end, min(as_of, end + fcr_window))``, the repeats that may follow a contact of the period;
* operator state spans overlapping the period (open ones included);
* surveys of those contacts and complaints received in the period.

The rows become the frozen inputs of :mod:`reports.kpi`, and :func:`reports.kpi.compute` does the
rest without I/O. Nothing ORM-shaped leaves this module.

Example::

    async with ContactStore(settings.db_url) as store:
        report = await load_report(store.sessions, start=monday, end=next_monday, interval="60m",
                                   by="queue", options=KpiOptions.from_queues(config.queues))
        body = report.to_json()
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contacts.models import AgentStateSpan, Complaint, Contact, Survey
from reports.kpi import (
    MAX_CALL,
    AgentSpan,
    ComplaintRow,
    ContactRow,
    Dimension,
    Interval,
    KpiOptions,
    Report,
    SurveyRow,
    compute,
    path_flags,
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def load_report(
    sessions: async_sessionmaker[AsyncSession],
    *,
    start: datetime,
    end: datetime,
    interval: Interval,
    by: Dimension,
    options: KpiOptions | None = None,
    as_of: datetime | None = None,
    clock: Clock = utc_now,
) -> Report:
    """The KPI report of ``[start, end)`` (aware datetimes) from the database behind ``sessions``.

    ``as_of`` (default: ``clock()``) is the moment the report describes: later rows are not
    read, open operator states end there and first-contact windows not over by then are pending.

    Example::

        report = await load_report(store.sessions, start=start, end=end, interval="day", by="total")
    """
    options = options or KpiOptions()
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    now = as_of if as_of is not None else clock()
    if now.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    horizon = min(now, end + options.fcr_window)
    async with sessions() as session:
        contacts = await _contacts(session, start - MAX_CALL, min(end, now))
        contacts += await _repeats(session, end, horizon)
        spans = await _spans(session, start, min(end, now))
        surveys = await _surveys(session, start - MAX_CALL, min(end, now))
        complaints = await _complaints(session, start, min(end, now))
    return compute(
        contacts,
        start=start,
        end=end,
        interval=interval,
        by=by,
        as_of=now,
        options=options,
        spans=spans,
        surveys=surveys,
        complaints=complaints,
    )


async def _contacts(session: AsyncSession, since: datetime, until: datetime) -> list[ContactRow]:
    if until <= since:
        return []
    statement = select(
        Contact.id,
        Contact.started_at,
        Contact.queued_at,
        Contact.answered_at,
        Contact.talk_ended_at,
        Contact.wrapup_ended_at,
        Contact.ended_at,
        Contact.queue,
        Contact.tier,
        Contact.operator,
        Contact.outcome,
        Contact.customer_id,
        Contact.caller,
        Contact.estimated_wait,
        Contact.ivr_path,
    ).where(Contact.started_at >= since, Contact.started_at < until)
    rows: list[ContactRow] = []
    for row in await session.execute(statement):
        transferred, escalated = path_flags(row.ivr_path, outcome=row.outcome)
        rows.append(
            ContactRow(
                id=row.id,
                started_at=row.started_at,
                queued_at=row.queued_at,
                answered_at=row.answered_at,
                talk_ended_at=row.talk_ended_at,
                wrapup_ended_at=row.wrapup_ended_at,
                ended_at=row.ended_at,
                queue=row.queue,
                tier=row.tier,
                operator=row.operator,
                outcome=row.outcome,
                customer_id=row.customer_id,
                caller=row.caller,
                estimated_wait=row.estimated_wait,
                transferred=transferred,
                escalated=escalated,
            )
        )
    return rows


async def _repeats(session: AsyncSession, since: datetime, until: datetime) -> list[ContactRow]:
    """Contacts after the period, only as possible repeat contacts: who and when."""
    if until <= since:
        return []
    statement = select(Contact.id, Contact.started_at, Contact.customer_id, Contact.caller).where(
        Contact.started_at >= since,
        Contact.started_at < until,
        or_(Contact.customer_id.is_not(None), Contact.caller.is_not(None)),
    )
    return [
        ContactRow(id=row.id, started_at=row.started_at, customer_id=row.customer_id, caller=row.caller)
        for row in await session.execute(statement)
    ]


async def _spans(session: AsyncSession, since: datetime, until: datetime) -> list[AgentSpan]:
    if until <= since:
        return []
    statement = select(
        AgentStateSpan.agent, AgentStateSpan.state, AgentStateSpan.started_at, AgentStateSpan.ended_at
    ).where(
        AgentStateSpan.started_at < until,
        or_(AgentStateSpan.ended_at.is_(None), AgentStateSpan.ended_at > since),
    )
    return [
        AgentSpan(agent=row.agent, state=row.state, started_at=row.started_at, ended_at=row.ended_at)
        for row in await session.execute(statement)
    ]


async def _surveys(session: AsyncSession, since: datetime, until: datetime) -> list[SurveyRow]:
    if until <= since:
        return []
    statement = (
        select(Survey.contact_id, Survey.score, Survey.solved)
        .join(Contact, Contact.id == Survey.contact_id)
        .where(Contact.started_at >= since, Contact.started_at < until)
    )
    return [
        SurveyRow(contact_id=row.contact_id, score=row.score, solved=row.solved)
        for row in await session.execute(statement)
    ]


async def _complaints(session: AsyncSession, since: datetime, until: datetime) -> list[ComplaintRow]:
    if until <= since:
        return []
    statement = select(
        Complaint.contact_id,
        Complaint.received_at,
        Complaint.due_on,
        Complaint.status,
        Complaint.resolved_at,
        Complaint.closed_at,
    ).where(Complaint.received_at >= since, Complaint.received_at < until)
    return [
        ComplaintRow(
            contact_id=row.contact_id,
            received_at=row.received_at,
            due_on=row.due_on,
            status=row.status,
            resolved_at=row.resolved_at,
            closed_at=row.closed_at,
        )
        for row in await session.execute(statement)
    ]


__all__ = ["load_report"]
