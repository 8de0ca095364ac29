"""Office hours: weekly opening times, Italian public holidays and extra closures, in local time.

Theory of operation: a calendar answers ``is_open(now)`` for an aware datetime. ``now`` is converted
to the calendar's zone (Europe/Rome by default) before any comparison, so DST changes never shift
the opening hours. Public holidays come from the maintained ``holidays`` package (Easter Monday is
computed there, not by us); extra closures are data in the YAML. Decisions take the time as an
argument, so tests pass any instant instead of sleeping.

Example::

    cal = Calendar.from_spec(CalendarSpec(hours={"mon-sat": "08:00-20:00"}))
    cal.is_open(datetime(2026, 12, 25, 10, tzinfo=ZoneInfo("Europe/Rome")))   # False: Christmas
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

Clock = Callable[[], datetime]


@functools.lru_cache(maxsize=32)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    """One country's public holidays for one year, built once: building the table computes every
    rule (about a millisecond), and an hours node asks on every call that reaches it."""
    return holidays.country_holidays(country, years=year)


def _parse_days(spec: str) -> list[int]:
    """``mon-sat`` -> [0..5]; ``sat,sun`` -> [5, 6]; ``fri`` -> [4]."""
    result: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            if first not in DAYS or last not in DAYS:
                raise ValueError(f"unknown day in {spec!r}; use {', '.join(DAYS)}")
            start, end = DAYS.index(first), DAYS.index(last)
            if end < start:
                raise ValueError(f"day range {spec!r} runs backwards")
            result.extend(range(start, end + 1))
        elif part in DAYS:
            result.append(DAYS.index(part))
        else:
            raise ValueError(f"unknown day {part!r}; use {', '.join(DAYS)}")
    return result


def _parse_range(text: str) -> tuple[time, time]:
    match = _RANGE.match(text.strip())
    if not match:
        raise ValueError(f"opening time {text!r} must look like 08:00-20:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"opening time {text!r} is not a valid time of day")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"opening time {text!r} ends before it starts")
    return start, end


class Closure(BaseModel):
    """An extra closure in local time, e.g. a strike day or a site move."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end <= self.start:
            raise ValueError("closure 'end' must be after 'start'")
        return self


class CalendarSpec(BaseModel):
    """The YAML form of a calendar (``calendars:`` in ``dialplan/hours.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    timezone: str = "Europe/Rome"
    hours: dict[str, str | list[str]] = Field(min_length=1)
    holidays: str | None = "IT"
    closures: list[Closure] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        seen: set[int] = set()
        for days, ranges in value.items():
            for day in _parse_days(days):
                if day in seen:
                    raise ValueError(f"{DAYS[day]} is listed twice")
                seen.add(day)
            for text in [ranges] if isinstance(ranges, str) else ranges:
                if text.strip().lower() != "closed":
                    _parse_range(text)
        return value

    @field_validator("holidays")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                holidays.country_holidays(value)
            except NotImplementedError:
                raise ValueError(f"no holiday calendar for country {value!r}") from None
        return value


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    weekly: tuple[tuple[tuple[time, time], ...], ...]  # index 0 = Monday
    country: str | None
    closures: tuple[Closure, ...]

    @classmethod
    def from_spec(cls, spec: CalendarSpec) -> Calendar:
        weekly: list[list[tuple[time, time]]] = [[] for _ in DAYS]
        for days, ranges in spec.hours.items():
            for day in _parse_days(days):
                for text in [ranges] if isinstance(ranges, str) else ranges:
                    if text.strip().lower() != "closed":
                        weekly[day].append(_parse_range(text))
        return cls(
            zone=ZoneInfo(spec.timezone),
            weekly=tuple(tuple(sorted(r)) for r in weekly),
            country=spec.holidays,
            closures=tuple(spec.closures),
        )

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("calendar needs an aware datetime")
        return now.astimezone(self.zone)

    def holiday_name(self, day: date) -> str | None:
        if self.country is None:
            return None
        name = _holidays(self.country, day.year).get(day)
        return str(name) if name else None

    def closure_at(self, now: datetime) -> Closure | None:
        local = self.local(now).replace(tzinfo=None)
        for closure in self.closures:
            start = closure.start.replace(tzinfo=None) if closure.start.tzinfo else closure.start
            end = closure.end.replace(tzinfo=None) if closure.end.tzinfo else closure.end
            if start <= local < end:
                return closure
        return None

    def is_open(self, now: datetime) -> bool:
        """True when operators are on duty at ``now`` (any aware datetime)."""
        local = self.local(now)
        if self.holiday_name(local.date()) or self.closure_at(now):
            return False
        moment = local.time()
        return any(start <= moment < end for start, end in self.weekly[local.weekday()])
