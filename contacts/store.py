"""Reading and writing contact records and parcel statuses.

Theory of operation: the controller calls ``start_contact`` when a call enters Stasis, may call
``add_step`` as the caller moves through the IVR, and calls ``finish_contact`` once at hang-up.
Both writes are idempotent, because ARI events can repeat after a reconnect: a second start with
the same id is ignored, and only the first finish counts (``WHERE ended_at IS NULL``), so a late
duplicate can never overwrite the terminal outcome. On start-up the controller calls
``close_stale`` to close the rows a crashed predecessor left open.

Every method opens its own short session; nothing ORM-shaped leaves this module.

One engine per process: the store owns it, and the other stores of this package
(:class:`contacts.CustomerStore`, :class:`contacts.ComplaintStore`) and the privacy functions take
its :attr:`ContactStore.sessions` instead of opening their own, e.g.
``CustomerStore(controller.store.sessions)``.

Example::

    async with ContactStore(settings.db_url) as store:
        await store.start_contact(contact_id="c-1", channel_id="1700000000.1", caller="0612345",
                                  dialled="800100100", language="it", started_at=now)
        await store.finish_contact(contact_id="c-1", ended_at=later, outcome=Outcome.CONTAINED,
                                   ivr_path=[], data={}, language="it")
        print([r.to_json_dict() for r in await store.recent(10)])
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any, Self, cast

from sqlalchemy import ColumnElement, CursorResult, Table, Update, bindparam, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contacts.batch import Plan, transaction
from contacts.db import dialect_insert, make_engine, safe_url
from contacts.models import Contact, Parcel, Survey
from contacts.records import (
    ContactRecord,
    IvrStep,
    Outcome,
    ParcelStatus,
    SurveyRecord,
    parse_step,
    require_aware,
    require_json,
)
from contacts.writer import ThreadReader

Clock = Callable[[], datetime]

_CONTACTS = cast(Table, Contact.__table__)
#: an UPDATE of one open contact (``b_id``); the columns to set are the execution's other parameters
_OPEN_CONTACT = update(_CONTACTS).where(_CONTACTS.c.id == bindparam("b_id"), _CONTACTS.c.ended_at.is_(None))
#: the same, open or closed (talk end and the customer link may land after the call's end)
_ANY_CONTACT = update(_CONTACTS).where(_CONTACTS.c.id == bindparam("b_id"))
#: ``_start_statement`` per dialect
_START: dict[str, Any] = {}


def _start_statement(dialect: str) -> Any:
    """``INSERT .. ON CONFLICT (id) DO NOTHING`` into contacts, built once per dialect."""
    statement = _START.get(dialect)
    if statement is None:
        statement = _START[dialect] = dialect_insert(dialect, _CONTACTS).on_conflict_do_nothing(index_elements=["id"])
    return statement


def utc_now() -> datetime:
    return datetime.now(UTC)


class ContactStore:
    """Async access to the ``contacts`` and ``parcels`` tables (SQLite or PostgreSQL).

    Run :func:`contacts.db.upgrade` first; the store does not create tables.
    """

    def __init__(self, url: str | URL, *, clock: Clock = utc_now) -> None:
        self._url = url
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._reader: ThreadReader | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    def __repr__(self) -> str:
        return f"ContactStore({safe_url(self._url)!r})"

    async def open(self) -> None:
        if self._engine is None:
            self._engine = make_engine(self._url)
            self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    async def close(self) -> None:
        engine, self._engine, self._sessions = self._engine, None, None
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()
        if engine is not None:
            await engine.dispose()

    @property
    def reader(self) -> ThreadReader | None:
        """The call path's reads on a thread of their own (a SQLite file; ``None`` elsewhere):
        ``contacts.writer.ThreadReader``, made at first use, closed with the store."""
        self._maker()  # open
        if self._reader is None:
            self._reader = ThreadReader.for_url(self._url)
        return self._reader

    @property
    def url(self) -> str | URL:
        return self._url

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The session factory on this store's engine, for the other stores of the process."""
        return self._maker()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- contacts ---------------------------------------------------------------------------

    async def start_contact(self, **kwargs: Any) -> bool:
        """Record a new call leg; returns ``False`` (and changes nothing) if the id exists.
        Arguments: see :meth:`start_contact_write`."""
        return bool(await self.start_contact_write(**kwargs)())

    def start_contact_write(
        self,
        *,
        contact_id: str,
        channel_id: str,
        caller: str | None,
        dialled: str,
        language: str,
        started_at: datetime,
        node: str | None = None,
    ) -> Plan:
        """:meth:`start_contact` as a :class:`~contacts.batch.Plan` (the write-behind queue's)."""

        def run(conn: Connection) -> bool:
            if not contact_id:
                raise ValueError("contact_id must not be empty")
            values: dict[str, Any] = {
                "id": contact_id,
                "channel_id": channel_id,
                "caller": caller,
                "dialled": dialled,
                "language": language,
                "started_at": require_aware("started_at", started_at),
                "ivr_path": [],
                "data": {},
                "node": node,
            }
            return _rowcount(conn.execute(_start_statement(conn.dialect.name), values)) == 1

        return Plan(run, self._maker())

    async def add_step(self, contact_id: str, step: Mapping[str, object]) -> bool:
        """Append one IVR step to an open contact; ``False`` if it is unknown or already ended."""
        parsed = parse_step(step)
        statement = (
            update(Contact)
            .where(Contact.id == contact_id, Contact.ended_at.is_(None))
            .values(ivr_path=self._appended(parsed))
        )
        return await self._update(statement) == 1

    async def finish_contact(self, **kwargs: Any) -> bool:
        """Close a contact with its terminal outcome and full IVR path (arguments: see
        :meth:`finish_contact_write`).

        Returns ``True`` if this call closed it; ``False`` if it was already closed (the first
        outcome stays) or was never started. Optional fields left ``None`` keep their value.
        """
        return bool(await self.finish_contact_write(**kwargs)())

    def finish_contact_write(
        self,
        *,
        contact_id: str,
        ended_at: datetime,
        outcome: str,
        ivr_path: Iterable[Mapping[str, object]],
        data: Mapping[str, Any],
        language: str,
        recording: str | None = None,
        ivr_ended_at: datetime | None = None,
        queue: str | None = None,
    ) -> Plan:
        """:meth:`finish_contact` as a plan; it keeps copies of ``ivr_path`` and ``data`` (the call
        may change its own afterwards)."""
        steps, payload = list(ivr_path), dict(data)

        def run(conn: Connection) -> bool:
            if not outcome:
                raise ValueError("outcome must not be empty")
            path = [dict(parse_step(step)) for step in steps]
            require_json("data", payload)
            values: dict[str, Any] = {
                "ended_at": require_aware("ended_at", ended_at),
                "outcome": str(outcome),
                "ivr_path": path,
                "data": payload,
                "language": language,
            }
            if recording is not None:
                values["recording"] = recording
            if ivr_ended_at is not None:
                values["ivr_ended_at"] = require_aware("ivr_ended_at", ivr_ended_at)
            if queue is not None:
                values["queue"] = queue
            return _rowcount(conn.execute(_OPEN_CONTACT, {"b_id": contact_id, **values})) == 1

        return Plan(run, self._maker())

    async def update_contact(self, contact_id: str, **kwargs: Any) -> bool:
        """Fill the ACD's columns of an open contact (fields left ``None`` keep their value);
        arguments: see :meth:`update_contact_write`."""
        return bool(await self.update_contact_write(contact_id, **kwargs)())

    def update_contact_write(
        self,
        contact_id: str,
        *,
        queue: str | None = None,
        tier: str | None = None,
        operator: str | None = None,
        routing_reason: str | None = None,
        queued_at: datetime | None = None,
        answered_at: datetime | None = None,
        estimated_wait: int | None = None,
    ) -> Plan:
        """:meth:`update_contact` as a plan."""

        def run(conn: Connection) -> bool:
            values: dict[str, Any] = {}
            for name, value in (
                ("queue", queue),
                ("tier", tier),
                ("operator", operator),
                ("routing_reason", routing_reason),
            ):
                if value is not None:
                    values[name] = str(value)
            for name, stamp in (("queued_at", queued_at), ("answered_at", answered_at)):
                if stamp is not None:
                    values[name] = require_aware(name, stamp)
            if estimated_wait is not None:
                values["estimated_wait"] = max(0, int(estimated_wait))
            if not values:
                return False
            return _rowcount(conn.execute(_OPEN_CONTACT, {"b_id": contact_id, **values})) == 1

        return Plan(run, self._maker())

    async def record_talk_end(self, contact_id: str, at: datetime) -> bool:
        """The conversation with the operator ended (the contact may already be closed: the caller
        hung up first); the reports' talk time runs from ``answered_at`` to here."""
        return bool(await self.record_talk_end_write(contact_id, at)())

    def record_talk_end_write(self, contact_id: str, at: datetime) -> Plan:
        """:meth:`record_talk_end` as a plan."""
        return self._any_contact_write(contact_id, lambda: {"talk_ended_at": require_aware("at", at)})

    def _any_contact_write(self, contact_id: str, values: Callable[[], dict[str, Any]]) -> Plan:
        def run(conn: Connection) -> bool:
            return _rowcount(conn.execute(_ANY_CONTACT, {"b_id": contact_id, **values()})) == 1

        return Plan(run, self._maker())

    async def set_wrapup(self, contact_id: str, code: str, disposition: str | None) -> bool:
        """Store the operator's wrap-up code (and disposition, if given) on a contact, open or closed:
        wrap-up happens after the caller hung up. A later call replaces the code (a correction);
        ``disposition=None`` keeps the one stored. ``False`` if the contact is unknown."""
        if not code or len(code) > 64 or (disposition is not None and (not disposition or len(disposition) > 64)):
            raise ValueError("wrap-up code and disposition must be 1 to 64 characters")
        values: dict[str, Any] = {"wrapup_code": code}
        if disposition is not None:
            values["disposition"] = disposition
        return await self._update(update(Contact).where(Contact.id == contact_id).values(**values)) == 1

    async def close_stale(
        self,
        *,
        ended_at: datetime,
        outcome: str = Outcome.ERROR,
        except_ids: Collection[str] = (),
        node: str | None = None,
    ) -> int:
        """Close open contacts a crashed controller left behind; returns how many.

        ``except_ids`` are calls still alive (e.g. channels ARI still lists); ``node`` limits the
        sweep to the rows one controller node owned, so a restart never closes a peer's calls.
        """
        statement = update(Contact).where(Contact.ended_at.is_(None))
        if except_ids:
            statement = statement.where(Contact.id.not_in(list(except_ids)))
        if node is not None:
            statement = statement.where(Contact.node == node)
        return await self._update(statement.values(ended_at=require_aware("ended_at", ended_at), outcome=str(outcome)))

    async def get(self, contact_id: str) -> ContactRecord | None:
        async with self._session() as session:
            row = await session.get(Contact, contact_id)
            return None if row is None else contact_record(row)

    async def recent(self, limit: int = 20) -> list[ContactRecord]:
        """The ``limit`` most recently started contacts, newest first."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        statement = select(Contact).order_by(Contact.started_at.desc(), Contact.id.desc()).limit(limit)
        async with self._session() as session:
            return [contact_record(row) for row in await session.scalars(statement)]

    async def open_contacts(self, node: str | None = None) -> list[ContactRecord]:
        """Contacts not yet ended, oldest first; only ``node``'s when given."""
        statement = select(Contact).where(Contact.ended_at.is_(None))
        if node is not None:
            statement = statement.where(Contact.node == node)
        statement = statement.order_by(Contact.started_at, Contact.id)
        async with self._session() as session:
            return [contact_record(row) for row in await session.scalars(statement)]

    async def link_customer(self, contact_id: str, customer_id: str) -> bool:
        """Tie a contact to the customer the IVR recognised (``CustomerStore.lookup``);
        ``False`` if the contact is unknown. Idempotent."""
        return bool(await self.link_customer_write(contact_id, customer_id)())

    def link_customer_write(self, contact_id: str, customer_id: str) -> Plan:
        """:meth:`link_customer` as a plan."""
        return self._any_contact_write(contact_id, lambda: {"customer_id": customer_id})

    # -- surveys ----------------------------------------------------------------------------

    async def record_survey(
        self, contact_id: str, score: int | None, solved: bool | None, *, at: datetime | None = None
    ) -> bool:
        """Store the post-call survey of a contact; ``False`` (nothing written) if it is unknown.

        ``score`` is 1..5 or ``None`` (no answer), ``solved`` ``True``/``False``/``None``.
        Idempotent, and the first answer to each question counts: a retried write changes nothing,
        and a survey asked in two steps (``(c, 4, None)`` then ``(c, None, True)``) keeps both.

        Example::

            await store.record_survey("c-1", 5, True)
        """
        if score is not None and (isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5):
            raise ValueError(f"survey score must be 1 to 5 or None, got {score!r}")
        if solved is not None and not isinstance(solved, bool):
            raise ValueError(f"survey 'solved' must be True, False or None, got {solved!r}")
        recorded_at = require_aware("at", at if at is not None else self._clock())
        async with self._maker().begin() as session:
            if await session.get(Contact, contact_id) is None:
                return False
            statement = dialect_insert(self._dialect(), Survey).values(
                contact_id=contact_id, score=score, solved=solved, recorded_at=recorded_at
            )
            statement = statement.on_conflict_do_update(
                index_elements=["contact_id"],
                set_={
                    "score": func.coalesce(Survey.score, statement.excluded.score),
                    "solved": func.coalesce(Survey.solved, statement.excluded.solved),
                },
            )
            await session.execute(statement)
        return True

    async def survey(self, contact_id: str) -> SurveyRecord | None:
        async with self._session() as session:
            row = await session.get(Survey, contact_id)
            if row is None:
                return None
            return SurveyRecord(
                contact_id=row.contact_id, score=row.score, solved=row.solved, recorded_at=row.recorded_at
            )

    # -- parcels ----------------------------------------------------------------------------

    async def parcel_status(self, code: str) -> ParcelStatus | None:
        async with self._session() as session:
            row = await session.get(Parcel, code)
            if row is None:
                return None
            return ParcelStatus(code=row.code, status=row.status, updated_at=row.updated_at, detail=row.detail)

    async def upsert_parcel(
        self, code: str, status: str, detail: str | None = None, *, at: datetime | None = None
    ) -> ParcelStatus:
        """Insert or replace a parcel's status; ``at`` defaults to the store's clock."""
        if not code or not status:
            raise ValueError("parcel code and status must not be empty")
        updated_at = require_aware("at", at if at is not None else self._clock())
        statement = self._insert(Parcel).values(code=code, status=status, detail=detail, updated_at=updated_at)
        statement = statement.on_conflict_do_update(
            index_elements=["code"],
            set_={"status": status, "detail": detail, "updated_at": updated_at},
        )
        async with self._maker().begin() as session:
            await session.execute(statement)
        return ParcelStatus(code=code, status=status, updated_at=updated_at, detail=detail)

    # -- plumbing ---------------------------------------------------------------------------

    def _maker(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError(f"{self!r} is not open; call 'await store.open()' first")
        return self._sessions

    def _session(self) -> AsyncSession:
        return self._maker()()

    def _dialect(self) -> str:
        if self._engine is None:
            raise RuntimeError(f"{self!r} is not open; call 'await store.open()' first")
        return self._engine.dialect.name

    def _insert(self, entity: type[Contact] | type[Parcel]) -> Any:
        return dialect_insert(self._dialect(), entity)

    def _appended(self, step: IvrStep) -> ColumnElement[Any]:
        # One UPDATE that appends in the database, not read-modify-write in Python: two appends
        # racing (a retried event, a DTMF burst) can then never lose one.
        name = self._dialect()
        if name == "postgresql":
            return Contact.ivr_path.op("||")(bindparam(None, [dict(step)], type_=postgresql.JSONB()))
        # SQLite 3.31+: '$[#]' addresses the slot after the last element.
        return func.json_insert(Contact.ivr_path, "$[#]", func.json(json.dumps(step)))

    async def _update(self, statement: Update, params: Mapping[str, Any] | None = None) -> int:
        # Core on the session's connection: an ORM-enabled UPDATE goes through the bulk-update
        # machinery, which costs more than the statement (the record writes run this per call).
        # The hot writes pass a statement built once (``_OPEN_CONTACT``) and their columns as
        # parameters: the SET clause comes from the parameters' names, and no statement or cache
        # key is built per write.
        async with transaction(self._maker()) as session:
            conn = await session.connection()
            result = await conn.execute(statement, dict(params) if params is not None else None)
        return _rowcount(result)


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def contact_record(row: Contact) -> ContactRecord:
    return ContactRecord(
        id=row.id,
        channel_id=row.channel_id,
        caller=row.caller,
        dialled=row.dialled,
        language=row.language,
        started_at=row.started_at,
        ivr_ended_at=row.ivr_ended_at,
        queued_at=row.queued_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        # Written only through parse_step, so the stored shape is already an IvrStep.
        ivr_path=tuple(cast("list[IvrStep]", row.ivr_path or [])),
        queue=row.queue,
        tier=row.tier,
        operator=row.operator,
        routing_reason=row.routing_reason,
        disposition=row.disposition,
        wrapup_code=row.wrapup_code,
        recording=row.recording,
        outcome=row.outcome,
        data=MappingProxyType(dict(row.data or {})),
        node=row.node,
        customer_id=row.customer_id,
        talk_ended_at=row.talk_ended_at,
        wrapup_ended_at=row.wrapup_ended_at,
        estimated_wait=row.estimated_wait,
    )
