"""ORM tables: contact records, parcels, customers, complaints, surveys and the audit log.

Theory of operation: one ``contacts`` row per call leg, inserted when the call enters Stasis and
closed once when it ends. The row already has every column the roadmap needs (queueing, operator,
wrap-up, recording), so later features fill columns instead of migrating. The ORM classes stay
inside this package; callers get frozen records (:mod:`contacts.records`,
:mod:`contacts.customers`, :mod:`contacts.complaints`).

Customers (migration 0003) are found by number through ``customer_phones`` (one row per
canonical number, the primary key, so a lookup is one index probe). ``contacts.customer_id`` is a
plain indexed column, not a foreign key: adding a foreign key would make SQLite rebuild the whole
contacts table on upgrade, and erasure clears the link explicitly anyway. Complaints carry their
history in ``complaint_events``; ``audit_log`` records who exported, erased, purged or imported
personal data.

Portability: the same schema runs on SQLite (single box) and PostgreSQL. SQLite has no timezone
type, so :class:`UTCDateTime` stores naive UTC there and hands back aware UTC everywhere.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

# Deterministic constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL: comparable and indexable, for reporting queries later on.
JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts and only returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}; the records layer stores aware UTC only")
        value = value.astimezone(UTC)
        # SQLite's DateTime writes the wall-clock fields and drops tzinfo, so normalise first;
        # fixed-width UTC text also keeps ORDER BY started_at chronological.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Contact(Base):
    """One call leg, from entering the IVR to hang-up."""

    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # our call id
    channel_id: Mapped[str] = mapped_column(String(128))  # the Asterisk channel id
    caller: Mapped[str | None] = mapped_column(String(64))  # None when withheld
    dialled: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ivr_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ivr_path: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    queue: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[str | None] = mapped_column(String(32))
    operator: Mapped[str | None] = mapped_column(String(64))
    routing_reason: Mapped[str | None] = mapped_column(Text)
    disposition: Mapped[str | None] = mapped_column(String(64))
    wrapup_code: Mapped[str | None] = mapped_column(String(64))
    recording: Mapped[str | None] = mapped_column(String(255))  # a reference, not the audio
    outcome: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    node: Mapped[str | None] = mapped_column(String(64))  # controller node that owned the call
    customer_id: Mapped[str | None] = mapped_column(String(32))  # customers.id, not enforced (see above)
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # erasure or retention purge
    # migration 0004, for the KPIs: the caller may stay for the survey after talking, and the
    # operator's wrap-up ends after the caller's leg; the first estimated wait announced, in seconds
    talk_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    wrapup_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    estimated_wait: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_contacts_started_at", "started_at"),
        Index("ix_contacts_caller", "caller"),
        Index("ix_contacts_customer_id", "customer_id"),
        Index("ix_contacts_operator", "operator"),
    )


class Parcel(Base):
    """Latest known status of a parcel, read by the IVR's tracking self-service."""

    __tablename__ = "parcels"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(Text)


class Customer(Base):
    """A customer known to the contact centre (imported from the operator's customer files)."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex, never a phone number
    name: Mapped[str] = mapped_column(String(200))
    segment: Mapped[str | None] = mapped_column(String(32))  # "vip", "business", ...
    products: Mapped[list[str]] = mapped_column(JSONType, default=list)
    language: Mapped[str | None] = mapped_column(String(16))
    consents: Mapped[dict[str, bool]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomerPhone(Base):
    """One canonical number (``contacts.phones.normalise_number``) of one customer."""

    __tablename__ = "customer_phones"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))

    __table_args__ = (Index("ix_customer_phones_customer_id", "customer_id"),)


class Complaint(Base):
    """One complaint, from any channel, in the single lifecycle of ``contacts.complaint_rules``."""

    __tablename__ = "complaints"

    number: Mapped[str] = mapped_column(String(16), primary_key=True)  # random digits, read out by the IVR
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    caller: Mapped[str | None] = mapped_column(String(32))  # canonical number
    description: Mapped[str | None] = mapped_column(Text)
    recording: Mapped[str | None] = mapped_column(String(255))  # a reference, not the audio
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_on: Mapped[date] = mapped_column(Date)  # last day to answer, in Italy
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # A retried write from the IVR (same call, same category) finds the first one.
        UniqueConstraint("contact_id", "category"),
        Index("ix_complaints_status_due_on", "status", "due_on"),
        Index("ix_complaints_customer_id", "customer_id"),
        Index("ix_complaints_caller", "caller"),
        Index("ix_complaints_owner", "owner"),
        Index("ix_complaints_received_at", "received_at"),
    )


class ComplaintEvent(Base):
    """The audit trail of one complaint: who did what, when, from which status to which."""

    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_number: Mapped[str] = mapped_column(ForeignKey("complaints.number", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))  # opened, assigned, comment, moved, anonymised
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    owner: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_complaint_events_complaint_number", "complaint_number"),)


class Survey(Base):
    """The post-call survey of one contact; either answer may be missing."""

    __tablename__ = "surveys"

    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[int | None] = mapped_column(SmallInteger)
    solved: Mapped[bool | None] = mapped_column(Boolean)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),)


class AuditEntry(Base):
    """Who exported, erased, purged or imported personal data; holds no personal data itself."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(64))  # a customer id or complaint number
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (Index("ix_audit_log_at", "at"),)


class AgentStateSpan(Base):
    """One interval an operator spent in one state (open while ``ended_at`` is NULL).

    Written by the ACD on every transition; the reports read occupancy and agent activity here.
    """

    __tablename__ = "agent_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))  # acd.agents.AgentState values
    reason: Mapped[str | None] = mapped_column(String(32))  # a not-ready reason
    call_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    node: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_agent_states_agent_started_at", "agent", "started_at"),
        Index("ix_agent_states_started_at", "started_at"),
        # the open spans only (one per operator): every state change closes the operator's open
        # span, and without it that read walked all the operator's history (``contacts.agent_log``)
        Index(
            "ix_agent_states_open",
            "agent",
            "started_at",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )


class ApiUser(Base):
    """A user of the REST API and the console: a role and the SHA-256 of their bearer token."""

    __tablename__ = "api_users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # admin, supervisor, operator
    token_hash: Mapped[str] = mapped_column(String(80), unique=True)
    operator: Mapped[str | None] = mapped_column(String(64))  # the operator id, for role operator
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("role IN ('admin', 'supervisor', 'operator')", name="role"),)
