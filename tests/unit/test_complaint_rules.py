"""The complaint process without a database: lifecycle table, Italian deadlines, numbers, phones.

Expected dates are computed by hand in the comments (weekends and Italian holidays skipped), not
by the code under test.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from contacts import ComplaintStatus, Deadline, IllegalTransition, deadlines, due_date, mask_number, normalise_number
from contacts.complaint_rules import (
    DEFAULT_DEADLINES,
    add_business_days,
    after_assign,
    check_move,
    is_business_day,
    is_overdue,
    new_number,
    parse_deadline,
)
from contacts.phones import number_variants, try_normalise

S = ComplaintStatus
ROME_SUMMER = timezone(timedelta(hours=2))
ROME_WINTER = timezone(timedelta(hours=1))

#: The lifecycle written out by hand: every (from, to) a move may make. Anything else is refused.
ALLOWED_MOVES = {
    (S.ASSIGNED, S.IN_PROGRESS),
    (S.IN_PROGRESS, S.WAITING_FOR_CUSTOMER),
    (S.IN_PROGRESS, S.RESOLVED),
    (S.WAITING_FOR_CUSTOMER, S.IN_PROGRESS),
    (S.RESOLVED, S.CLOSED),
    (S.RESOLVED, S.IN_PROGRESS),
}


# -- lifecycle ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED_MOVES))
def test_given_allowed_pair_when_moved_then_accepted(current: ComplaintStatus, target: ComplaintStatus) -> None:
    check_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"), sorted(set(itertools.product(ComplaintStatus, repeat=2)) - ALLOWED_MOVES)
)
def test_given_any_other_pair_when_moved_then_refused_naming_both(
    current: ComplaintStatus, target: ComplaintStatus
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_move(current, target)
    message = str(caught.value)
    assert current.value in message and target.value in message
    assert (caught.value.current, caught.value.target) == (current, target)


def test_given_received_when_moved_anywhere_then_message_says_to_assign() -> None:
    with pytest.raises(IllegalTransition, match=r"by giving it an owner \(assign\)"):
        check_move(S.RECEIVED, S.IN_PROGRESS)


def test_given_closed_when_moved_then_message_says_final() -> None:
    with pytest.raises(IllegalTransition, match="closed is final"):
        check_move(S.CLOSED, S.IN_PROGRESS)


@pytest.mark.parametrize(
    ("current", "after"),
    [
        (S.RECEIVED, S.ASSIGNED),
        (S.ASSIGNED, S.ASSIGNED),
        (S.IN_PROGRESS, S.IN_PROGRESS),
        (S.WAITING_FOR_CUSTOMER, S.WAITING_FOR_CUSTOMER),
        (S.RESOLVED, S.RESOLVED),
    ],
)
def test_given_status_when_assigned_then_only_received_changes_status(
    current: ComplaintStatus, after: ComplaintStatus
) -> None:
    assert after_assign(current) is after


def test_given_closed_when_assigned_then_refused() -> None:
    with pytest.raises(IllegalTransition, match="closed complaint cannot change owner"):
        after_assign(S.CLOSED)


# -- deadlines ----------------------------------------------------------------------------------


def test_given_payment_complaint_before_easter_when_due_then_fifteen_italian_business_days() -> None:
    # Thu 17 Apr 2025. Counting: Fri 18 (1); Easter Mon 21 holiday; Tue 22-Thu 24 (2-4);
    # Fri 25 Liberation Day; Mon 28-Wed 30 (5-7); Thu 1 May holiday; Fri 2 (8);
    # Mon 5-Fri 9 (9-13); Mon 12 (14); Tue 13 May (15).
    received = datetime(2025, 4, 17, 10, 0, tzinfo=ROME_SUMMER)

    assert due_date(received, DEFAULT_DEADLINES["payments"]) == date(2025, 5, 13)


def test_given_complaint_before_christmas_when_due_then_holidays_to_epiphany_skipped() -> None:
    # Mon 22 Dec 2025. Tue 23 (1), Wed 24 (2); 25, 26 holidays; Mon 29-Wed 31 (3-5);
    # Thu 1 Jan holiday; Fri 2 (6); Mon 5 (7); Tue 6 Epiphany; Wed 7-Fri 9 (8-10);
    # Mon 12-Fri 16 (11-15).
    received = datetime(2025, 12, 22, 9, 0, tzinfo=ROME_WINTER)

    assert due_date(received, Deadline(15, business=True)) == date(2026, 1, 16)


def test_given_friday_before_easter_monday_when_one_business_day_then_tuesday() -> None:
    assert not is_business_day(date(2026, 4, 6))  # Easter Monday 2026
    assert add_business_days(date(2026, 4, 3), 1) == date(2026, 4, 7)


def test_given_calendar_deadline_when_due_then_plain_days_not_moved_off_holidays() -> None:
    # 22 Dec 2025 + 60: 9 days to 31 Dec, 31 in January, 20 in February.
    assert due_date(datetime(2025, 12, 22, 9, tzinfo=ROME_WINTER), DEFAULT_DEADLINES["banking"]) == date(2026, 2, 20)
    # 10 Nov 2025 + 45 = 25 Dec: a holiday, kept (the earlier date is the safe side).
    assert due_date(datetime(2025, 11, 10, 9, tzinfo=ROME_WINTER), DEFAULT_DEADLINES["postal"]) == date(2025, 12, 25)


def test_given_late_evening_utc_when_due_then_counted_from_the_italian_date() -> None:
    # 17 Apr 2025 22:30 UTC is already Fri 18 Apr in Rome: Tue 22 (1) ... as above, one day later.
    received = datetime(2025, 4, 17, 22, 30, tzinfo=UTC)

    assert due_date(received, DEFAULT_DEADLINES["payments"]) == date(2025, 5, 14)


def test_given_due_day_when_checked_around_italian_midnight_then_overdue_only_the_day_after() -> None:
    due = date(2025, 5, 13)
    assert not is_overdue(S.IN_PROGRESS, due, datetime(2025, 5, 13, 21, 59, tzinfo=UTC))  # 23:59 in Rome
    assert is_overdue(S.IN_PROGRESS, due, datetime(2025, 5, 13, 22, 0, tzinfo=UTC))  # 00:00 on the 14th
    assert is_overdue(S.WAITING_FOR_CUSTOMER, due, datetime(2025, 6, 1, tzinfo=UTC))
    assert not is_overdue(S.RESOLVED, due, datetime(2025, 6, 1, tzinfo=UTC))
    assert not is_overdue(S.CLOSED, due, datetime(2025, 6, 1, tzinfo=UTC))


def test_given_overrides_when_deadlines_built_then_defaults_kept_and_new_categories_added() -> None:
    table = deadlines({"postal": "30 calendar", "insurance": "40 calendar days", "banking": " 20 business "})

    assert table["postal"] == Deadline(30, business=False)
    assert table["insurance"] == Deadline(40, business=False)
    assert table["banking"] == Deadline(20, business=True)
    assert table["payments"] == Deadline(15, business=True)


@pytest.mark.parametrize("text", ["fifteen business", "15", "15 working", "0 calendar", "-3 business"])
def test_given_bad_deadline_when_parsed_then_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"deadline|days"):
        parse_deadline(text)


def test_given_ivr_menu_categories_when_defaults_read_then_each_has_a_deadline() -> None:
    # dialplan/main.yaml's complaint menu: postal, payments, banking, mobile, other
    assert {"postal", "payments", "banking", "mobile", "other"} <= set(DEFAULT_DEADLINES)
    assert DEFAULT_DEADLINES["other"] == Deadline(15, business=True)  # unclassified: the strictest


def test_given_bad_category_name_when_deadlines_built_then_value_error_names_it() -> None:
    with pytest.raises(ValueError, match="'Postal!'"):
        deadlines({"Postal!": "30 calendar"})


# -- numbers ------------------------------------------------------------------------------------


def test_given_many_numbers_when_made_then_nine_digits_no_leading_zero_and_not_sequential() -> None:
    numbers = [new_number() for _ in range(2000)]

    assert all(len(n) == 9 and n.isdigit() and n[0] != "0" for n in numbers)
    assert len(set(numbers)) > 1990
    steps = {int(b) - int(a) for a, b in itertools.pairwise(numbers)}
    assert len(steps) > 1990  # no fixed increment to guess the next one from


# -- phone numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("+39 333 123 4567", "+393331234567"),
        ("0039 333 1234567", "+393331234567"),
        ("333-123.4567", "+393331234567"),
        ("(06) 1234 5678", "+390612345678"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("803160", "+39803160"),
    ],
)
def test_given_spelling_when_normalised_then_canonical(raw: str, canonical: str) -> None:
    assert normalise_number(raw) == canonical


@pytest.mark.parametrize("raw", ["", "anonymous", "+0039333123", "12345", "+39 333 12345678901234", "333 12a 4567"])
def test_given_no_number_when_normalised_then_value_error_and_guest(raw: str) -> None:
    with pytest.raises(ValueError, match="not a telephone number"):
        normalise_number(raw)
    assert try_normalise(raw) is None


def test_given_italian_number_when_variants_then_every_caller_id_spelling() -> None:
    assert number_variants("+393331234567") == ("+393331234567", "00393331234567", "393331234567", "3331234567")
    assert number_variants("+442079460958") == ("+442079460958", "00442079460958")


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+393331234567", "+39 333 ***4567"),
        ("333 123 4567", "+39 333 ***4567"),
        ("0612345678", "+39 061 ***5678"),
        ("+39803160", "+39 ***60"),
        ("+442079460958", "+44 ***0958"),
        (None, "(withheld)"),
        ("", "(withheld)"),
        ("anonymous", "***"),
    ],
)
def test_given_number_when_masked_then_only_prefix_and_last_digits(phone: str | None, masked: str) -> None:
    assert mask_number(phone) == masked


def test_given_bad_number_when_refused_then_message_does_not_carry_it() -> None:
    with pytest.raises(ValueError) as caught:
        normalise_number("+39 333 1234567 ext 12")
    assert "1234567" not in str(caught.value)
