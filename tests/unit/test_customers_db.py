"""Customers, caller lookup, surveys and the CSV import, on SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from contacts import (
    ContactStore,
    CustomerIn,
    CustomerStore,
    ImportFileError,
    Outcome,
    customers_import,
    import_customers,
    make_engine,
    upgrade,
)
from contacts.customers import last_operator_query
from contacts.models import AuditEntry, CustomerPhone

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


async def _call(
    store: ContactStore,
    contact_id: str,
    at: datetime,
    caller: str | None,
    operator: str | None = None,
    answered: bool = True,
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
        await store.update_contact(
            contact_id, operator=operator, answered_at=at + timedelta(seconds=30) if answered else None
        )
    await store.finish_contact(
        contact_id=contact_id,
        ended_at=at + timedelta(minutes=3),
        outcome=Outcome.ANSWERED if answered else Outcome.ABANDONED_QUEUE,
        ivr_path=[],
        data={},
        language="it",
    )


def _customer(*phones: str, name: str = "Maria Rossi", **extra: Any) -> CustomerIn:
    return CustomerIn(phones=phones, name=name, **extra)


def _csv(content: str) -> list[str]:
    return io.StringIO(content, newline="").readlines()


# -- lookup -------------------------------------------------------------------------------------


async def test_given_customer_with_two_numbers_when_looked_up_by_any_spelling_then_same_frozen_record(
    store: ContactStore,
) -> None:
    customers = CustomerStore(store.sessions, clock=lambda: T0)
    created, was_created = await customers.upsert(
        _customer(
            "+39 333 123 4567",
            "06 1234 5678",
            segment="VIP",
            products=("Conto_BancoPosta", "postepay"),
            language="IT",
            consents={"recording": True, "marketing": False},
        )
    )

    found = [await customers.lookup(raw) for raw in ("3331234567", "0039 333 1234567", "+390612345678")]

    assert was_created
    assert found == [created, created, created]
    record = found[0]
    assert record is not None
    assert (record.name, record.segment, record.products, record.language) == (
        "Maria Rossi",
        "vip",
        ("conto_bancoposta", "postepay"),
        "it",
    )
    assert dict(record.consents) == {"recording": True, "marketing": False}
    assert record.consented("recording") and not record.consented("marketing") and not record.consented("survey")
    assert record.phones == ("+390612345678", "+393331234567")
    assert record.last_operator is None
    with pytest.raises(AttributeError):
        record.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("caller", ["+393339999999", None, "", "anonymous"])
async def test_given_unknown_or_withheld_caller_when_looked_up_then_guest(
    store: ContactStore, caller: str | None
) -> None:
    await CustomerStore(store.sessions).upsert(_customer("3331234567"))

    assert await CustomerStore(store.sessions).lookup(caller) is None


async def test_given_answered_calls_when_looked_up_then_last_operator_is_the_latest_answered(
    store: ContactStore,
) -> None:
    customers = CustomerStore(store.sessions)
    customer, _ = await customers.upsert(_customer("+393331234567", "0612345678"))
    await _call(store, "c-1", T0, "3331234567", "op1001")  # national spelling
    await _call(store, "c-2", T0 + timedelta(days=2), "+390612345678", "op1002")  # the other number
    await _call(store, "c-3", T0 + timedelta(days=3), "3331234567", "op1003", answered=False)  # rang, not answered
    await _call(store, "c-4", T0 + timedelta(days=4), "3331234567")  # IVR only
    await _call(store, "c-5", T0 + timedelta(days=5), "3339999999", "op1009")  # someone else

    found = await customers.lookup("+393331234567")

    assert found is not None and found.last_operator == "op1002"

    # A withheld call the IVR linked to the customer counts too.
    await _call(store, "c-6", T0 + timedelta(days=6), None, "op1006")
    assert await store.link_customer("c-6", customer.id)
    assert not await store.link_customer("ghost", customer.id)
    found = await customers.lookup("0612345678")
    assert found is not None and found.last_operator == "op1006"
    linked = await store.get("c-6")
    assert linked is not None and linked.customer_id == customer.id


async def test_given_known_customer_when_upserted_again_then_updated_in_place_and_consents_merged(
    store: ContactStore,
) -> None:
    customers = CustomerStore(store.sessions)
    first, _ = await customers.upsert(_customer("3331234567", consents={"recording": True, "marketing": True}))

    second, created = await customers.upsert(
        _customer(
            "+393331234567", "0687654321", name="Maria Bianchi", segment="business", consents={"marketing": False}
        )
    )

    assert not created and second.id == first.id
    assert second.name == "Maria Bianchi" and second.segment == "business"
    assert dict(second.consents) == {"recording": True, "marketing": False}
    assert second.phones == ("+390687654321", "+393331234567")
    assert await customers.find(first.id) == second
    assert await customers.find("06 8765 4321") == second


async def test_given_numbers_of_two_customers_when_upserted_then_refused_and_nothing_changes(
    store: ContactStore,
) -> None:
    customers = CustomerStore(store.sessions)
    one, _ = await customers.upsert(_customer("3331111111", name="One"))
    two, _ = await customers.upsert(_customer("3332222222", name="Two"))

    with pytest.raises(ValueError, match="2 different customers"):
        await customers.upsert(_customer("3331111111", "3332222222", name="Both"))

    assert await customers.get(one.id) == one and await customers.get(two.id) == two


# -- surveys ------------------------------------------------------------------------------------


async def test_given_survey_when_recorded_twice_then_first_answers_kept_and_missing_ones_filled(
    store: ContactStore,
) -> None:
    await _call(store, "c-1", T0, "3331234567", "op1001")

    assert await store.record_survey("c-1", 4, None, at=T0 + timedelta(minutes=4))
    assert await store.record_survey("c-1", 4, None, at=T0 + timedelta(minutes=5))  # retried write
    assert await store.record_survey("c-1", 1, True, at=T0 + timedelta(minutes=6))  # second question

    survey = await store.survey("c-1")
    assert survey is not None
    assert (survey.score, survey.solved, survey.recorded_at) == (4, True, T0 + timedelta(minutes=4))


async def test_given_unknown_contact_or_bad_answer_when_survey_recorded_then_refused(store: ContactStore) -> None:
    await _call(store, "c-1", T0, None)

    assert not await store.record_survey("ghost", 5, True)
    for score in (0, 6, True):
        with pytest.raises(ValueError, match="1 to 5"):
            await store.record_survey("c-1", score, None)
    assert await store.survey("c-1") is None and await store.survey("ghost") is None


# -- CSV import ---------------------------------------------------------------------------------

GOOD = """phones,name,segment,products,language,consent_recording,consent_marketing
+39 333 1111111;06 1111 1111,Anna Verdi,VIP,conto_bancoposta;postepay,it,yes,no
3332222222,"Bianchi, Luca",business,,en,,sì
"""

BAD = """phones,name,segment,products,language,consent_recording
3331111111,Anna Verdi,vip,,it,yes
not-a-number,Bad Phone,,,it,
3333333333,,,,it,
3334444444,Bad Consent,,,it,maybe
3335555555,Too,Many,Fields,it,yes,extra
06 1111 1111;3331111111,Twice,,,it,
3336666666,Good Too,,,xx1,
"""


async def test_given_valid_csv_when_imported_then_customers_found_by_phone(store: ContactStore) -> None:
    report = await import_customers(store.sessions, _csv(GOOD), by="admin", now=T0)

    assert (report.committed, report.created, report.updated, report.rejected) == (True, 2, 0, ())
    customers = CustomerStore(store.sessions)
    anna = await customers.lookup("0611111111")
    luca = await customers.lookup("+393332222222")
    assert anna is not None and luca is not None
    assert (anna.name, anna.segment, anna.products, dict(anna.consents)) == (
        "Anna Verdi",
        "vip",
        ("conto_bancoposta", "postepay"),
        {"recording": True, "marketing": False},
    )
    assert (luca.name, luca.segment, luca.language, dict(luca.consents)) == (
        "Bianchi, Luca",
        "business",
        "en",
        {"marketing": True},
    )


async def test_given_semicolon_csv_when_imported_again_then_upserted_by_phone(store: ContactStore) -> None:
    await import_customers(store.sessions, _csv(GOOD), by="admin", now=T0)
    before = await CustomerStore(store.sessions).lookup("3331111111")
    italian = "phones;name;segment\n3331111111|3339999999;Anna Verdi Neri;\n"

    report = await import_customers(store.sessions, _csv(italian), by="admin", now=T0 + timedelta(days=1))

    after = await CustomerStore(store.sessions).lookup("3339999999")
    assert (report.created, report.updated) == (0, 1)
    assert before is not None and after is not None and after.id == before.id
    assert (after.name, after.segment) == ("Anna Verdi Neri", None)
    assert set(after.phones) == {"+393331111111", "+390611111111", "+393339999999"}


async def test_given_csv_with_bad_rows_when_imported_then_every_bad_line_reported_and_nothing_written(
    store: ContactStore,
) -> None:
    report = await import_customers(store.sessions, _csv(BAD), by="admin", now=T0)

    assert not report.committed and (report.created, report.updated, report.rows) == (0, 0, 7)
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    assert "phones: not a telephone number" in reasons[3]
    assert "name:" in reasons[4]
    assert "consent_recording: 'maybe' is not yes or no" in reasons[5]
    assert "7 fields, the header has 6" in reasons[6]
    assert "also on line 2" in reasons[7] and "1111111" not in reasons[7]
    assert "language must be a two-letter code" in reasons[8]
    assert await CustomerStore(store.sessions).lookup("3331111111") is None  # the good line 2 too


async def test_given_bad_rows_and_skip_invalid_when_imported_then_valid_rows_written(store: ContactStore) -> None:
    report = await import_customers(store.sessions, _csv(BAD), by="admin", now=T0, skip_invalid=True)

    assert report.committed and report.created == 1 and len(report.rejected) == 6
    assert await CustomerStore(store.sessions).lookup("3331111111") is not None


async def test_given_row_joining_two_known_customers_when_imported_then_whole_file_rolled_back(
    store: ContactStore,
) -> None:
    customers = CustomerStore(store.sessions)
    await customers.upsert(_customer("3331111111", name="One"))
    await customers.upsert(_customer("3332222222", name="Two"))
    content = "phones,name\n3330000000,New Customer\n3331111111;3332222222,Both\n"

    report = await import_customers(store.sessions, _csv(content), by="admin", now=T0)

    assert not report.committed
    assert [(r.line, "different customers" in r.reason) for r in report.rejected] == [(3, True)]
    assert await customers.lookup("3330000000") is None  # line 2 had been written, then rolled back


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("phones,name,colour\n3331234567,A,red\n", "unknown column(s) 'colour'"),
        ("name\nA\n", "missing column(s) phones"),
        ('phones,name\n"3331234567,A\n', "not valid CSV"),
    ],
)
async def test_given_unusable_file_when_imported_then_file_error(
    store: ContactStore, content: str, message: str
) -> None:
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await import_customers(store.sessions, _csv(content), by="admin", now=T0)


async def test_given_import_cli_when_rows_rejected_then_exit_1_with_file_line_messages_and_audit(
    db_url: str, tmp_path: Path
) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("\ufeff" + GOOD, encoding="utf-8")
    bad.write_text(BAD, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()

    assert await customers_import(db_url, bad, by="admin", skip_invalid=False, out=out, err=err) == 1
    assert await customers_import(db_url, good, by="admin", skip_invalid=False, out=out, err=err) == 0
    assert await customers_import(db_url, tmp_path / "none.csv", by="admin", skip_invalid=False, err=err) == 2

    lines = err.getvalue().splitlines()
    assert f"{bad}:3: phones: not a telephone number" in lines[0]
    assert lines[6].startswith("nothing imported: 6 row(s) rejected")
    assert "cannot read" in lines[-1]
    assert out.getvalue() == "2 customer(s) created, 0 updated, 0 row(s) rejected\n"
    engine = make_engine(db_url)
    try:
        async with engine.connect() as connection:
            audit = (await connection.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail))).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in audit] == [("admin", "import", {"created": 2, "updated": 0, "rejected": 0})]


# -- single back end ----------------------------------------------------------------------------


async def test_given_sqlite_when_looking_up_then_indexes_used_not_table_scans(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"
    await upgrade(url)
    engine = make_engine(url)
    statements = [
        select(CustomerPhone.customer_id).where(CustomerPhone.number == "+393331234567"),  # as lookup() asks
        last_operator_query("0" * 32, ["+393331234567"]),
    ]
    try:
        async with engine.connect() as connection:
            plans = []
            for statement in statements:
                sql = statement.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
                result = await connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
                plans.append(" ".join(str(row[-1]) for row in result))
    finally:
        await engine.dispose()
    assert "SEARCH customer_phones USING" in plans[0]
    assert "SCAN contacts" not in plans[1] and "ix_contacts_customer_id" in plans[1], plans[1]
    assert "ix_contacts_caller" in plans[1], plans[1]
