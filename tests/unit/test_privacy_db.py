"""Retention purge, export and erasure on SQLite and PostgreSQL (``db_url``), with a fake clock
(``now``) and recordings as files in a temporary folder."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contacts import (
    ComplaintStatus,
    ComplaintStore,
    ContactStore,
    CustomerIn,
    CustomerStore,
    ErasureError,
    Outcome,
    RetentionPolicy,
    customer_erase,
    customer_export,
    erase_subject,
    export_subject,
    folder_remover,
    make_step,
    purge,
)
from contacts.models import AuditEntry

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(recordings=30, contact_details=60, complaint_audio=90, complaint_details=365)


def _file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.wav"
    path.write_bytes(b"RIFF")
    return path


async def _call(
    store: ContactStore,
    contact_id: str,
    at: datetime,
    caller: str | None,
    *,
    recording: str | None = None,
    operator: str | None = "op1001",
) -> None:
    await store.start_contact(
        contact_id=contact_id,
        channel_id=f"ch-{contact_id}",
        caller=caller,
        dialled="803160",
        language="it",
        started_at=at,
    )
    if operator is not None:
        await store.update_contact(contact_id, operator=operator, answered_at=at + timedelta(seconds=20))
    await store.finish_contact(
        contact_id=contact_id,
        ended_at=at + timedelta(minutes=4),
        outcome=Outcome.ANSWERED,
        ivr_path=[make_step("main", "menu", "1", at=at), make_step("parcel", "input", "RR123456789IT", at=at)],
        data={"parcel_code": "RR123456789IT"},
        language="it",
        recording=recording,
        queue="postal",
    )


async def _complaint(
    complaints: ComplaintStore,
    contact_id: str,
    *,
    customer_id: str | None = None,
    caller: str | None = "3331234567",
    recording: str | None = None,
    close: bool = False,
) -> str:
    record = await complaints.open(
        contact_id=contact_id,
        customer_id=customer_id,
        caller=caller,
        category="parcels",
        recording=recording,
        channel="ivr",
        description="My parcel RR123456789IT to Via Roma 1 never arrived",
    )
    await complaints.assign(record.number, "op1001", by="sup")
    await complaints.comment(record.number, "customer lives at Via Roma 1", by="op1001")
    if close:
        await complaints.move(record.number, ComplaintStatus.IN_PROGRESS, by="op1001")
        await complaints.move(record.number, ComplaintStatus.RESOLVED, by="op1001")
        await complaints.move(record.number, ComplaintStatus.CLOSED, by="op1001")
    return record.number


async def _audit(store: ContactStore) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    async with store.sessions() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.subject, AuditEntry.detail).order_by(AuditEntry.id)
        )
        return [(actor, action, subject, detail) for actor, action, subject, detail in rows]


# -- retention ----------------------------------------------------------------------------------


async def test_given_data_of_every_age_when_purged_then_only_what_outlived_its_retention_goes(
    store: ContactStore, tmp_path: Path
) -> None:
    folder = tmp_path / "recording"
    old_audio, new_audio = _file(folder, "rec-old"), _file(folder, "rec-new")
    closed_audio, recent_audio, open_audio = (
        _file(folder, "cmp-old"),
        _file(folder, "cmp-new"),
        _file(folder, "cmp-open"),
    )
    await _call(store, "c-old", NOW - timedelta(days=61), "3331234567", recording="rec-old")  # past 30 and 60
    await _call(store, "c-mid", NOW - timedelta(days=31), "3331234567")  # past 30 only, no recording
    await _call(store, "c-new", NOW - timedelta(days=29), "3331234567", recording="rec-new")
    await store.record_survey("c-old", 5, True)
    past = ComplaintStore(store.sessions, clock=lambda: NOW - timedelta(days=400))
    old_closed = await _complaint(past, "c-old", recording="cmp-old", close=True)
    old_open = await _complaint(past, "c-mid", recording="cmp-open")
    recent = ComplaintStore(store.sessions, clock=lambda: NOW - timedelta(days=10))
    recent_closed = await _complaint(recent, "c-new", recording="cmp-new", close=True)

    report = await purge(store.sessions, now=NOW, policy=POLICY, files=folder, by="nightly")

    assert report.to_json_dict() == {
        "recordings_deleted": 1,
        "contacts_anonymised": 1,
        "complaint_audio_deleted": 1,
        "complaints_anonymised": 1,
        "files_missing": 0,
        "failed": {},
    }
    assert not old_audio.exists() and not closed_audio.exists()
    assert new_audio.exists() and recent_audio.exists() and open_audio.exists()
    old = await store.get("c-old")
    assert old is not None
    assert (old.caller, old.customer_id, old.recording, dict(old.data)) == (None, None, None, {})
    assert (old.outcome, old.operator, old.queue, old.ended_at) == (
        "answered",
        "op1001",
        "postal",
        NOW - timedelta(days=61, minutes=-4),
    )
    assert [(s["node"], s["kind"], s["digits"]) for s in old.ivr_path] == [
        ("main", "menu", None),
        ("parcel", "input", None),
    ]
    survey = await store.survey("c-old")
    assert survey is not None and (survey.score, survey.solved) == (5, True)
    for kept in ("c-mid", "c-new"):
        record = await store.get(kept)
        assert record is not None and record.caller == "3331234567" and record.ivr_path[1]["digits"]
    complaints = ComplaintStore(store.sessions)
    gone = await complaints.get(old_closed)
    assert gone is not None and (gone.description, gone.recording, gone.caller) == (None, None, None)
    assert (gone.status, gone.category, gone.anonymised_at) == (ComplaintStatus.CLOSED, "parcels", NOW)
    history = await complaints.history(old_closed)
    assert all(event.comment is None for event in history)
    assert (history[-1].by, history[-1].action) == ("nightly", "anonymised")
    for number in (old_open, recent_closed):
        kept_complaint = await complaints.get(number)
        assert kept_complaint is not None and kept_complaint.description and kept_complaint.recording
    assert [(actor, action) for actor, action, _, _ in await _audit(store)] == [("nightly", "purge")]

    again = await purge(store.sessions, now=NOW, policy=POLICY, files=folder, by="nightly")

    assert again.to_json_dict()["recordings_deleted"] == 0
    assert (again.contacts_anonymised, again.complaint_audio_deleted, again.complaints_anonymised) == (0, 0, 0)


async def test_given_a_file_that_cannot_be_deleted_when_purged_then_reference_kept_for_next_run(
    store: ContactStore, tmp_path: Path
) -> None:
    await _call(store, "c-1", NOW - timedelta(days=40), None, recording="rec-1")
    await _call(store, "c-2", NOW - timedelta(days=40), None, recording="../../etc/passwd")
    await _call(store, "c-3", NOW - timedelta(days=40), None, recording="rec-gone")

    def refusing(reference: str) -> bool:
        if reference == "rec-1":
            raise PermissionError(13, "Permission denied")
        return folder_remover(tmp_path)(reference)

    report = await purge(store.sessions, now=NOW, policy=POLICY, files=refusing)

    assert (report.recordings_deleted, report.files_missing) == (1, 1)
    assert set(report.failed) == {"rec-1", "../../etc/passwd"}
    assert "refusing" in report.failed["../../etc/passwd"]
    record = await store.get("c-1")
    assert record is not None and record.recording == "rec-1"

    _file(tmp_path, "rec-1")
    retried = await purge(store.sessions, now=NOW, policy=POLICY, files=tmp_path)
    assert retried.recordings_deleted == 1 and not (tmp_path / "rec-1.wav").exists()


async def test_given_wrong_recordings_folder_when_purged_then_nothing_cleared_and_reported(
    store: ContactStore, tmp_path: Path
) -> None:
    await _call(store, "c-1", NOW - timedelta(days=40), None, recording="rec-1")

    report = await purge(store.sessions, now=NOW, policy=POLICY, files=tmp_path / "not-mounted")

    assert report.recordings_deleted == 0 and "does not exist" in report.failed["rec-1"]
    record = await store.get("c-1")
    assert record is not None and record.recording == "rec-1"


def test_given_bad_retention_when_policy_built_then_value_error_names_it() -> None:
    assert RetentionPolicy.from_days({"recordings": 7}).recordings == 7
    with pytest.raises(ValueError, match="unknown retention class audio"):
        RetentionPolicy.from_days({"audio": 7})
    with pytest.raises(ValueError, match="recordings must be a whole number of days >= 1"):
        RetentionPolicy.from_days({"recordings": 0})


# -- export and erasure -------------------------------------------------------------------------


async def _subject_with_history(store: ContactStore, folder: Path) -> tuple[str, str, str, str]:
    """Anna: a call from her mobile (recorded, surveyed, with a complaint), a withheld call the
    IVR linked to her (with a complaint that names nobody); someone else's call and complaint."""
    customers = CustomerStore(store.sessions)
    anna, _ = await customers.upsert(CustomerIn(phones=("+39 333 1234567", "06 1234 5678"), name="Anna Verdi"))
    await customers.upsert(CustomerIn(phones=("3339999999",), name="Someone Else"))
    _file(folder, "rec-a1")
    _file(folder, "cmp-a")
    await _call(store, "a-1", NOW - timedelta(days=3), "3331234567", recording="rec-a1")  # national spelling
    await _call(store, "a-2", NOW - timedelta(days=2), None)  # withheld, linked by the IVR
    await store.link_customer("a-2", anna.id)
    await _call(store, "x-1", NOW - timedelta(days=1), "3339999999", operator="op1002")
    await store.record_survey("a-1", 2, False)
    complaints = ComplaintStore(store.sessions, clock=lambda: NOW - timedelta(days=3))
    anna_complaint = await _complaint(complaints, "a-1", customer_id=anna.id, recording="cmp-a")
    other = await _complaint(complaints, "x-1", caller="3339999999")
    later = ComplaintStore(store.sessions, clock=lambda: NOW - timedelta(days=2))
    withheld = await _complaint(later, "a-2", caller=None)
    return anna.id, anna_complaint, other, withheld


async def test_given_customer_when_exported_by_phone_or_id_then_all_their_data_and_nobody_elses(
    store: ContactStore, tmp_path: Path
) -> None:
    anna_id, anna_complaint, _, withheld = await _subject_with_history(store, tmp_path)

    by_phone = await export_subject(store.sessions, "0039 06 1234 5678", by="dpo", now=NOW)
    by_id = await export_subject(store.sessions, anna_id, by="dpo", now=NOW)

    assert by_phone is not None and by_phone == by_id
    assert json.loads(json.dumps(by_phone)) == by_phone
    assert by_phone["customer"]["name"] == "Anna Verdi" and by_phone["customer"]["last_operator"] == "op1001"
    assert [c["id"] for c in by_phone["contacts"]] == ["a-1", "a-2"]
    assert [c["number"] for c in by_phone["complaints"]] == [anna_complaint, withheld]
    complaint = by_phone["complaints"][0]
    assert complaint["description"].startswith("My parcel") and complaint["recording"] == "cmp-a"
    assert [h["action"] for h in complaint["history"]] == ["opened", "assigned", "comment"]
    assert by_phone["surveys"] == [
        {"contact_id": "a-1", "score": 2, "solved": False, "recorded_at": by_phone["surveys"][0]["recorded_at"]}
    ]
    assert "3339999999" not in json.dumps(by_phone)
    assert await export_subject(store.sessions, "f" * 32, by="dpo", now=NOW) is None
    assert [(a, action, subject) for a, action, subject, _ in await _audit(store)] == [
        ("dpo", "export", anna_id),
        ("dpo", "export", anna_id),
    ]


async def test_given_customer_when_erased_then_personal_data_gone_statistics_kept_and_audited(
    store: ContactStore, tmp_path: Path
) -> None:
    anna_id, anna_complaint, other, withheld = await _subject_with_history(store, tmp_path)

    report = await erase_subject(store.sessions, anna_id, by="dpo", now=NOW, files=tmp_path)

    assert report is not None and report.to_json_dict() == {
        "subject": anna_id,
        "customer_deleted": True,
        "contacts_anonymised": 2,
        "complaints_anonymised": 2,
        "files_deleted": 2,
    }
    assert not (tmp_path / "rec-a1.wav").exists() and not (tmp_path / "cmp-a.wav").exists()
    assert await CustomerStore(store.sessions).lookup("3331234567") is None
    for contact_id in ("a-1", "a-2"):
        record = await store.get(contact_id)
        assert record is not None
        assert (record.caller, record.customer_id, record.recording, dict(record.data)) == (None, None, None, {})
        assert (record.outcome, record.operator, record.queue) == ("answered", "op1001", "postal")
        assert all(step["digits"] is None for step in record.ivr_path)
    survey = await store.survey("a-1")
    assert survey is not None and survey.score == 2
    complaints = ComplaintStore(store.sessions)
    erased = await complaints.get(anna_complaint)
    assert erased is not None
    assert (erased.description, erased.recording, erased.caller, erased.customer_id) == (None, None, None, None)
    assert (erased.category, erased.status, erased.owner) == ("parcels", ComplaintStatus.ASSIGNED, "op1001")
    history = await complaints.history(anna_complaint)
    assert [(e.action, e.by, e.comment) for e in history] == [
        ("opened", "ivr", None),
        ("assigned", "sup", None),
        ("comment", "op1001", None),
        ("anonymised", "dpo", None),
    ]
    from_withheld_call = await complaints.get(withheld)
    assert from_withheld_call is not None and from_withheld_call.description is None
    untouched = await complaints.get(other)
    assert untouched is not None and untouched.description and untouched.caller == "+393339999999"
    someone = await store.get("x-1")
    assert someone is not None and someone.caller == "3339999999"
    after = await export_subject(store.sessions, "3331234567", by="dpo", now=NOW)
    assert after is not None and (after["customer"], after["contacts"], after["complaints"]) == (None, [], [])
    assert await erase_subject(store.sessions, anna_id, by="dpo", now=NOW, files=tmp_path) is None
    first_audit = (await _audit(store))[0]
    assert first_audit[:3] == ("dpo", "erase", anna_id)


async def test_given_unknown_caller_when_erased_by_number_then_their_contacts_anonymised(
    store: ContactStore, tmp_path: Path
) -> None:
    await _call(store, "g-1", NOW - timedelta(days=1), "+393477654321")
    await _call(store, "g-2", NOW - timedelta(days=1), "3331234567")

    report = await erase_subject(store.sessions, "3477654321", by="dpo", now=NOW, files=tmp_path)

    assert report is not None
    assert (report.subject, report.customer_deleted, report.contacts_anonymised) == ("+39 347 ***4321", False, 1)
    guest, other = await store.get("g-1"), await store.get("g-2")
    assert guest is not None and guest.caller is None
    assert other is not None and other.caller == "3331234567"


async def test_given_recording_that_cannot_be_deleted_when_erased_then_nothing_changes(
    store: ContactStore, tmp_path: Path
) -> None:
    anna_id, anna_complaint, _, _ = await _subject_with_history(store, tmp_path)

    def refusing(reference: str) -> bool:
        raise PermissionError(13, "Permission denied", reference)

    with pytest.raises(ErasureError, match="could not delete 2 recording"):
        await erase_subject(store.sessions, anna_id, by="dpo", now=NOW, files=refusing)

    assert await CustomerStore(store.sessions).get(anna_id) is not None
    complaint = await ComplaintStore(store.sessions).get(anna_complaint)
    assert complaint is not None and complaint.description is not None
    assert await _audit(store) == []


async def test_given_cli_when_export_then_erase_then_json_and_exit_codes(
    store: ContactStore, db_url: str, tmp_path: Path
) -> None:
    anna_id, *_ = await _subject_with_history(store, tmp_path)
    out, err = io.StringIO(), io.StringIO()

    assert await customer_export(db_url, "+393331234567", by="dpo", out=out, err=err) == 0
    exported = json.loads(out.getvalue())
    assert exported["customer"]["id"] == anna_id and len(exported["contacts"]) == 2
    out.seek(0)
    out.truncate()
    assert await customer_erase(db_url, anna_id, by="dpo", files=tmp_path, out=out, err=err) == 0
    assert json.loads(out.getvalue())["customer_deleted"] is True
    assert await customer_erase(db_url, anna_id, by="dpo", files=tmp_path, err=err) == 1
    assert await customer_export(db_url, "not a number", by="dpo", err=err) == 2
    assert err.getvalue().splitlines() == [f"unico: no customer {anna_id!r}", err.getvalue().splitlines()[1]]
    assert "neither a customer id (32 hex digits) nor a telephone number" in err.getvalue().splitlines()[1]


# -- single back end ----------------------------------------------------------------------------


def _unico(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unico.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_given_unico_command_when_import_export_purge_erase_then_each_wired_to_settings(tmp_path: Path) -> None:
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("phones,name,segment\n333 123 4567,Anna Verdi,VIP\n", encoding="utf-8")
    env = {
        "UNICO_STATE_DIR": str(tmp_path / "state"),
        "UNICO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'state' / 'unico.db'}",
        "UNICO_RECORDING_SPOOL": str(tmp_path / "spool"),
        "UNICO_RETENTION_DAYS": '{"recordings": 7}',
    }

    imported = _unico("customers", "import", str(csv_file), env=env)
    exported = _unico("customer", "export", "+393331234567", env=env)
    purged = _unico("purge", env=env)
    erased = _unico("customer", "erase", "3331234567", "--by", "dpo", env=env)
    refused = _unico("purge", env={**env, "UNICO_RETENTION_DAYS": '{"audio": 7}'})

    assert (imported.returncode, imported.stdout) == (0, "1 customer(s) created, 0 updated, 0 row(s) rejected\n")
    assert exported.returncode == 0 and json.loads(exported.stdout)["customer"]["segment"] == "vip"
    assert purged.returncode == 0 and json.loads(purged.stdout)["failed"] == {}
    assert json.loads(purged.stdout)["policy"]["recordings"] == 7
    assert erased.returncode == 0 and json.loads(erased.stdout)["customer_deleted"] is True
    assert refused.returncode == 2 and "UNICO_RETENTION_DAYS" in refused.stderr and "audio" in refused.stderr
