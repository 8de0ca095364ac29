"""Customers: caller lookup for the IVR and ACD, and the upsert the CSV import uses.

Theory of operation: a customer has one or more numbers, each stored once in canonical form
(:func:`contacts.phones.normalise_number`) as the primary key of ``customer_phones``, so
:meth:`CustomerStore.lookup` is one index probe plus one indexed query for ``last_operator``. An
unknown or withheld caller is a guest: ``None``, never an exception.

``last_operator`` is the operator of the customer's most recent answered contact: contacts linked
to the customer (``ContactStore.link_customer``) or whose caller id is one of the customer's
numbers in any spelling (:func:`contacts.phones.number_variants`), so it works before the IVR
links anything.

Example::

    customers = CustomerStore(contact_store.sessions)
    customer = await customers.lookup(caller)          # None for guests
    if customer is not None and customer.segment == "vip": ...
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import ColumnElement, Select, bindparam, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contacts.models import Contact, Customer, CustomerPhone
from contacts.phones import normalise_number, number_variants, try_normalise
from contacts.records import require_aware
from contacts.writer import ThreadReader

Clock = Callable[[], datetime]
_SLUG = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_LANGUAGE = re.compile(r"[a-z]{2}")
_CUSTOMER_ID = re.compile(r"[0-9a-f]{32}")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_customer_id() -> str:
    """32 hex digits: random, and never mistaken for a phone number (those have at most 15)."""
    return secrets.token_hex(16)


def is_customer_id(text: str) -> bool:
    return _CUSTOMER_ID.fullmatch(text) is not None


class CustomerIn(BaseModel):
    """A customer as it comes in (CSV row, API): validated and normalised.

    ``phones`` become canonical numbers (at least one); ``segment`` and ``products`` lower-case
    slugs (``"VIP"`` -> ``"vip"``); ``language`` an ISO 639-1 code; ``consents`` name -> yes/no.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    phones: tuple[str, ...] = Field(min_length=1, max_length=10)
    name: Name
    segment: str | None = None
    products: tuple[str, ...] = ()
    language: str | None = None
    consents: Mapping[str, bool] = Field(default_factory=dict)

    @field_validator("phones")
    @classmethod
    def _phones(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        numbers = tuple(dict.fromkeys(normalise_number(raw) for raw in value))
        return numbers

    @field_validator("segment")
    @classmethod
    def _segment(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _slug("segment", value)

    @field_validator("products")
    @classmethod
    def _products(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_slug("product", item) for item in value if item.strip()))

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        code = value.strip().lower()
        if not _LANGUAGE.fullmatch(code):
            raise ValueError(f"language must be a two-letter code such as 'it' or 'en', not {value!r}")
        return code

    @field_validator("consents")
    @classmethod
    def _consents(cls, value: Mapping[str, bool]) -> Mapping[str, bool]:
        return MappingProxyType({_slug("consent", key): bool(granted) for key, granted in value.items()})


def _slug(what: str, value: str) -> str:
    slug = value.strip().lower()
    if not _SLUG.fullmatch(slug):
        raise ValueError(f"{what} {value!r}: letters, digits, '-' and '_' only (at most 32)")
    return slug


@dataclass(frozen=True, kw_only=True, slots=True)
class CustomerRecord:
    """A known caller, as the IVR and the ACD see it."""

    id: str
    name: str
    segment: str | None
    products: tuple[str, ...]
    language: str | None
    consents: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    last_operator: str | None = None
    phones: tuple[str, ...] = ()

    def consented(self, purpose: str) -> bool:
        """``True`` only for an explicit yes (unknown counts as no)."""
        return self.consents.get(purpose) is True

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "segment": self.segment,
            "products": list(self.products),
            "language": self.language,
            "consents": dict(self.consents),
            "last_operator": self.last_operator,
            "phones": list(self.phones),
        }


class CustomerStore:
    """Customers on a shared session factory (``ContactStore.sessions``)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = utc_now, reader: ThreadReader | None = None
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        #: the caller lookup's thread on a SQLite file (``ContactStore.reader``); else the sessions
        self._reader = reader

    async def lookup(self, phone: str | None) -> CustomerRecord | None:
        """The customer one of whose numbers is ``phone`` (any spelling); ``None`` for guests.

        Example::

            customer = await customers.lookup("+39 333 123 4567")
            customer.last_operator          # 'op1003' or None
        """
        number = try_normalise(phone)
        if number is None:
            return None
        if self._reader is not None:
            return await self._reader.read(lambda conn: find_customer(conn, number))
        async with self._sessions() as session:
            return await session.run_sync(lambda sync: find_customer(sync.connection(), number))

    async def get(self, customer_id: str) -> CustomerRecord | None:
        async with self._sessions() as session:
            return await load_customer(session, customer_id)

    async def find(self, phone_or_id: str) -> CustomerRecord | None:
        """By customer id (32 hex digits) or by any of the customer's numbers."""
        if is_customer_id(phone_or_id):
            return await self.get(phone_or_id)
        return await self.lookup(phone_or_id)

    async def upsert(self, customer: CustomerIn) -> tuple[CustomerRecord, bool]:
        """Insert, or update the customer owning one of ``customer.phones``; ``(record, created)``.

        An update replaces name, segment, products and language, and merges consents (one not
        given keeps its answer); numbers are only ever added. ``ValueError`` (before writing
        anything) if the numbers belong to two customers.
        """
        async with self._sessions.begin() as session:
            customer_id, created = await upsert_customer(session, customer, require_aware("now", self._clock()))
        record = await self.get(customer_id)
        assert record is not None
        return record, created


#: statements of the caller lookup, built once (building one costs more than running it)
_BY_NUMBER = select(CustomerPhone.customer_id).where(CustomerPhone.number == bindparam("number"))
_CUSTOMER = select(Customer.__table__).where(Customer.__table__.c.id == bindparam("customer_id"))
_PHONES = (
    select(CustomerPhone.number)
    .where(CustomerPhone.customer_id == bindparam("customer_id"))
    .order_by(CustomerPhone.number)
)


def find_customer(conn: Connection, number: str) -> CustomerRecord | None:
    """The customer owning ``number`` (canonical form), on a synchronous connection."""
    customer_id = conn.scalar(_BY_NUMBER, {"number": number})
    return None if customer_id is None else read_customer(conn, customer_id)


async def load_customer(session: AsyncSession, customer_id: str) -> CustomerRecord | None:
    return await session.run_sync(lambda sync: read_customer(sync.connection(), customer_id))


def read_customer(conn: Connection, customer_id: str) -> CustomerRecord | None:
    """One customer with numbers and last operator, on a synchronous connection."""
    row = conn.execute(_CUSTOMER, {"customer_id": customer_id}).first()
    if row is None:
        return None
    phones = tuple(conn.scalars(_PHONES, {"customer_id": customer_id}))
    last_operator = conn.scalar(last_operator_query(customer_id, phones))
    return CustomerRecord(
        id=row.id,
        name=row.name,
        segment=row.segment,
        products=tuple(row.products or ()),
        language=row.language,
        consents=MappingProxyType(dict(row.consents or {})),
        last_operator=last_operator,
        phones=phones,
    )


def last_operator_query(customer_id: str, phones: Iterable[str]) -> Select[str | None]:
    """The operator of the customer's most recent answered contact (both columns indexed)."""
    return (
        select(Contact.operator)
        .where(customer_contacts(customer_id, phones), Contact.answered_at.is_not(None), Contact.operator.is_not(None))
        .order_by(Contact.answered_at.desc())
        .limit(1)
    )


def customer_contacts(customer_id: str | None, phones: Iterable[str]) -> ColumnElement[bool]:
    """Contacts of a customer: linked to it, or from one of its numbers in any spelling."""
    variants = sorted({variant for phone in phones for variant in number_variants(phone)})
    clauses: list[ColumnElement[bool]] = []
    if customer_id is not None:
        clauses.append(Contact.customer_id == customer_id)
    if variants:
        clauses.append(Contact.caller.in_(variants))
    if not clauses:
        raise ValueError("a customer id or at least one number is needed")
    return or_(*clauses)


async def upsert_customer(session: AsyncSession, customer: CustomerIn, now: datetime) -> tuple[str, bool]:
    """The upsert inside the caller's transaction: ``(customer id, created)``."""
    owners = set(
        await session.scalars(select(CustomerPhone.customer_id).where(CustomerPhone.number.in_(customer.phones)))
    )
    if len(owners) > 1:
        raise ValueError(f"its numbers belong to {len(owners)} different customers; fix those first")
    values: dict[str, Any] = {
        "name": customer.name,
        "segment": customer.segment,
        "products": list(customer.products),
        "language": customer.language,
        "consents": dict(customer.consents),
        "updated_at": now,
    }
    if owners:
        customer_id = owners.pop()
        row = await session.get(Customer, customer_id)
        assert row is not None
        # a consent the new data does not mention keeps its known answer
        values["consents"] = {**(row.consents or {}), **customer.consents}
        for key, value in values.items():
            setattr(row, key, value)
        created = False
    else:
        customer_id = new_customer_id()
        session.add(Customer(id=customer_id, created_at=now, **values))
        created = True
    known: set[str] = set()
    if not created:
        known = set(await session.scalars(select(CustomerPhone.number).where(CustomerPhone.customer_id == customer_id)))
    session.add_all([CustomerPhone(number=n, customer_id=customer_id) for n in customer.phones if n not in known])
    await session.flush()
    return customer_id, created


def split_list(text: str | None, separators: Sequence[str] = (";", "|")) -> tuple[str, ...]:
    """``"333 1234567; 06 12345678"`` -> two items (the CSV's way of holding a list in one cell)."""
    if not text:
        return ()
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    return tuple(item.strip() for item in text.split(separators[0]) if item.strip())
