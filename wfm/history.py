"""Contact history as offered calls and handle time per queue, day and interval.

Theory of operation. Everything the planner reads becomes one :class:`IntervalTable`: per queue, a
``days x slots`` grid in local wall-clock time (see :mod:`wfm.opening`) of offered calls, the sum
of known handle seconds and how many calls that sum covers. Intervals nobody called in are zeros,
not missing rows, so a quiet Sunday or a night counts as "no traffic" rather than "no data".

Three sources, parsed once here:

* the contacts database: a contact is *offered* to a queue when the ACD queued it (``queued_at``
  set), in the interval of ``queued_at``; its handle time is ``ended_at - answered_at`` plus the
  queue's configured wrap-up;
* a CSV file ``timestamp,queue,offered,aht`` (extra columns are ignored, ``aht`` may be empty);
  errors name ``file:line``;
* JSON rows of the same shape (the admin API); errors name ``history[12].offered``.

A timestamp without offset is local time in the plan's zone; one with an offset is converted.
Rows finer than the interval (5-minute data, 15-minute plan) add up into their interval.

Example::

    table = read_interval_csv(Path("history.csv"), interval_minutes=30, zone=ZoneInfo("Europe/Rome"))
    table.offered["general"].shape      # (56, 48): 8 weeks of 30-minute slots
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from contacts.db import make_engine
from contacts.models import Contact
from wfm.errors import PlanInputError
from wfm.opening import MINUTES_PER_DAY

FloatArray = npt.NDArray[np.float64]
QUEUE_NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
CSV_COLUMNS = ("timestamp", "queue", "offered", "aht")
#: more days than this in one table is a mistake (a timestamp in the wrong century), not a history
MAX_DAYS = 3 * 366


class IntervalRow(BaseModel):
    """One row of history or forecast: ``offered`` calls in the interval starting at ``timestamp``
    for ``queue``, with their mean handle time ``aht`` in seconds when known."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    timestamp: datetime
    queue: Annotated[str, Field(pattern=QUEUE_NAME)]
    offered: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    aht: Annotated[float | None, Field(ge=0, allow_inf_nan=False)] = None


class QueuedContact(Protocol):
    """What the history needs of a contact; :class:`contacts.ContactRecord` has it."""

    @property
    def queue(self) -> str | None: ...
    @property
    def queued_at(self) -> datetime | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class QueuedCall:
    """The four columns of a queued contact, as read from the database."""

    queue: str | None
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True, eq=False)
class IntervalTable:
    """Per queue, ``days x slots`` arrays from ``first_day`` on, in local time of ``zone``."""

    interval_minutes: int
    first_day: date
    days: int
    zone: ZoneInfo
    offered: Mapping[str, FloatArray]
    handle_seconds: Mapping[str, FloatArray]
    handled: Mapping[str, FloatArray]
    notes: tuple[str, ...] = ()

    @property
    def slots_per_day(self) -> int:
        return MINUTES_PER_DAY // self.interval_minutes

    @property
    def dates(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    def days_slice(self, start: int, stop: int) -> IntervalTable:
        """The same table cut to days ``start`` .. ``stop - 1`` (for a held-out week)."""
        return IntervalTable(
            interval_minutes=self.interval_minutes,
            first_day=self.first_day + timedelta(days=start),
            days=stop - start,
            zone=self.zone,
            offered={q: a[start:stop] for q, a in self.offered.items()},
            handle_seconds={q: a[start:stop] for q, a in self.handle_seconds.items()},
            handled={q: a[start:stop] for q, a in self.handled.items()},
            notes=self.notes,
        )


@dataclass
class _Accumulator:
    interval_minutes: int
    zone: ZoneInfo
    cells: dict[tuple[str, date, int], list[float]] = field(default_factory=dict)
    granularity: int = MINUTES_PER_DAY

    def add(self, queue: str, moment: datetime, offered: float, handle_seconds: float, handled: float) -> None:
        local = moment.astimezone(self.zone) if moment.tzinfo is not None else moment
        minute = local.hour * 60 + local.minute
        self.granularity = math.gcd(self.granularity, minute)
        cell = self.cells.setdefault((queue, local.date(), minute // self.interval_minutes), [0.0, 0.0, 0.0])
        cell[0] += offered
        cell[1] += handle_seconds
        cell[2] += handled

    def build(self, first_day: date | None, last_day: date | None, notes: Sequence[str]) -> IntervalTable:
        days_seen = [day for _, day, _ in self.cells]
        first = first_day or (min(days_seen) if days_seen else None)
        last = last_day or (max(days_seen) if days_seen else None)
        if first is None or last is None:
            raise PlanInputError(["no traffic in the history: nothing to plan from"])
        if last < first:
            raise PlanInputError([f"history ends ({last}) before it starts ({first})"])
        days = (last - first).days + 1
        if days > MAX_DAYS:
            raise PlanInputError([f"history spans {days} days ({first} to {last}); at most {MAX_DAYS} are accepted"])
        slots = MINUTES_PER_DAY // self.interval_minutes
        queues = sorted({queue for queue, _, _ in self.cells})
        arrays = {q: np.zeros((3, days, slots)) for q in queues}
        for (queue, day, slot), values in self.cells.items():
            index = (day - first).days
            if 0 <= index < days:
                arrays[queue][:, index, slot] += values
        notes = list(notes)
        if days_seen and self.granularity > self.interval_minutes:
            notes.append(
                f"every timestamp is on a {self.granularity}-minute boundary but the plan uses "
                f"{self.interval_minutes}-minute intervals: each row's calls all land in the first "
                f"{self.interval_minutes} minutes; plan with --interval {self.granularity} if the rows are "
                f"{self.granularity}-minute totals"
            )
        return IntervalTable(
            interval_minutes=self.interval_minutes,
            first_day=first,
            days=days,
            zone=self.zone,
            offered={q: a[0] for q, a in arrays.items()},
            handle_seconds={q: a[1] for q, a in arrays.items()},
            handled={q: a[2] for q, a in arrays.items()},
            notes=tuple(notes),
        )


def table_from_rows(
    rows: Iterable[tuple[str, IntervalRow]],
    *,
    interval_minutes: int,
    zone: ZoneInfo,
    first_day: date | None = None,
    last_day: date | None = None,
) -> IntervalTable:
    """Build a table from validated rows, each with where it came from (for duplicate errors)."""
    accumulator = _Accumulator(interval_minutes, zone)
    seen: dict[tuple[str, datetime], str] = {}
    problems: list[str] = []
    for where, row in rows:
        moment = row.timestamp if row.timestamp.tzinfo is not None else row.timestamp.replace(tzinfo=zone)
        key = (row.queue, moment)
        if key in seen:
            problems.append(
                f"{where}: queue {row.queue!r} at {row.timestamp.isoformat()} is already given at {seen[key]}"
            )
            continue
        seen[key] = where
        known = row.offered if row.aht is not None else 0.0
        accumulator.add(row.queue, moment, row.offered, (row.aht or 0.0) * known, known)
    if problems:
        raise PlanInputError(problems)
    return accumulator.build(first_day, last_day, ())


def read_interval_csv(path: Path, *, interval_minutes: int, zone: ZoneInfo) -> IntervalTable:
    """Read ``timestamp,queue,offered[,aht]`` rows; every bad row is reported as ``file:line: ...``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanInputError([f"{path}: cannot read: {exc}"]) from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [name for name in CSV_COLUMNS[:3] if name not in header]
    if missing:
        raise PlanInputError(
            [f"{path}:1: missing column(s) {', '.join(missing)}; the header must name timestamp,queue,offered[,aht]"]
        )
    rows: list[tuple[str, IntervalRow]] = []
    problems: list[str] = []
    for record in reader:
        where = f"{path}:{reader.line_num}"
        if None in record:
            problems.append(f"{where}: more fields than the header has")
            continue
        values: dict[str, Any] = {name: (record.get(name) or "").strip() for name in CSV_COLUMNS if name in header}
        if not values.get("aht"):
            values["aht"] = None
        try:
            rows.append((where, IntervalRow.model_validate(values)))
        except ValidationError as exc:
            problems.extend(f"{where}: {_describe(err)}" for err in exc.errors())
    if problems:
        raise PlanInputError(problems)
    return table_from_rows(rows, interval_minutes=interval_minutes, zone=zone)


def rows_from_json(items: object, *, name: str) -> list[tuple[str, IntervalRow]]:
    """Validate JSON rows (the API's ``history`` or ``forecast``); errors read ``history[3].aht: ...``."""
    if not isinstance(items, list):
        raise PlanInputError([f"{name}: must be a list of {{timestamp, queue, offered, aht}} objects"])
    rows: list[tuple[str, IntervalRow]] = []
    problems: list[str] = []
    for i, item in enumerate(items):
        where = f"{name}[{i}]"
        try:
            rows.append((where, IntervalRow.model_validate(item)))
        except ValidationError as exc:
            problems.extend(f"{where}{_path(err['loc'])}: {_message(err)}" for err in exc.errors())
    if problems:
        raise PlanInputError(problems)
    return rows


def table_from_contacts(
    contacts: Iterable[QueuedContact],
    *,
    interval_minutes: int,
    zone: ZoneInfo,
    first_day: date,
    last_day: date,
    wrapup: Mapping[str, float] | None = None,
) -> IntervalTable:
    """Offered calls and handle time per queue from contact records (queued ones only).

    Handle time is talk time (``ended_at - answered_at``) plus the queue's wrap-up seconds; a
    contact still open or never answered counts as offered without a handle time.
    """
    accumulator = _Accumulator(interval_minutes, zone)
    skipped = 0
    wrapup = wrapup or {}
    for contact in contacts:
        if contact.queued_at is None:
            continue
        if contact.queue is None:
            skipped += 1
            continue
        handle, known = 0.0, 0.0
        if contact.answered_at is not None and contact.ended_at is not None:
            talk = (contact.ended_at - contact.answered_at).total_seconds()
            if talk >= 0:
                handle, known = talk + wrapup.get(contact.queue, 0.0), 1.0
        accumulator.add(contact.queue, contact.queued_at, 1.0, handle, known)
    notes = [f"{skipped} queued contact(s) without a queue name were left out"] if skipped else []
    table = accumulator.build(first_day, last_day, notes)
    return table


async def load_queued_calls(url: str, *, since: datetime, until: datetime) -> list[QueuedCall]:
    """The queued contacts with ``since <= queued_at < until`` (aware datetimes), as plain values."""
    # A read-only column select: the four values leave as QueuedCall, never as ORM objects.
    statement = (
        select(Contact.queue, Contact.queued_at, Contact.answered_at, Contact.ended_at)
        .where(Contact.queued_at >= since, Contact.queued_at < until)
        .order_by(Contact.queued_at)
    )
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(statement)
            return [QueuedCall(queue=q, queued_at=at, answered_at=ans, ended_at=end) for q, at, ans, end in result]
    finally:
        await engine.dispose()


def _path(loc: Sequence[int | str]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field (expected timestamp, queue, offered, aht)"
    if err["type"] == "missing":
        return "required field is missing"
    return str(err["msg"]).removeprefix("Value error, ")


def _describe(err: Any) -> str:
    field_name = ".".join(str(p) for p in err["loc"])
    value = err.get("input")
    shown = f" (got {value!r})" if isinstance(value, str) and err["type"] != "missing" else ""
    return f"{field_name}: {_message(err)}{shown}"


__all__ = [
    "IntervalRow",
    "IntervalTable",
    "QueuedCall",
    "QueuedContact",
    "load_queued_calls",
    "read_interval_csv",
    "rows_from_json",
    "table_from_contacts",
    "table_from_rows",
]
