"""Contact records and customers through the API: filters, the operator's limits (their own
contacts, masked callers, only customers they served) and the errors (see ``test_api_support``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from contacts import ComplaintStore, CustomerIn, CustomerRecord, CustomerStore
from tests.unit.test_api_support import NOW, Bench, open_bench


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with open_bench(tmp_path) as opened:
        yield opened


async def _history(bench: Bench) -> CustomerRecord:
    """Anna (+39 333 1234567) called three times: op1001 answered on day 1 and 2, op1002 on day 3;
    a guest called the spedizioni queue and abandoned."""
    customer, _ = await CustomerStore(bench.store.sessions).upsert(
        CustomerIn(phones=("3331234567",), name="Anna Verdi", segment="vip")
    )
    for day, operator in ((1, "op1001"), (2, "op1001"), (3, "op1002")):
        await bench.contact(f"anna-{day}", operator=operator, started_at=NOW + timedelta(days=day))
    await bench.contact(
        "guest", caller="+390612345678", queue="spedizioni", outcome="abandoned", started_at=NOW + timedelta(hours=5)
    )
    return customer


async def _ids(bench: Bench, query: str, as_: str = "sup") -> list[str]:
    status, body = await bench.call("GET", f"/api/contacts{query}", as_=as_)
    assert status == 200, body
    return [c["id"] for c in body]


async def test_given_contacts_when_searched_with_filters_then_matching_ones_newest_first(bench: Bench) -> None:
    customer = await _history(bench)

    assert await _ids(bench, "") == ["anna-3", "anna-2", "anna-1", "guest"]
    assert await _ids(bench, "?limit=2") == ["anna-3", "anna-2"]
    assert await _ids(bench, "?queue=spedizioni") == ["guest"]
    assert await _ids(bench, "?outcome=abandoned") == ["guest"]
    assert await _ids(bench, "?operator=op1001") == ["anna-2", "anna-1"]
    assert await _ids(bench, f"?customer={customer.id}") == ["anna-3", "anna-2", "anna-1"]
    assert await _ids(bench, f"?customer={'0' * 32}") == []
    # dates are midnight in the controller's zone (Europe/Rome); "to" is excluded
    assert await _ids(bench, "?from=2026-03-03&to=2026-03-05") == ["anna-2", "anna-1"]
    assert await _ids(bench, "?from=2026-03-04T10:00:00%2B00:00") == ["anna-3", "anna-2"]


async def test_given_contacts_when_supervisor_reads_then_raw_caller_and_operator_masked(bench: Bench) -> None:
    await _history(bench)

    full = (await bench.call("GET", "/api/contacts/anna-1", as_="sup"))[1]
    assert full["caller"] == "+393331234567" and full["operator"] == "op1001"
    mine = (await bench.call("GET", "/api/contacts/anna-1", as_="op1"))[1]
    assert mine["caller"] == "+39 333 ***4567"
    listed = (await bench.call("GET", "/api/contacts", as_="op1"))[1]
    assert [c["id"] for c in listed] == ["anna-2", "anna-1"]
    assert {c["caller"] for c in listed} == {"+39 333 ***4567"}


async def test_given_operator_when_reaching_others_contacts_then_403(bench: Bench) -> None:
    await _history(bench)
    status, body = await bench.call("GET", "/api/contacts/anna-3", as_="op1")
    assert (status, body) == (403, {"error": "forbidden: operators see only the contacts they answered"})
    assert (await bench.call("GET", "/api/contacts/guest", as_="op1"))[0] == 403
    assert (await bench.call("GET", "/api/contacts?operator=op1002", as_="op1"))[0] == 403
    assert await _ids(bench, "?operator=op1001", as_="op1") == ["anna-2", "anna-1"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?limit=0", "limit: Input should be greater than or equal to 1"),
        ("?limit=501", "limit: Input should be less than or equal to 500"),
        ("?from=yesterday", "from: Input should be a valid datetime"),
        ("?from=2026-03-05&to=2026-03-01", "to must be after from"),
        ("?customer=3331234567", "customer: String should match pattern"),
        ("?colour=red", "colour: Extra inputs are not permitted"),
        ("?queue=a&queue=b", "give each query parameter at most once"),
    ],
)
async def test_given_invalid_query_when_searching_then_400(bench: Bench, query: str, message: str) -> None:
    status, body = await bench.call("GET", f"/api/contacts{query}")
    assert status == 400 and message in body["error"], body


async def test_given_unknown_contact_when_read_then_404(bench: Bench) -> None:
    assert await bench.call("GET", "/api/contacts/nope") == (404, {"error": "no contact 'nope'"})


# -- customers ------------------------------------------------------------------------------------


async def test_given_customer_when_supervisor_reads_then_full_profile_contacts_and_open_complaints(
    bench: Bench,
) -> None:
    customer = await _history(bench)
    complaint = await ComplaintStore(bench.store.sessions).open(
        contact_id="anna-1",
        customer_id=customer.id,
        caller=None,
        category="parcels",
        recording=None,
        channel="ivr",
        description="lost",
    )

    status, body = await bench.call("GET", f"/api/customers/{customer.id}", as_="sup")

    assert status == 200
    assert body["customer"]["phones"] == ["+393331234567"] and body["customer"]["last_operator"] == "op1002"
    assert [c["id"] for c in body["last_contacts"]] == ["anna-3", "anna-2", "anna-1"]
    assert body["open_complaints"] == [
        {
            "number": complaint.number,
            "category": "parcels",
            "status": "received",
            "due_on": complaint.due_on.isoformat(),
        }
    ]


async def test_given_operator_when_reading_customers_then_only_ones_they_served_or_are_serving(
    bench: Bench,
) -> None:
    customer = await _history(bench)
    other, _ = await CustomerStore(bench.store.sessions).upsert(CustomerIn(phones=("3470000000",), name="Bruno"))

    status, body = await bench.call("GET", f"/api/customers/{customer.id}", as_="op1")
    assert status == 200
    assert body["customer"]["phones"] == ["+39 333 ***4567"] and "consents" not in body["customer"]

    status, body = await bench.call("GET", f"/api/customers/{other.id}", as_="op1")
    assert status == 403 and "operators see only the customers of calls they are on or had" in body["error"]

    # Bruno calls now and talks to op1001: they may read his record
    await bench.contact("bruno-now", caller="+393470000000", ended=False, queue="general")
    await bench.talking("op1001", "bruno-now")
    assert (await bench.call("GET", f"/api/customers/{other.id}", as_="op1"))[0] == 200
    assert (await bench.call("GET", f"/api/customers/{other.id}", as_="op2"))[0] == 403


async def test_given_unknown_customer_when_read_then_404(bench: Bench) -> None:
    for customer_id in ("0" * 32, "3331234567"):
        status, body = await bench.call("GET", f"/api/customers/{customer_id}")
        assert (status, body) == (404, {"error": f"no customer {customer_id!r}"})
