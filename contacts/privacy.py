"""GDPR: retention purge, and access (export) and erasure for one data subject.

Theory of operation. Personal data sits in four classes, each with its own retention
(:class:`RetentionPolicy`, days in settings):

=================== ==================================================== =======================
class               what goes                                             counted from
=================== ==================================================== =======================
recordings          call recordings (``contacts.recording`` and the file) the call's start
contact_details     caller number, customer link, IVR data and digits     the call's start
complaint_audio     a complaint's recorded message (reference and file)   the complaint's closure
complaint_details   description, caller, customer link, comments          the complaint's closure
=================== ==================================================== =======================

What stays is anonymous statistics: when, how long, which path through the menus (without the
digits), outcome, queue, operator, survey answers; a complaint's category, status, dates, owner
and the who/when/from/to of its history. Open complaints are never purged.

Files go first, then the reference: a file that cannot be deleted keeps its reference (and is
reported), so the next run tries again instead of orphaning it. Work goes in batches of
:data:`BATCH` rows, one transaction each. Every purge, export and erasure writes an ``audit_log``
row: who, when, counts, and the subject as a customer id or, for a guest, a masked number.

A subject is a customer (by id or any of their numbers) or, for a caller we do not know, a bare
number: erasure and export then cover the contacts from that number (or linked to the customer)
and the complaints from that number, linked to the customer or made during one of those calls.

Example::

    report = await purge(store.sessions, now=now, policy=RetentionPolicy.from_days({"recordings": 30}),
                         files=Path("/var/spool/asterisk/recording"))
    data = await export_subject(store.sessions, "+393331234567", by="dpo", now=now)
    await erase_subject(store.sessions, customer_id, by="dpo", now=now, files=remove_via_ari)
"""

from __future__ import annotations

import asyncio
import glob
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contacts.complaint_rules import ComplaintStatus
from contacts.complaints import complaint_event_record, complaint_record
from contacts.customers import customer_contacts, is_customer_id, load_customer
from contacts.models import AuditEntry, Complaint, ComplaintEvent, Contact, Customer, CustomerPhone, Survey
from contacts.phones import mask_number, normalise_number
from contacts.records import IvrStep, SurveyRecord, require_aware
from contacts.store import contact_record

#: Deletes one recording by its stored reference; ``True`` if something was deleted, ``False`` if
#: it was already gone; raises (``OSError``, ``ValueError``) if it could not. Called in a worker
#: thread, so it may block. :func:`folder_remover` makes one for a folder.
RemoveFile = Callable[[str], bool]
BATCH = 500
_REFERENCE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@/-]{0,254}")


class ErasureError(Exception):
    """Erasure stopped before changing the database (e.g. a recording could not be deleted)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RetentionPolicy:
    """Days each class of personal data is kept; defaults are assumptions for the DPO to set."""

    recordings: int = 90
    contact_details: int = 365
    complaint_audio: int = 730
    complaint_details: int = 3650

    def __post_init__(self) -> None:
        for item in fields(self):
            days = getattr(self, item.name)
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise ValueError(f"retention for {item.name} must be a whole number of days >= 1, not {days!r}")

    @classmethod
    def from_days(cls, days: Mapping[str, int]) -> RetentionPolicy:
        """The defaults with ``days`` applied: ``from_days({"recordings": 30})``; unknown classes raise."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(days) - known)
        if unknown:
            raise ValueError(f"unknown retention class {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**dict(days))

    def to_json_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


@dataclass(frozen=True, kw_only=True, slots=True)
class PurgeReport:
    """What a purge did; ``failed`` names the recording references it could not delete."""

    recordings_deleted: int = 0
    contacts_anonymised: int = 0
    complaint_audio_deleted: int = 0
    complaints_anonymised: int = 0
    files_missing: int = 0
    failed: Mapping[str, str] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "recordings_deleted": self.recordings_deleted,
            "contacts_anonymised": self.contacts_anonymised,
            "complaint_audio_deleted": self.complaint_audio_deleted,
            "complaints_anonymised": self.complaints_anonymised,
            "files_missing": self.files_missing,
            "failed": dict(self.failed),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ErasureReport:
    subject: str  # customer id, or the masked number of a guest
    customer_deleted: bool
    contacts_anonymised: int
    complaints_anonymised: int
    files_deleted: int

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "customer_deleted": self.customer_deleted,
            "contacts_anonymised": self.contacts_anonymised,
            "complaints_anonymised": self.complaints_anonymised,
            "files_deleted": self.files_deleted,
        }


def folder_remover(root: Path) -> RemoveFile:
    """Delete ``<root>/<reference>`` and ``<root>/<reference>.*`` (Asterisk stores a recording
    as its name plus the format's extension). References that are absolute or climb out with
    ``..`` are refused, and a missing ``root`` is an error, not "already gone": a wrong folder in
    the settings must not clear references to recordings that still exist elsewhere."""
    base = root.resolve()

    def remove(reference: str) -> bool:
        if not _REFERENCE.fullmatch(reference) or ".." in reference.split("/"):
            raise ValueError(f"refusing to delete recording reference {reference!r}")
        if not base.is_dir():
            raise FileNotFoundError(f"recordings folder {base} does not exist (UNICO_RECORDING_SPOOL)")
        target = base / reference
        found = [target] if target.is_file() else []
        found += [p for p in target.parent.glob(glob.escape(target.name) + ".*") if p.is_file()]
        for path in found:
            path.unlink(missing_ok=True)
        return bool(found)

    return remove


def _remover(files: RemoveFile | Path) -> RemoveFile:
    return folder_remover(files) if isinstance(files, Path) else files


async def _remove_all(remove: RemoveFile, references: Iterable[str]) -> tuple[set[str], int, dict[str, str]]:
    """(references now gone, how many were already missing, failures by reference)."""
    gone: set[str] = set()
    missing = 0
    failed: dict[str, str] = {}
    for reference in dict.fromkeys(references):
        try:
            deleted = await asyncio.to_thread(remove, reference)
        except (OSError, ValueError) as exc:
            failed[reference] = str(exc) or type(exc).__name__
            continue
        gone.add(reference)
        missing += not deleted
    return gone, missing, failed


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def _without_digits(path: Sequence[IvrStep] | None) -> list[dict[str, Any]]:
    return [{**step, "digits": None} for step in path or ()]


def _add_audit(
    session: AsyncSession, at: datetime, actor: str, action: str, subject: str | None, detail: Mapping[str, Any]
) -> None:
    session.add(AuditEntry(at=at, actor=actor, action=action, subject=subject, detail=dict(detail)))


async def _anonymise_contacts(
    session: AsyncSession, rows: Sequence[tuple[str, Any]], now: datetime, *, drop_recording: bool
) -> None:
    """Clear the personal columns of ``(id, ivr_path)`` rows (one UPDATE by primary key each)."""
    if not rows:
        return
    extra: dict[str, Any] = {"recording": None} if drop_recording else {}
    await session.execute(
        update(Contact),
        [
            {
                "id": contact_id,
                "caller": None,
                "customer_id": None,
                "data": {},
                "ivr_path": _without_digits(path),
                "anonymised_at": now,
                **extra,
            }
            for contact_id, path in rows
        ],
    )


async def _anonymise_complaints(session: AsyncSession, numbers: Sequence[str], now: datetime, by: str) -> None:
    if not numbers:
        return
    await session.execute(
        update(Complaint)
        .where(Complaint.number.in_(numbers))
        .values(description=None, recording=None, caller=None, customer_id=None, anonymised_at=now, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    await session.execute(
        update(ComplaintEvent)
        .where(ComplaintEvent.complaint_number.in_(numbers))
        .values(comment=None)
        .execution_options(synchronize_session=False)
    )
    found = await session.execute(select(Complaint.number, Complaint.status).where(Complaint.number.in_(numbers)))
    statuses = {number: status for number, status in found}
    session.add_all(
        ComplaintEvent(
            complaint_number=number,
            at=now,
            by=by,
            action="anonymised",
            from_status=statuses[number],
            to_status=statuses[number],
        )
        for number in numbers
    )


# -- retention ---------------------------------------------------------------------------------


async def purge(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    policy: RetentionPolicy,
    files: RemoveFile | Path,
    by: str = "retention",
) -> PurgeReport:
    """Delete or anonymise what is older than ``policy`` allows at ``now``; see the module doc.

    Safe to run again at any time (nightly): what is done is not done twice.
    """
    now = require_aware("now", now)
    remove = _remover(files)
    failed: dict[str, str] = {}
    missing = 0

    # recordings: files first, then the references that are gone
    recordings_deleted = 0
    cutoff = now - timedelta(days=policy.recordings)
    last = ""
    while True:
        async with sessions() as session:
            batch = await session.execute(
                select(Contact.id, Contact.recording)
                .where(Contact.recording.is_not(None), Contact.started_at < cutoff, Contact.id > last)
                .order_by(Contact.id)
                .limit(BATCH)
            )
            rows = [(contact_id, recording) for contact_id, recording in batch if recording is not None]
        if not rows:
            break
        last = rows[-1][0]
        gone, gone_missing, batch_failed = await _remove_all(remove, (r for _, r in rows))
        missing += gone_missing
        failed.update(batch_failed)
        done = [contact_id for contact_id, recording in rows if recording in gone]
        if done:
            async with sessions.begin() as session:
                await session.execute(
                    update(Contact).where(Contact.id.in_(done)).values(recording=None),
                    execution_options={"synchronize_session": False},
                )
        recordings_deleted += len(done)

    # contact details
    contacts_anonymised = 0
    cutoff = now - timedelta(days=policy.contact_details)
    while True:
        async with sessions.begin() as session:
            found = await session.execute(
                select(Contact.id, Contact.ivr_path)
                .where(Contact.anonymised_at.is_(None), Contact.started_at < cutoff)
                .order_by(Contact.id)
                .limit(BATCH)
            )
            rows = [(contact_id, path) for contact_id, path in found]
            if not rows:
                break
            # A recording still kept stays: its own retention deletes it, file first.
            await _anonymise_contacts(session, rows, now, drop_recording=False)
            contacts_anonymised += len(rows)

    # complaint audio, counted from closure
    complaint_audio_deleted = 0
    cutoff = now - timedelta(days=policy.complaint_audio)
    last = ""
    while True:
        async with sessions() as session:
            batch = await session.execute(
                select(Complaint.number, Complaint.recording)
                .where(
                    Complaint.recording.is_not(None),
                    Complaint.status == ComplaintStatus.CLOSED.value,
                    Complaint.closed_at < cutoff,
                    Complaint.number > last,
                )
                .order_by(Complaint.number)
                .limit(BATCH)
            )
            audio = [(number, recording) for number, recording in batch if recording is not None]
        if not audio:
            break
        last = audio[-1][0]
        gone, gone_missing, batch_failed = await _remove_all(remove, (r for _, r in audio))
        missing += gone_missing
        failed.update(batch_failed)
        done = [number for number, recording in audio if recording in gone]
        if done:
            async with sessions.begin() as session:
                await session.execute(
                    update(Complaint).where(Complaint.number.in_(done)).values(recording=None, updated_at=now),
                    execution_options={"synchronize_session": False},
                )
        complaint_audio_deleted += len(done)

    # complaint details, counted from closure; a complaint whose audio is still there waits for it
    complaints_anonymised = 0
    cutoff = now - timedelta(days=policy.complaint_details)
    while True:
        async with sessions.begin() as session:
            numbers = list(
                await session.scalars(
                    select(Complaint.number)
                    .where(
                        Complaint.anonymised_at.is_(None),
                        Complaint.status == ComplaintStatus.CLOSED.value,
                        Complaint.closed_at < cutoff,
                        Complaint.recording.is_(None),
                    )
                    .order_by(Complaint.number)
                    .limit(BATCH)
                )
            )
            if not numbers:
                break
            await _anonymise_complaints(session, numbers, now, by)
            complaints_anonymised += len(numbers)

    report = PurgeReport(
        recordings_deleted=recordings_deleted,
        contacts_anonymised=contacts_anonymised,
        complaint_audio_deleted=complaint_audio_deleted,
        complaints_anonymised=complaints_anonymised,
        files_missing=missing,
        failed=failed,
    )
    async with sessions.begin() as session:
        _add_audit(session, now, by, "purge", None, {**report.to_json_dict(), "policy": policy.to_json_dict()})
    return report


# -- access and erasure --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Subject:
    customer_id: str | None
    numbers: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.customer_id or mask_number(self.numbers[0])

    def contacts(self) -> ColumnElement[bool]:
        return customer_contacts(self.customer_id, self.numbers)

    def complaints(self) -> ColumnElement[bool]:
        """Linked to the customer, from one of the numbers, or made during one of their calls
        (a withheld caller's IVR complaint)."""
        clauses: list[ColumnElement[bool]] = [Complaint.contact_id.in_(select(Contact.id).where(self.contacts()))]
        if self.customer_id is not None:
            clauses.append(Complaint.customer_id == self.customer_id)
        if self.numbers:
            clauses.append(Complaint.caller.in_(self.numbers))
        return or_(*clauses)


async def _subject(session: AsyncSession, phone_or_id: str) -> _Subject | None:
    """A customer by id or number; a bare (normalised) number for an unknown caller; ``None`` for
    an unknown customer id. ``ValueError`` for something that is neither."""
    if is_customer_id(phone_or_id):
        if await session.get(Customer, phone_or_id) is None:
            return None
        customer_id: str | None = phone_or_id
    else:
        try:
            number = normalise_number(phone_or_id)
        except ValueError:
            raise ValueError("neither a customer id (32 hex digits) nor a telephone number") from None
        customer_id = await session.scalar(select(CustomerPhone.customer_id).where(CustomerPhone.number == number))
        if customer_id is None:
            return _Subject(None, (number,))
    phones = tuple(await session.scalars(select(CustomerPhone.number).where(CustomerPhone.customer_id == customer_id)))
    return _Subject(customer_id, phones)


async def export_subject(
    sessions: async_sessionmaker[AsyncSession], phone_or_id: str, *, by: str, now: datetime
) -> dict[str, Any] | None:
    """Everything stored about one subject, as JSON-ready data (GDPR Art. 15); ``None`` for an
    unknown customer id. Recordings are listed by reference (the audio itself is fetched from the
    recordings folder). The export is written to the audit log."""
    now = require_aware("now", now)
    async with sessions.begin() as session:
        subject = await _subject(session, phone_or_id)
        if subject is None:
            return None
        customer = None if subject.customer_id is None else await load_customer(session, subject.customer_id)
        contacts = list(
            await session.scalars(select(Contact).where(subject.contacts()).order_by(Contact.started_at, Contact.id))
        )
        complaints = list(
            await session.scalars(
                select(Complaint).where(subject.complaints()).order_by(Complaint.received_at, Complaint.number)
            )
        )
        events = list(
            await session.scalars(
                select(ComplaintEvent)
                .where(ComplaintEvent.complaint_number.in_([c.number for c in complaints]))
                .order_by(ComplaintEvent.at, ComplaintEvent.id)
            )
        )
        surveys = list(
            await session.scalars(
                select(Survey).where(Survey.contact_id.in_([c.id for c in contacts])).order_by(Survey.contact_id)
            )
        )
        result: dict[str, Any] = {
            "exported_at": now.isoformat(),
            "subject": {"customer_id": subject.customer_id, "numbers": list(subject.numbers)},
            "customer": None if customer is None else customer.to_json_dict(),
            "contacts": [contact_record(row).to_json_dict() for row in contacts],
            "complaints": [
                {
                    **complaint_record(row).to_json_dict(),
                    "history": [
                        complaint_event_record(e).to_json_dict() for e in events if e.complaint_number == row.number
                    ],
                }
                for row in complaints
            ],
            "surveys": [
                SurveyRecord(
                    contact_id=s.contact_id, score=s.score, solved=s.solved, recorded_at=s.recorded_at
                ).to_json_dict()
                for s in surveys
            ],
        }
        _add_audit(
            session,
            now,
            by,
            "export",
            subject.label,
            {"contacts": len(contacts), "complaints": len(complaints), "surveys": len(surveys)},
        )
    return result


async def erase_subject(
    sessions: async_sessionmaker[AsyncSession],
    phone_or_id: str,
    *,
    by: str,
    now: datetime,
    files: RemoveFile | Path,
) -> ErasureReport | None:
    """Remove one subject's personal data, keeping anonymous statistics (GDPR Art. 17).

    The customer and their numbers are deleted; their contacts keep times, path (without digits)
    and outcome but lose caller number, customer link, IVR data and recording; their complaints
    keep category, status, dates and history (who/when/from/to) but lose description, caller,
    customer link, recording and comments. Recordings are deleted first; if one cannot be, this
    raises :class:`ErasureError` and the database is untouched (run it again once fixed).
    ``None`` for an unknown customer id. Idempotent; audited as ``erase`` by ``by``.
    """
    now = require_aware("now", now)
    async with sessions() as session:
        subject = await _subject(session, phone_or_id)
        if subject is None:
            return None
        found = await session.execute(select(Contact.id, Contact.ivr_path, Contact.recording).where(subject.contacts()))
        contacts = [(contact_id, path, recording) for contact_id, path, recording in found]
        found_complaints = await session.execute(
            select(Complaint.number, Complaint.recording).where(subject.complaints())
        )
        complaints = [(number, recording) for number, recording in found_complaints]
    references = sorted({r for *_, r in contacts if r is not None} | {r for _, r in complaints if r is not None})
    gone, missing, failed = await _remove_all(_remover(files), references)
    if failed:
        reasons = "; ".join(f"{reference}: {reason}" for reference, reason in sorted(failed.items()))
        raise ErasureError(f"could not delete {len(failed)} recording(s), nothing erased: {reasons}")
    async with sessions.begin() as session:
        await _anonymise_contacts(session, [(c, path) for c, path, _ in contacts], now, drop_recording=True)
        await _anonymise_complaints(session, [number for number, _ in complaints], now, by)
        deleted = False
        if subject.customer_id is not None:
            await session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id == subject.customer_id))
            result = await session.execute(delete(Customer).where(Customer.id == subject.customer_id))
            deleted = _rowcount(result) == 1
        report = ErasureReport(
            subject=subject.label,
            customer_deleted=deleted,
            contacts_anonymised=len(contacts),
            complaints_anonymised=len(complaints),
            files_deleted=len(gone) - missing,
        )
        _add_audit(session, now, by, "erase", subject.label, report.to_json_dict())
    return report
