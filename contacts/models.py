"""ORM tables for contact records and the parcel-tracking lookup.

Theory of operation: one ``contacts`` row per call leg, inserted when the call enters Stasis and
closed once when it ends. The row already has every column the roadmap needs (queueing, operator,
wrap-up, recording), so later features fill columns instead of migrating. The ORM classes stay
inside this package; callers get :mod:`contacts.records` values.

Portability: the same schema runs on SQLite (single box) and PostgreSQL. SQLite has no timezone
type, so :class:`UTCDateTime` stores naive UTC there and hands back aware UTC everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, MetaData, String, Text
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

    __table_args__ = (
        Index("ix_contacts_started_at", "started_at"),
        Index("ix_contacts_caller", "caller"),
    )


class Parcel(Base):
    """Latest known status of a parcel, read by the IVR's tracking self-service."""

    __tablename__ = "parcels"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(Text)
