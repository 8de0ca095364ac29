"""Customers from CSV: validated row by row, written all or nothing, upserted by phone number.

The file (UTF-8, a BOM is fine; the delimiter is ``,`` or, as Italian spreadsheets write it,
``;``) has a header line with these columns, in any order:

=================== ========== ===========================================================
column              required   value
=================== ========== ===========================================================
``phones``          yes        one or more numbers (``+39...``, ``0039...`` or national),
                               separated by ``|`` (or ``;`` when the delimiter is ``,``)
``name``            yes        up to 200 characters
``segment``         no         ``vip``, ``business``, ... (case-insensitive)
``products``        no         list like ``phones``: ``conto_bancoposta|postepay``
``language``        no         ``it``, ``en``, ...
``consent_<name>``  no         ``yes``/``no`` (also ``si``, ``sì``, ``true``, ``false``,
                               ``1``, ``0``); empty means not asked
=================== ========== ===========================================================

A row whose numbers belong to a known customer updates that customer
(:meth:`contacts.customers.CustomerStore.upsert`); otherwise it creates one. A number on two lines
of the file, or numbers of two different customers on one line, reject the row. By default one
rejected row means nothing is written (the report lists every rejected line and why);
``skip_invalid=True`` writes the valid rows and reports the rest.

Example::

    with open("customers.csv", encoding="utf-8-sig", newline="") as file:
        report = await import_customers(store.sessions, file, by="admin", now=now)
    for rejected in report.rejected:
        print(f"line {rejected.line}: {rejected.reason}")
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contacts.customers import CustomerIn, split_list, upsert_customer
from contacts.models import AuditEntry
from contacts.phones import mask_number
from contacts.records import require_aware

COLUMNS = frozenset({"phones", "name", "segment", "products", "language"})
CONSENT_PREFIX = "consent_"
_YES = frozenset({"yes", "y", "si", "sì", "true", "1"})
_NO = frozenset({"no", "n", "false", "0"})


class ImportFileError(ValueError):
    """The file as a whole is unusable (no header, unknown or missing columns)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportReport:
    rows: int
    created: int
    updated: int
    rejected: tuple[Rejection, ...]
    committed: bool  # False: nothing was written

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "committed": self.committed,
            "rejected": [{"line": r.line, "reason": r.reason} for r in self.rejected],
        }


class _Rollback(Exception):
    pass


def parse_rows(lines: Iterable[str]) -> tuple[list[tuple[int, CustomerIn]], list[Rejection]]:
    """Validate every row: ``([(line, customer)], [rejection])``; file-level problems raise
    :class:`ImportFileError`. Line numbers are the file's (the header is line 1)."""
    iterator = iter(lines)
    header_line = next(iterator, "")
    if not header_line.strip():
        raise ImportFileError("the file is empty; the first line must be a header such as 'phones,name'")
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    separators = ("|",) if delimiter == ";" else (";", "|")
    reader = csv.reader(_chain(header_line, iterator), delimiter=delimiter, strict=True)
    try:
        header = [name.strip().lower().lstrip("\ufeff") for name in next(reader)]
        unknown = [name for name in header if name not in COLUMNS and not name.startswith(CONSENT_PREFIX)]
        if unknown:
            raise ImportFileError(f"unknown column(s) {', '.join(map(repr, unknown))}; known: {_known()}")
        missing = sorted({"phones", "name"} - set(header))
        if missing:
            raise ImportFileError(f"missing column(s) {', '.join(missing)}")
        if len(set(header)) != len(header):
            raise ImportFileError("a column appears twice in the header")
        valid: list[tuple[int, CustomerIn]] = []
        rejected: list[Rejection] = []
        seen: dict[str, int] = {}
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            if len(cells) != len(header):
                rejected.append(Rejection(line, f"{len(cells)} fields, the header has {len(header)}"))
                continue
            try:
                customer = _customer(dict(zip(header, cells, strict=True)), separators)
            except ValidationError as exc:
                rejected.append(Rejection(line, _reasons(exc)))
                continue
            except ValueError as exc:
                rejected.append(Rejection(line, str(exc)))
                continue
            twice = [(n, seen[n]) for n in customer.phones if n in seen]
            if twice:
                number, first = twice[0]
                rejected.append(Rejection(line, f"number {mask_number(number)} is also on line {first}"))
                continue
            seen.update(dict.fromkeys(customer.phones, line))
            valid.append((line, customer))
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    return valid, rejected


async def import_customers(
    sessions: async_sessionmaker[AsyncSession],
    lines: Iterable[str],
    *,
    by: str,
    now: datetime,
    skip_invalid: bool = False,
) -> ImportReport:
    """Validate then upsert every row in one transaction; see the module doc for the rules."""
    now = require_aware("now", now)
    valid, rejected = parse_rows(lines)
    rows = len(valid) + len(rejected)
    if rejected and not skip_invalid:
        return ImportReport(rows=rows, created=0, updated=0, rejected=tuple(rejected), committed=False)
    created = updated = 0
    try:
        async with sessions() as session, session.begin():
            for line, customer in valid:
                try:
                    _, was_created = await upsert_customer(session, customer, now)
                except ValueError as exc:  # raised before the row wrote anything
                    rejected.append(Rejection(line, str(exc)))
                    continue
                created += was_created
                updated += not was_created
            if rejected and not skip_invalid:
                raise _Rollback
            session.add(
                AuditEntry(
                    at=now,
                    actor=by,
                    action="import",
                    subject=None,
                    detail={"created": created, "updated": updated, "rejected": len(rejected)},
                )
            )
    except _Rollback:
        rejected.sort(key=lambda r: r.line)
        return ImportReport(rows=rows, created=0, updated=0, rejected=tuple(rejected), committed=False)
    rejected.sort(key=lambda r: r.line)
    return ImportReport(rows=rows, created=created, updated=updated, rejected=tuple(rejected), committed=True)


def _chain(first: str, rest: Iterable[str]) -> Iterable[str]:
    yield first
    yield from rest


def _known() -> str:
    return ", ".join([*sorted(COLUMNS), f"{CONSENT_PREFIX}<name>"])


def _customer(row: Mapping[str, str], separators: tuple[str, ...]) -> CustomerIn:
    consents: dict[str, bool] = {}
    for column, cell in row.items():
        if column.startswith(CONSENT_PREFIX) and cell.strip():
            answer = cell.strip().lower()
            if answer not in _YES | _NO:
                raise ValueError(f"{column}: {cell!r} is not yes or no")
            consents[column.removeprefix(CONSENT_PREFIX)] = answer in _YES
    return CustomerIn(
        phones=split_list(row["phones"], separators),
        name=row["name"],
        segment=row.get("segment") or None,
        products=split_list(row.get("products"), separators),
        language=row.get("language") or None,
        consents=consents,
    )


def _reasons(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "row"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
