"""Complaints: open, find, assign, comment, move through the lifecycle, find the overdue ones.

The rules (statuses, transition table, deadlines, numbers) are in :mod:`contacts.complaint_rules`;
this module applies them to the database. Every change writes one ``complaint_events`` row in the
same transaction (who, when, from, to, owner, comment), so the history is the audit trail.

Idempotency: :meth:`ComplaintStore.open` with the same ``contact_id`` and ``category`` returns the
complaint already opened (a unique constraint backs it, so two racing writes still make one).
Concurrency: a move is ``UPDATE .. WHERE status = <the status it was checked against>``; if
someone else moved the complaint meanwhile, it raises :class:`IllegalTransition` instead of
overwriting their change.

Example::

    complaints = ComplaintStore(contact_store.sessions)
    c = await complaints.open(contact_id="c-1", customer_id=None, caller="+393331234567",
                              category="parcels", recording="rec-c-1", channel="ivr",
                              description=None)
    # the IVR reads back c.number with digits:
    await complaints.assign(c.number, "op1003", by="supervisor1")
    await complaints.move(c.number, "in_progress", by="op1003", comment="called the depot")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contacts.complaint_rules import (
    ANSWERED,
    DEFAULT_DEADLINES,
    Channel,
    ComplaintError,
    ComplaintStatus,
    Deadline,
    IllegalTransition,
    UnknownCategory,
    UnknownComplaint,
    after_assign,
    check_move,
    due_date,
    is_overdue,
    italian_day,
    new_number,
)
from contacts.models import Complaint, ComplaintEvent, Customer
from contacts.phones import try_normalise
from contacts.records import require_aware

Clock = Callable[[], datetime]
#: attempts at a fresh random number before giving up (a collision is ~1e-9 per complaint)
NUMBER_ATTEMPTS = 5
MAX_TEXT = 10_000
MAX_SEARCH = 500


def utc_now() -> datetime:
    return datetime.now(UTC)


class UnknownCustomer(ComplaintError, ValueError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"no customer {customer_id!r}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, kw_only=True, slots=True)
class ComplaintRecord:
    """One complaint as stored; ``number`` is what the caller is told."""

    number: str
    category: str
    status: ComplaintStatus
    channel: str
    owner: str | None
    contact_id: str | None
    customer_id: str | None
    caller: str | None
    description: str | None
    recording: str | None
    received_at: datetime
    due_on: date
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    anonymised_at: datetime | None

    def overdue(self, now: datetime) -> bool:
        """Unanswered (not resolved or closed) after its due day, in Italy."""
        return is_overdue(self.status, self.due_on, now)

    def to_json_dict(self, now: datetime | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "number": self.number,
            "category": self.category,
            "status": self.status.value,
            "channel": self.channel,
            "owner": self.owner,
            "contact_id": self.contact_id,
            "customer_id": self.customer_id,
            "caller": self.caller,
            "description": self.description,
            "recording": self.recording,
            "received_at": self.received_at.isoformat(),
            "due_on": self.due_on.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "resolved_at": _iso(self.resolved_at),
            "closed_at": _iso(self.closed_at),
            "anonymised_at": _iso(self.anonymised_at),
        }
        if now is not None:
            body["overdue"] = self.overdue(now)
        return body


@dataclass(frozen=True, kw_only=True, slots=True)
class ComplaintEventRecord:
    """One line of a complaint's audit trail."""

    at: datetime
    by: str
    action: str  # opened, assigned, comment, moved, anonymised
    from_status: str | None
    to_status: str | None
    owner: str | None
    comment: str | None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "by": self.by,
            "action": self.action,
            "from": self.from_status,
            "to": self.to_status,
            "owner": self.owner,
            "comment": self.comment,
        }


class ComplaintStore:
    """Complaints on a shared session factory (``ContactStore.sessions``).

    ``deadlines`` maps each category to its :class:`Deadline` (default
    :data:`contacts.complaint_rules.DEFAULT_DEADLINES`; ``complaint_rules.deadlines(overrides)``
    builds one from settings). ``numbers`` makes complaint numbers (tests inject a fixed sequence).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        deadlines: Mapping[str, Deadline] = DEFAULT_DEADLINES,
        clock: Clock = utc_now,
        numbers: Callable[[], str] = new_number,
    ) -> None:
        self._sessions = sessions
        self.deadlines = deadlines
        self._clock = clock
        self._numbers = numbers

    def now(self) -> datetime:
        """The store's clock (what ``overdue`` defaults to)."""
        return require_aware("now", self._clock())

    # -- writing ----------------------------------------------------------------------------

    async def open(
        self,
        *,
        contact_id: str | None,
        customer_id: str | None,
        caller: str | None,
        category: str,
        recording: str | None,
        channel: str,
        description: str | None,
        by: str | None = None,
    ) -> ComplaintRecord:
        """Open a complaint in ``received`` with its due date; returns the stored record.

        Idempotent per ``(contact_id, category)``: a retried write returns the first complaint
        unchanged. ``caller`` is any spelling of the number (stored canonical; a withheld or
        unparseable one is stored as ``None``). ``by`` (default: the channel) goes to the audit
        trail. Raises :class:`UnknownCategory`, :class:`UnknownCustomer` or ``ValueError``.
        """
        deadline = self.deadlines.get(category)
        if deadline is None:
            raise UnknownCategory(category, self.deadlines)
        source = Channel(channel).value  # ValueError names the bad channel
        if description is not None and len(description) > MAX_TEXT:
            raise ValueError(f"description longer than {MAX_TEXT} characters")
        if contact_id is not None and not 0 < len(contact_id) <= 64:
            raise ValueError("contact_id must be 1 to 64 characters")
        if recording is not None and not 0 < len(recording) <= 255:
            raise ValueError("recording must be 1 to 255 characters")
        if contact_id is not None:
            existing = await self._by_contact(contact_id, category)
            if existing is not None:
                return existing
        now = require_aware("now", self._clock())
        for _ in range(NUMBER_ATTEMPTS):
            number = self._numbers()
            try:
                async with self._sessions.begin() as session:
                    if customer_id is not None and await session.get(Customer, customer_id) is None:
                        raise UnknownCustomer(customer_id)
                    session.add(
                        Complaint(
                            number=number,
                            category=category,
                            status=ComplaintStatus.RECEIVED.value,
                            channel=source,
                            owner=None,
                            contact_id=contact_id,
                            customer_id=customer_id,
                            caller=try_normalise(caller),
                            description=description,
                            recording=recording,
                            received_at=now,
                            due_on=due_date(now, deadline),
                            updated_at=now,
                        )
                    )
                    await session.flush()
                    session.add(_event(number, now, by or source, "opened", None, ComplaintStatus.RECEIVED, None, None))
            except IntegrityError:
                # Either the same (contact, category) won a race, or the random number was taken.
                if contact_id is not None:
                    existing = await self._by_contact(contact_id, category)
                    if existing is not None:
                        return existing
                continue
            record = await self.get(number)
            assert record is not None
            return record
        raise RuntimeError(f"no free complaint number after {NUMBER_ATTEMPTS} attempts")

    async def assign(self, number: str, owner: str, by: str, comment: str | None = None) -> ComplaintRecord:
        """Give the complaint an owner: ``received`` becomes ``assigned``; in later statuses only
        the owner changes. Refused (:class:`IllegalTransition`) once closed."""
        _require_text("owner", owner, 64)
        _require_text("by", by, 64)

        def change(current: ComplaintStatus) -> tuple[ComplaintStatus, dict[str, Any]]:
            return after_assign(current), {"owner": owner}

        return await self._change(number, by, "assigned", change, owner=owner, comment=comment)

    async def move(
        self, number: str, to_status: str | ComplaintStatus, by: str, comment: str | None = None
    ) -> ComplaintRecord:
        """Move to ``to_status`` if :data:`contacts.complaint_rules.TRANSITIONS` allows it."""
        _require_text("by", by, 64)
        target = ComplaintStatus(to_status)
        now = require_aware("now", self._clock())

        def change(current: ComplaintStatus) -> tuple[ComplaintStatus, dict[str, Any]]:
            check_move(current, target)
            values: dict[str, Any] = {}
            if target is ComplaintStatus.RESOLVED:
                values["resolved_at"] = now
            elif target is ComplaintStatus.CLOSED:
                values["closed_at"] = now
            elif current is ComplaintStatus.RESOLVED:  # reopened: no longer resolved
                values["resolved_at"] = None
            return target, values

        return await self._change(number, by, "moved", change, comment=comment, now=now)

    async def comment(self, number: str, text: str, by: str) -> ComplaintRecord:
        """Add a note to the audit trail; the status does not change (allowed in every status)."""
        _require_text("text", text, MAX_TEXT)
        _require_text("by", by, 64)

        def change(current: ComplaintStatus) -> tuple[ComplaintStatus, dict[str, Any]]:
            return current, {}

        return await self._change(number, by, "comment", change, comment=text)

    # -- reading ----------------------------------------------------------------------------

    async def get(self, number: str) -> ComplaintRecord | None:
        async with self._sessions() as session:
            row = await session.get(Complaint, number)
            return None if row is None else complaint_record(row)

    async def history(self, number: str) -> tuple[ComplaintEventRecord, ...]:
        """The audit trail, oldest first (empty for an unknown number)."""
        statement = (
            select(ComplaintEvent)
            .where(ComplaintEvent.complaint_number == number)
            .order_by(ComplaintEvent.at, ComplaintEvent.id)
        )
        async with self._sessions() as session:
            return tuple(complaint_event_record(row) for row in await session.scalars(statement))

    async def search(
        self,
        *,
        status: str | ComplaintStatus | None = None,
        category: str | None = None,
        owner: str | None = None,
        customer: str | None = None,
        overdue: bool | None = None,
        text: str | None = None,
        now: datetime | None = None,
        limit: int = 100,
    ) -> list[ComplaintRecord]:
        """Complaints matching every filter given, newest first.

        ``customer`` is a customer id; ``overdue=True`` only the overdue ones at ``now`` (default:
        the store's clock), ``False`` only the others; ``text`` is a case-insensitive substring of
        the description, or the complaint number itself.
        """
        if not 1 <= limit <= MAX_SEARCH:
            raise ValueError(f"limit must be 1 to {MAX_SEARCH}, got {limit}")
        statement = select(Complaint)
        if status is not None:
            statement = statement.where(Complaint.status == ComplaintStatus(status).value)
        if category is not None:
            statement = statement.where(Complaint.category == category)
        if owner is not None:
            statement = statement.where(Complaint.owner == owner)
        if customer is not None:
            statement = statement.where(Complaint.customer_id == customer)
        if overdue is not None:
            statement = _overdue_filter(statement, require_aware("now", now or self._clock()), overdue)
        if text:
            needle = text.strip()
            statement = statement.where(
                or_(
                    Complaint.number == needle,
                    func.lower(Complaint.description).contains(needle.lower(), autoescape=True),
                )
            )
        statement = statement.order_by(Complaint.received_at.desc(), Complaint.number).limit(limit)
        async with self._sessions() as session:
            return [complaint_record(row) for row in await session.scalars(statement)]

    async def overdue(self, now: datetime) -> list[ComplaintRecord]:
        """Every unanswered complaint past its due day at ``now``, most overdue first."""
        statement = _overdue_filter(select(Complaint), require_aware("now", now), True)
        statement = statement.order_by(Complaint.due_on, Complaint.received_at, Complaint.number)
        async with self._sessions() as session:
            return [complaint_record(row) for row in await session.scalars(statement)]

    # -- plumbing ---------------------------------------------------------------------------

    async def _by_contact(self, contact_id: str, category: str) -> ComplaintRecord | None:
        statement = select(Complaint).where(Complaint.contact_id == contact_id, Complaint.category == category)
        async with self._sessions() as session:
            row = await session.scalar(statement)
            return None if row is None else complaint_record(row)

    async def _change(
        self,
        number: str,
        by: str,
        action: str,
        change: Callable[[ComplaintStatus], tuple[ComplaintStatus, dict[str, Any]]],
        *,
        owner: str | None = None,
        comment: str | None = None,
        now: datetime | None = None,
    ) -> ComplaintRecord:
        if comment is not None and len(comment) > MAX_TEXT:
            raise ValueError(f"comment longer than {MAX_TEXT} characters")
        at = require_aware("now", now or self._clock())
        async with self._sessions.begin() as session:
            row = await session.get(Complaint, number)
            if row is None:
                raise UnknownComplaint(number)
            current = ComplaintStatus(row.status)
            target, values = change(current)
            result = await session.execute(
                update(Complaint)
                .where(Complaint.number == number, Complaint.status == current.value)
                .values(status=target.value, updated_at=at, **values),
                execution_options={"synchronize_session": False},
            )
            if cast("CursorResult[Any]", result).rowcount != 1:
                raise IllegalTransition(current, target, f"complaint {number} was changed meanwhile; reload it")
            session.add(_event(number, at, by, action, current, target, owner, comment))
        record = await self.get(number)
        assert record is not None
        return record


def _overdue_filter(statement: Select[Complaint], now: datetime, overdue: bool) -> Select[Complaint]:
    today = italian_day(now)
    open_statuses = [s.value for s in ComplaintStatus if s not in ANSWERED]
    condition = Complaint.status.in_(open_statuses) & (Complaint.due_on < today)
    return statement.where(condition if overdue else ~condition)


def _require_text(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValueError(f"{name} must be 1 to {limit} characters")


def _event(
    number: str,
    at: datetime,
    by: str,
    action: str,
    from_status: ComplaintStatus | None,
    to_status: ComplaintStatus | None,
    owner: str | None,
    comment: str | None,
) -> ComplaintEvent:
    return ComplaintEvent(
        complaint_number=number,
        at=at,
        by=by,
        action=action,
        from_status=None if from_status is None else from_status.value,
        to_status=None if to_status is None else to_status.value,
        owner=owner,
        comment=comment,
    )


def complaint_record(row: Complaint) -> ComplaintRecord:
    return ComplaintRecord(
        number=row.number,
        category=row.category,
        status=ComplaintStatus(row.status),
        channel=row.channel,
        owner=row.owner,
        contact_id=row.contact_id,
        customer_id=row.customer_id,
        caller=row.caller,
        description=row.description,
        recording=row.recording,
        received_at=row.received_at,
        due_on=row.due_on,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        anonymised_at=row.anonymised_at,
    )


def complaint_event_record(row: ComplaintEvent) -> ComplaintEventRecord:
    return ComplaintEventRecord(
        at=row.at,
        by=row.by,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        owner=row.owner,
        comment=row.comment,
    )
