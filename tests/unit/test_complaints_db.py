"""The complaint store on SQLite and PostgreSQL (``db_url``): open, lifecycle, search, overdue."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from contacts import (
    ComplaintStatus,
    ComplaintStore,
    ContactStore,
    CustomerIn,
    CustomerStore,
    IllegalTransition,
    IvrServices,
    UnknownCategory,
    UnknownComplaint,
    UnknownCustomer,
)

S = ComplaintStatus
# Thu 17 Apr 2025, 10:00 in Rome: payment services due Tue 13 May, parcels (45 days) due 1 Jun.
T0 = datetime(2025, 4, 17, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def complaints(store: ContactStore, clock: FakeClock) -> ComplaintStore:
    return ComplaintStore(store.sessions, clock=clock)


async def _open(complaints: ComplaintStore, contact_id: str | None = "c-1", **extra: object) -> str:
    values: dict[str, object] = {
        "contact_id": contact_id,
        "customer_id": None,
        "caller": "333 123 4567",
        "category": "payments",
        "recording": None,
        "channel": "ivr",
        "description": None,
    }
    values.update(extra)
    record = await complaints.open(**values)  # type: ignore[arg-type]
    return record.number


# -- open ---------------------------------------------------------------------------------------


async def test_given_ivr_complaint_when_opened_then_received_with_due_date_and_opened_event(
    complaints: ComplaintStore,
) -> None:
    record = await complaints.open(
        contact_id="c-1",
        customer_id=None,
        caller="333 123 4567",
        category="payments",
        recording="rec-c-1",
        channel="ivr",
        description=None,
    )

    assert len(record.number) == 9 and record.number.isdigit()
    assert (record.status, record.category, record.channel, record.owner) == (
        S.RECEIVED,
        "payments",
        "ivr",
        None,
    )
    assert (record.caller, record.recording, record.received_at) == ("+393331234567", "rec-c-1", T0)
    assert record.due_on == date(2025, 5, 13)
    assert await complaints.get(record.number) == record
    (event,) = await complaints.history(record.number)
    assert (event.by, event.action, event.from_status, event.to_status) == ("ivr", "opened", None, "received")


async def test_given_opened_complaint_when_same_contact_and_category_opened_again_then_same_complaint(
    complaints: ComplaintStore, clock: FakeClock
) -> None:
    first = await _open(complaints, description="first")
    clock.now += timedelta(seconds=5)

    again = await _open(complaints, description="retried write")
    other_category = await _open(complaints, category="parcels")
    no_contact = [await _open(complaints, contact_id=None) for _ in range(2)]

    assert again == first
    record = await complaints.get(first)
    assert record is not None and (record.description, record.received_at) == ("first", T0)
    assert len({first, other_category, *no_contact}) == 4
    assert len(await complaints.history(first)) == 1


async def test_given_concurrent_retries_when_opened_then_exactly_one_complaint(complaints: ComplaintStore) -> None:
    numbers = await asyncio.gather(*(_open(complaints, contact_id="c-race") for _ in range(6)))

    assert len(set(numbers)) == 1
    assert len(await complaints.search(text=numbers[0])) == 1


async def test_given_number_taken_when_opened_then_retried_with_another(store: ContactStore) -> None:
    sequence: Iterator[str] = iter(["111111111", "111111111", "111111111", "222222222"])
    complaints = ComplaintStore(store.sessions, numbers=lambda: next(sequence))

    first = await _open(complaints, contact_id="c-1")
    second = await _open(complaints, contact_id="c-2")

    assert (first, second) == ("111111111", "222222222")
    stuck = ComplaintStore(store.sessions, numbers=lambda: "111111111")
    with pytest.raises(RuntimeError, match="no free complaint number"):
        await _open(stuck, contact_id="c-3")


async def test_given_bad_input_when_opened_then_refused_with_clear_errors(complaints: ComplaintStore) -> None:
    with pytest.raises(
        UnknownCategory,
        match="no complaint category 'weather'; known: banking, mobile, other, parcels, payments, postal",
    ):
        await _open(complaints, category="weather")
    with pytest.raises(UnknownCustomer, match="no customer"):
        await _open(complaints, customer_id="f" * 32)
    with pytest.raises(ValueError, match="'pigeon' is not a valid Channel"):
        await _open(complaints, channel="pigeon")
    assert await complaints.search() == []


async def test_given_known_customer_and_withheld_caller_when_opened_then_linked_without_number(
    store: ContactStore, complaints: ComplaintStore
) -> None:
    customer, _ = await CustomerStore(store.sessions).upsert(CustomerIn(phones=("3331234567",), name="Anna"))

    number = await _open(complaints, customer_id=customer.id, caller="anonymous", channel="operator")

    record = await complaints.get(number)
    assert record is not None and (record.customer_id, record.caller) == (customer.id, None)


# -- lifecycle ----------------------------------------------------------------------------------


async def _refuses_every_illegal_move(complaints: ComplaintStore, number: str) -> None:
    record = await complaints.get(number)
    assert record is not None
    events = len(await complaints.history(number))
    allowed = {
        S.ASSIGNED: {S.IN_PROGRESS},
        S.IN_PROGRESS: {S.WAITING_FOR_CUSTOMER, S.RESOLVED},
        S.WAITING_FOR_CUSTOMER: {S.IN_PROGRESS},
        S.RESOLVED: {S.CLOSED, S.IN_PROGRESS},
    }.get(record.status, set())
    for target in set(ComplaintStatus) - allowed:
        with pytest.raises(IllegalTransition, match=f"from {record.status.value}"):
            await complaints.move(number, target, by="op1")
    assert await complaints.get(number) == record
    assert len(await complaints.history(number)) == events


async def test_given_complaint_when_walked_through_lifecycle_then_each_step_audited_and_illegal_moves_refused(
    complaints: ComplaintStore, clock: FakeClock
) -> None:
    number = await _open(complaints)
    await _refuses_every_illegal_move(complaints, number)
    steps: list[tuple[str, str, str | None]] = [
        ("assign", "op1003", "for the payments desk"),
        ("move", S.IN_PROGRESS, None),
        ("move", S.WAITING_FOR_CUSTOMER, "asked for the receipt"),
        ("move", S.IN_PROGRESS, "receipt received"),
        ("move", S.RESOLVED, "refunded"),
        ("move", S.IN_PROGRESS, "customer disputes the refund"),
        ("move", S.RESOLVED, "refunded the fee too"),
        ("move", S.CLOSED, None),
    ]
    for index, (operation, value, comment) in enumerate(steps, 1):
        clock.now = T0 + timedelta(hours=index)
        if operation == "assign":
            record = await complaints.assign(number, value, by="supervisor", comment=comment)
        else:
            record = await complaints.move(number, value, by="op1003", comment=comment)
        await _refuses_every_illegal_move(complaints, number)
        assert record.updated_at == clock.now

    assert record.status is S.CLOSED and record.owner == "op1003"
    assert record.resolved_at == T0 + timedelta(hours=7) and record.closed_at == T0 + timedelta(hours=8)
    history = [(e.by, e.action, e.from_status, e.to_status, e.comment) for e in await complaints.history(number)]
    assert history == [
        ("ivr", "opened", None, "received", None),
        ("supervisor", "assigned", "received", "assigned", "for the payments desk"),
        ("op1003", "moved", "assigned", "in_progress", None),
        ("op1003", "moved", "in_progress", "waiting_for_customer", "asked for the receipt"),
        ("op1003", "moved", "waiting_for_customer", "in_progress", "receipt received"),
        ("op1003", "moved", "in_progress", "resolved", "refunded"),
        ("op1003", "moved", "resolved", "in_progress", "customer disputes the refund"),
        ("op1003", "moved", "in_progress", "resolved", "refunded the fee too"),
        ("op1003", "moved", "resolved", "closed", None),
    ]
    with pytest.raises(IllegalTransition, match="closed complaint cannot change owner"):
        await complaints.assign(number, "op1004", by="supervisor")
    noted = await complaints.comment(number, "customer thanked us", by="op1003")
    assert noted.status is S.CLOSED and noted.owner == "op1003"


async def test_given_reopened_complaint_when_read_then_no_longer_resolved(
    complaints: ComplaintStore, clock: FakeClock
) -> None:
    number = await _open(complaints)
    await complaints.assign(number, "op1", by="sup")
    await complaints.move(number, S.IN_PROGRESS, by="op1")
    await complaints.move(number, S.RESOLVED, by="op1")

    reopened = await complaints.move(number, "in_progress", by="op1")

    assert reopened.resolved_at is None and reopened.status is S.IN_PROGRESS


async def test_given_assigned_complaint_when_reassigned_then_owner_changes_and_status_stays(
    complaints: ComplaintStore,
) -> None:
    number = await _open(complaints)
    await complaints.assign(number, "op1", by="sup")
    await complaints.move(number, S.IN_PROGRESS, by="op1")

    record = await complaints.assign(number, "op2", by="sup")

    assert (record.status, record.owner) == (S.IN_PROGRESS, "op2")
    last = (await complaints.history(number))[-1]
    assert (last.action, last.from_status, last.to_status, last.owner) == (
        "assigned",
        "in_progress",
        "in_progress",
        "op2",
    )


async def test_given_two_operators_moving_at_once_when_both_commit_then_one_wins_one_refused(
    complaints: ComplaintStore,
) -> None:
    number = await _open(complaints)
    await complaints.assign(number, "op1", by="sup")
    await complaints.move(number, S.IN_PROGRESS, by="op1")

    results = await asyncio.gather(
        complaints.move(number, S.RESOLVED, by="op1"),
        complaints.move(number, S.WAITING_FOR_CUSTOMER, by="op2"),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["ComplaintRecord", "IllegalTransition"]
    assert len(await complaints.history(number)) == 4


async def test_given_unknown_number_or_bad_values_when_changed_then_refused(complaints: ComplaintStore) -> None:
    number = await _open(complaints)
    with pytest.raises(UnknownComplaint, match="no complaint '000000000'"):
        await complaints.move("000000000", S.IN_PROGRESS, by="op1")
    with pytest.raises(UnknownComplaint):
        await complaints.comment("000000000", "hello", by="op1")
    with pytest.raises(ValueError, match="owner must be 1 to 64"):
        await complaints.assign(number, " ", by="sup")
    with pytest.raises(ValueError, match="'done' is not a valid ComplaintStatus"):
        await complaints.move(number, "done", by="op1")
    assert await complaints.history("000000000") == ()


# -- search and overdue -------------------------------------------------------------------------


async def test_given_varied_complaints_when_searched_then_each_filter_applies(
    store: ContactStore, complaints: ComplaintStore, clock: FakeClock
) -> None:
    customer, _ = await CustomerStore(store.sessions).upsert(CustomerIn(phones=("3331234567",), name="Anna"))
    counter = itertools.count()

    async def open_at(hours: int, **extra: object) -> str:
        clock.now = T0 + timedelta(hours=hours)
        return await _open(complaints, contact_id=f"c-{next(counter)}", **extra)

    late_parcel = await open_at(0, category="parcels", description="Parcel RR123 never ARRIVED")
    card = await open_at(1, customer_id=customer.id, description="Card charged twice: 100% wrong")
    bank = await open_at(2, category="banking", description="Fees on my account")
    await complaints.assign(card, "op1", by="sup")
    await complaints.assign(bank, "op2", by="sup")
    await complaints.move(bank, S.IN_PROGRESS, by="op2")

    async def numbers(**filters: object) -> list[str]:
        return [r.number for r in await complaints.search(**filters)]  # type: ignore[arg-type]

    assert await numbers() == [bank, card, late_parcel]  # newest first
    assert await numbers(status="assigned") == [card]
    assert await numbers(status=S.RECEIVED) == [late_parcel]
    assert await numbers(category="banking") == [bank]
    assert await numbers(owner="op2") == [bank]
    assert await numbers(customer=customer.id) == [card]
    assert await numbers(text="never arrived") == [late_parcel]
    assert await numbers(text="100%") == [card]  # '%' is a character, not a wildcard
    assert await numbers(text="_") == []
    assert await numbers(text=bank) == [bank]
    assert await numbers(category="parcels", status="assigned") == []
    assert await numbers(limit=1) == [bank]
    with pytest.raises(ValueError, match="limit"):
        await complaints.search(limit=0)


async def test_given_deadlines_when_clock_passes_them_then_only_unanswered_late_ones_overdue(
    complaints: ComplaintStore, clock: FakeClock
) -> None:
    payment = await _open(complaints, contact_id="c-1")  # due Tue 13 May 2025
    answered = await _open(complaints, contact_id="c-2")  # due 13 May too, but resolved
    parcel = await _open(complaints, contact_id="c-3", category="parcels")  # due Sun 1 Jun 2025
    await complaints.assign(answered, "op1", by="sup")
    await complaints.move(answered, S.IN_PROGRESS, by="op1")
    await complaints.move(answered, S.RESOLVED, by="op1")
    on_due_day = datetime(2025, 5, 13, 21, 59, tzinfo=UTC)  # 23:59 in Rome
    day_after = datetime(2025, 5, 13, 22, 0, tzinfo=UTC)  # 00:00 on the 14th in Rome

    assert await complaints.overdue(on_due_day) == []
    assert [r.number for r in await complaints.overdue(day_after)] == [payment]
    assert [r.number for r in await complaints.overdue(datetime(2025, 6, 2, tzinfo=UTC))] == [payment, parcel]
    clock.now = day_after
    assert [r.number for r in await complaints.search(overdue=True)] == [payment]
    assert {r.number for r in await complaints.search(overdue=False)} == {answered, parcel}
    record = await complaints.get(payment)
    assert record is not None and record.overdue(day_after) and record.to_json_dict(day_after)["overdue"] is True


# -- the IVR's call services --------------------------------------------------------------------


async def test_given_known_caller_when_ivr_opens_complaint_twice_then_one_linked_complaint_and_survey_kept(
    store: ContactStore,
) -> None:
    # The IVR's services as unico.calls binds them (ivr.actions.CallServices, unico.calls.CustomerLookup).
    customer, _ = await CustomerStore(store.sessions).upsert(CustomerIn(phones=("3331234567",), name="Anna"))
    await store.start_contact(
        contact_id="c-1", channel_id="ch-1", caller="+393331234567", dialled="803160", language="it", started_at=T0
    )
    services = IvrServices(store)

    number = await services.open_complaint(contact_id="c-1", caller="+393331234567", category="mobile", recording="r1")
    again = await services.open_complaint(contact_id="c-1", caller="+393331234567", category="mobile", recording="r1")
    await services.record_survey(contact_id="c-1", score=5, solved=True)
    await services.record_survey(contact_id="ghost", score=5, solved=True)  # logged, not raised

    assert again == number and len(number) == 9
    record = await services.complaints.get(number)
    assert record is not None
    assert (record.customer_id, record.channel, record.recording) == (customer.id, "ivr", "r1")
    survey = await store.survey("c-1")
    assert survey is not None and (survey.score, survey.solved) == (5, True)
    with pytest.raises(UnknownCategory):
        await services.open_complaint(contact_id="c-1", caller=None, category="weather", recording=None)

    # A withheld caller the IVR linked to the customer: the complaint is linked through the call.
    await store.start_contact(
        contact_id="c-2", channel_id="ch-2", caller=None, dialled="803160", language="it", started_at=T0
    )
    await store.link_customer("c-2", customer.id)
    linked = await services.open_complaint(contact_id="c-2", caller=None, category="other", recording=None)
    record = await services.complaints.get(linked)
    assert record is not None and (record.customer_id, record.caller) == (customer.id, None)
