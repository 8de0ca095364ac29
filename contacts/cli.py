"""Command bodies for the ``unico`` CLI; the argparse wiring lives in ``unico.cli``.

Each function returns the process exit status and never raises for a database that is down or
unreadable: it prints one line naming the (password-masked) URL to ``err`` and returns 1. Each
first brings the schema to head, as every entry point does, so they also work on a fresh install.

Example::

    status = asyncio.run(print_recent(settings.db_url, last=20, as_json=True))
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from contacts.db import current_revision, safe_url, upgrade
from contacts.imports import ImportFileError, import_customers
from contacts.privacy import ErasureError, RemoveFile, RetentionPolicy, erase_subject, export_subject, purge
from contacts.records import ContactRecord, IvrStep
from contacts.store import ContactStore, utc_now

PATH_WIDTH = 60
_COLUMNS = ("STARTED (UTC)", "SECS", "CALLER", "DIALLED", "LANG", "OUTCOME", "PATH", "ID", "REC")


async def print_recent(url: str, last: int, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the ``last`` most recent contacts, newest first: JSON lines or a table."""
    out, err = out or sys.stdout, err or sys.stderr
    if last < 1:
        print(f"unico: --last must be at least 1, got {last}", file=err)
        return 2
    try:
        await upgrade(url)
        async with ContactStore(url) as store:
            records = await store.recent(last)
    except (SQLAlchemyError, OSError) as exc:
        return _fail(err, "cannot read contacts from", url, exc)
    if as_json:
        for record in records:
            out.write(json.dumps(record.to_json_dict(), ensure_ascii=False) + "\n")
    else:
        out.write(format_table(records))
    return 0


async def db_upgrade(url: str, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Bring the contacts schema to head and print the revision it is at."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        await upgrade(url)
        revision = await current_revision(url)
    except (SQLAlchemyError, OSError) as exc:
        return _fail(err, "cannot upgrade", url, exc)
    print(f"contacts database {safe_url(url)} at revision {revision}", file=out)
    return 0


async def parcel_set(
    url: str,
    code: str,
    status: str,
    detail: str | None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Insert or replace one parcel's tracking status (what the IVR reads to the caller)."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        await upgrade(url)
        async with ContactStore(url) as store:
            parcel = await store.upsert_parcel(code, status, detail)
    except ValueError as exc:
        print(f"unico: {exc}", file=err)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        return _fail(err, "cannot write parcel to", url, exc)
    print(json.dumps(parcel.to_json_dict(), ensure_ascii=False), file=out)
    return 0


async def customer_export(
    url: str, phone_or_id: str, *, by: str, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``unico customer export``: everything about one customer (or caller number) as JSON."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        await upgrade(url)
        async with ContactStore(url) as store:
            data = await export_subject(store.sessions, phone_or_id, by=by, now=utc_now())
    except ValueError as exc:
        print(f"unico: {exc}", file=err)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        return _fail(err, "cannot export from", url, exc)
    if data is None:
        print(f"unico: no customer {phone_or_id!r}", file=err)
        return 1
    out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    return 0


async def customer_erase(
    url: str,
    phone_or_id: str,
    *,
    by: str,
    files: RemoveFile | Path,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``unico customer erase``: remove one subject's personal data, keep anonymous statistics."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        await upgrade(url)
        async with ContactStore(url) as store:
            report = await erase_subject(store.sessions, phone_or_id, by=by, now=utc_now(), files=files)
    except ValueError as exc:
        print(f"unico: {exc}", file=err)
        return 2
    except ErasureError as exc:
        print(f"unico: {exc}", file=err)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        return _fail(err, "cannot erase in", url, exc)
    if report is None:
        print(f"unico: no customer {phone_or_id!r}", file=err)
        return 1
    print(json.dumps(report.to_json_dict(), ensure_ascii=False), file=out)
    return 0


async def customers_import(
    url: str,
    path: Path,
    *,
    by: str,
    skip_invalid: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``unico customers import FILE.csv``: exit 0 if every row went in, 1 if rows were rejected
    (with ``--skip-invalid`` the valid ones are in), 2 if the file itself is unusable."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        lines = await asyncio.to_thread(_read_lines, path)
    except OSError as exc:
        print(f"unico: cannot read {path}: {exc.strerror or exc}", file=err)
        return 2
    except UnicodeDecodeError as exc:
        print(f"unico: {path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8", file=err)
        return 2
    try:
        await upgrade(url)
        async with ContactStore(url) as store:
            report = await import_customers(store.sessions, lines, by=by, now=utc_now(), skip_invalid=skip_invalid)
    except ImportFileError as exc:
        print(f"unico: {path}: {exc}", file=err)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        return _fail(err, "cannot import into", url, exc)
    for rejected in report.rejected:
        print(f"{path}:{rejected.line}: {rejected.reason}", file=err)
    if report.committed:
        counts = f"{report.created} customer(s) created, {report.updated} updated"
        print(f"{counts}, {len(report.rejected)} row(s) rejected", file=out)
    else:
        print(
            f"nothing imported: {len(report.rejected)} row(s) rejected (--skip-invalid imports the rest)",
            file=err,
        )
    return 0 if report.committed and not report.rejected else 1


async def purge_data(
    url: str,
    *,
    policy: RetentionPolicy,
    files: RemoveFile | Path,
    by: str = "retention",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``unico purge``: apply the retention policy now; exit 1 if some recording could not go."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        await upgrade(url)
        async with ContactStore(url) as store:
            report = await purge(store.sessions, now=utc_now(), policy=policy, files=files, by=by)
    except (SQLAlchemyError, OSError) as exc:
        return _fail(err, "cannot purge", url, exc)
    print(json.dumps({**report.to_json_dict(), "policy": policy.to_json_dict()}, ensure_ascii=False), file=out)
    return 1 if report.failed else 0


def _read_lines(path: Path) -> list[str]:
    # newline="" keeps line ends inside quoted cells for the csv module; a BOM is dropped
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(file)


def format_table(records: Sequence[ContactRecord]) -> str:
    """A fixed-width table, one contact a line, header first."""
    rows = [_COLUMNS, *(_row(record) for record in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "".join(line.rstrip() + "\n" for line in lines)


def format_path(path: Sequence[IvrStep]) -> str:
    """``main:1 > parcel:123456 > goodbye``: node names with the digits keyed there."""
    # A path holds node visits plus steps about them (inputs, results, the end); show one entry a
    # visit, with every key sequence entered there.
    entries: list[str] = []
    for step in path:
        if step["kind"] == "input":
            if step["digits"] and entries:
                entries[-1] += f":{step['digits']}"
        elif step["kind"] not in ("result", "fallback", "recording", "end"):
            entries.append(step["node"])
    text = " > ".join(entries)
    return text if len(text) <= PATH_WIDTH else text[: PATH_WIDTH - 1] + "…"


def _row(record: ContactRecord) -> tuple[str, ...]:
    ended = record.ended_at
    seconds = "open" if ended is None else str(round((ended - record.started_at).total_seconds()))
    return (
        record.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        seconds,
        record.caller or "-",
        record.dialled,
        record.language,
        record.outcome or "-",
        format_path(record.ivr_path) or "-",
        record.id,
        record.recording or "-",
    )


def _fail(err: TextIO, what: str, url: str, exc: Exception) -> int:
    # The driver's message can be long and multi-line; the first line names the cause.
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"unico: {what} {safe_url(url)}: {first_line}", file=err)
    return 1
