"""Office hours in Europe/Rome: weekly hours, Italian holidays (Easter Monday computed), closures, DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from ivr.hours import Calendar, CalendarSpec

ROME = ZoneInfo("Europe/Rome")
CUSTOMERS = Calendar.from_spec(CalendarSpec(hours={"mon-sat": "08:00-20:00"}))
INTERNAL = Calendar.from_spec(
    CalendarSpec(
        hours={"mon-sat": "08:00-19:00"},
        closures=[{"start": "2026-12-24T14:00", "end": "2026-12-25T00:00", "reason": "Christmas Eve"}],
    )
)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 11, 24, 7, 59), False),  # Tuesday before opening
        (datetime(2026, 11, 24, 8, 0), True),
        (datetime(2026, 11, 24, 19, 59), True),
        (datetime(2026, 11, 24, 20, 0), False),  # closing time is exclusive
        (datetime(2026, 11, 28, 12, 0), True),  # Saturday
        (datetime(2026, 11, 29, 12, 0), False),  # Sunday
        (datetime(2027, 3, 29, 12, 0), False),  # Easter Monday 2027 (Easter is 28 March)
        (datetime(2028, 4, 17, 12, 0), False),  # Easter Monday 2028 (Easter is 16 April)
        (datetime(2026, 6, 2, 12, 0), False),  # Festa della Repubblica
        (datetime(2026, 12, 8, 12, 0), False),  # Immacolata
    ],
)
def test_given_customer_calendar_when_checked_then_open_only_in_hours(local: datetime, expected: bool) -> None:
    assert CUSTOMERS.is_open(local.replace(tzinfo=ROME)) is expected


def test_given_internal_area_when_19_30_then_closed_while_customers_open() -> None:
    moment = datetime(2026, 11, 24, 19, 30, tzinfo=ROME)
    assert CUSTOMERS.is_open(moment) and not INTERNAL.is_open(moment)


def test_given_extra_closure_when_inside_then_closed() -> None:
    assert INTERNAL.is_open(datetime(2026, 12, 24, 13, 59, tzinfo=ROME))
    assert not INTERNAL.is_open(datetime(2026, 12, 24, 14, 0, tzinfo=ROME))


def test_given_dst_change_when_utc_instant_then_local_hours_apply() -> None:
    # 07:30 UTC is 08:30 in winter (CET, open) but 09:30 in summer (CEST); 18:30 UTC is 19:30 / 20:30
    assert CUSTOMERS.is_open(datetime(2026, 3, 27, 7, 30, tzinfo=UTC))  # Friday before the change
    assert not CUSTOMERS.is_open(datetime(2026, 3, 27, 6, 30, tzinfo=UTC))  # 07:30 CET
    assert CUSTOMERS.is_open(datetime(2026, 3, 30, 6, 30, tzinfo=UTC))  # Monday after: 08:30 CEST
    assert not CUSTOMERS.is_open(datetime(2026, 3, 30, 18, 30, tzinfo=UTC))  # 20:30 CEST


def test_given_naive_datetime_when_checked_then_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CUSTOMERS.is_open(datetime(2026, 11, 24, 10, 0))


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon-sun": "08:00-20:00", "sat": "09:00-12:00"}, "listed twice"),
        ({"mon-fri": "8-20"}, "must look like"),
        ({"lun-sab": "08:00-20:00"}, "unknown day"),
        ({"sat-mon": "08:00-20:00"}, "runs backwards"),
        ({"mon": "25:00-26:00"}, "not a valid time"),
    ],
)
def test_given_bad_hours_when_validated_then_plain_message(hours: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CalendarSpec(hours=hours)  # type: ignore[arg-type]


def test_given_unknown_zone_or_country_when_validated_then_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        CalendarSpec(hours={"mon": "08:00-09:00"}, timezone="Europe/Roma")
    with pytest.raises(ValidationError, match="no holiday calendar"):
        CalendarSpec(hours={"mon": "08:00-09:00"}, holidays="XX")
