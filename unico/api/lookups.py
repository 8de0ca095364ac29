"""Read-only queries the API needs beyond the stores' methods: contact search, a customer's (or a
caller's) recent contacts and open complaints, whether an operator served a customer or talked on
a call.

Each opens one short session and returns the ``contacts`` package's frozen records; nothing
ORM-shaped leaves this module. The columns filtered on are indexed (``contacts.started_at``,
``operator``, ``caller``, ``customer_id``; ``complaints.customer_id``, ``caller``).

Example::

    found = await search_contacts(store.sessions, ContactFilter(queue="general", limit=50))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contacts import ComplaintRecord, ComplaintStatus, ContactRecord
from contacts.complaints import complaint_record
from contacts.customers import customer_contacts
from contacts.models import AgentStateSpan, Complaint, Contact
from contacts.phones import try_normalise
from contacts.store import contact_record

#: statuses in which a complaint still waits for an answer
OPEN_STATUSES = tuple(s.value for s in ComplaintStatus if s not in (ComplaintStatus.RESOLVED, ComplaintStatus.CLOSED))


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactFilter:
    """Every field given must match; ``start``/``end`` bound ``started_at`` (end excluded)."""

    start: datetime | None = None
    end: datetime | None = None
    queue: str | None = None
    operator: str | None = None
    #: a customer's id and numbers: their linked contacts and the ones from their numbers
    customer: tuple[str, tuple[str, ...]] | None = None
    outcome: str | None = None
    limit: int = 50


async def search_contacts(sessions: async_sessionmaker[AsyncSession], where: ContactFilter) -> list[ContactRecord]:
    """Contacts matching ``where``, newest first."""
    statement = select(Contact)
    if where.start is not None:
        statement = statement.where(Contact.started_at >= where.start)
    if where.end is not None:
        statement = statement.where(Contact.started_at < where.end)
    for column, value in ((Contact.queue, where.queue), (Contact.operator, where.operator)):
        if value is not None:
            statement = statement.where(column == value)
    if where.outcome is not None:
        statement = statement.where(Contact.outcome == where.outcome)
    if where.customer is not None:
        statement = statement.where(customer_contacts(where.customer[0], where.customer[1]))
    return await _contacts(
        sessions, statement.order_by(Contact.started_at.desc(), Contact.id.desc()).limit(where.limit)
    )


async def recent_contacts(
    sessions: async_sessionmaker[AsyncSession],
    *,
    customer_id: str | None,
    phones: Iterable[str],
    exclude: str | None = None,
    limit: int = 5,
) -> list[ContactRecord]:
    """The ``limit`` latest contacts of a customer (or of a guest's numbers), newest first."""
    clause = _who(customer_id, phones)
    if clause is None:
        return []
    statement = select(Contact).where(clause)
    if exclude is not None:
        statement = statement.where(Contact.id != exclude)
    return await _contacts(sessions, statement.order_by(Contact.started_at.desc(), Contact.id.desc()).limit(limit))


async def open_complaints(
    sessions: async_sessionmaker[AsyncSession], *, customer_id: str | None, phones: Iterable[str], limit: int = 20
) -> list[ComplaintRecord]:
    """Unanswered complaints of a customer or from one of the numbers, most urgent first."""
    numbers = sorted({n for n in (try_normalise(p) for p in phones) if n is not None})
    clauses: list[ColumnElement[bool]] = []
    if customer_id is not None:
        clauses.append(Complaint.customer_id == customer_id)
    if numbers:
        clauses.append(Complaint.caller.in_(numbers))
    if not clauses:
        return []
    statement = (
        select(Complaint)
        .where(or_(*clauses), Complaint.status.in_(OPEN_STATUSES))
        .order_by(Complaint.due_on, Complaint.number)
        .limit(limit)
    )
    async with sessions() as session:
        return [complaint_record(row) for row in await session.scalars(statement)]


async def operator_served(
    sessions: async_sessionmaker[AsyncSession], operator: str, customer_id: str, phones: Iterable[str]
) -> bool:
    """Whether ``operator`` answered (or is answering) a contact of this customer."""
    statement = select(exists().where(and_(Contact.operator == operator, customer_contacts(customer_id, phones))))
    async with sessions() as session:
        return bool(await session.scalar(statement))


async def operator_talked(sessions: async_sessionmaker[AsyncSession], operator: str, call_id: str) -> bool:
    """Whether ``operator`` talked on ``call_id`` (their ``agent_states`` history): the first
    operator of a transferred call is not the contact's ``operator`` any more, but wraps it up."""
    statement = select(
        exists().where(
            AgentStateSpan.agent == operator, AgentStateSpan.call_id == call_id, AgentStateSpan.state == "on_call"
        )
    )
    async with sessions() as session:
        return bool(await session.scalar(statement))


def _who(customer_id: str | None, phones: Iterable[str]) -> ColumnElement[bool] | None:
    numbers = [n for n in (try_normalise(p) for p in phones) if n is not None]
    if customer_id is None and not numbers:
        return None
    return customer_contacts(customer_id, numbers)


async def _contacts(sessions: async_sessionmaker[AsyncSession], statement: Select[Contact]) -> list[ContactRecord]:
    async with sessions() as session:
        return [contact_record(row) for row in await session.scalars(statement)]
