"""Command bodies for the ``unico`` CLI; the argparse wiring lives in ``unico.cli``.

Each function returns the process exit status and never raises for a database that is down or
unreadable: it prints one line naming the (password-masked) URL to ``err`` and returns 1. Each
first brings the schema to head, as every entry point does, so they also work on a fresh install.

Example::

    status = asyncio.run(print_recent(settings.db_url, last=20, as_json=True))
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from contacts.db import current_revision, safe_url, upgrade
from contacts.records import ContactRecord, IvrStep
from contacts.store import ContactStore

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
