"""The complaint process without I/O: statuses, the transition table, deadlines, numbers.

Theory of operation. Every complaint, whatever the channel (IVR recording, operator during a call,
letter), follows one lifecycle::

    received --assign--> assigned --> in_progress <--> waiting_for_customer
                                          |   ^
                                          v   | (reopened: the customer disputes the answer)
                                        resolved --> closed

``assign`` (a new owner) is its own operation: it moves ``received`` to ``assigned`` and, in any
later status but ``closed``, only changes the owner. Every other change is a ``move`` to a target
status that :data:`TRANSITIONS` must list for the current one; anything else raises
:class:`IllegalTransition` naming what is allowed. ``closed`` is final.

Deadlines: each category has a number of days, either calendar days or Italian business days
(Monday to Friday except the national holidays of ``holidays.country_holidays("IT")``: Easter
Monday, 25 April, 1 May, 2 June, 15 August, 1 November, 8, 25 and 26 December, 1 and 6 January,
and whatever later laws add). Days are counted in Italy (Europe/Rome) from the day after receipt:
a complaint received on Thursday 17 April 2025 with 15 business days is due on Tuesday 13 May 2025.
Calendar deadlines are not moved off weekends: an earlier due date is the safe side.
Which defaults are researched and which are assumptions: docs/complaints.md.

Numbers: 9 random digits, the first not 0, from :mod:`secrets`, so they can be read back digit by
digit and are not guessable from a neighbour's number; the store retries on a collision.

Example::

    check_move(ComplaintStatus.IN_PROGRESS, ComplaintStatus.RESOLVED)          # fine
    check_move(ComplaintStatus.RECEIVED, ComplaintStatus.CLOSED)               # IllegalTransition
    due_date(received_at, DEFAULT_DEADLINES["payments"])
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo

import holidays

#: complaint deadlines are Italian days, whatever the server's time zone
ITALY_TZ = ZoneInfo("Europe/Rome")
NUMBER_DIGITS = 9


class ComplaintError(Exception):
    """Base of the complaint process's own errors (bad requests from our side)."""


class UnknownComplaint(ComplaintError, LookupError):
    def __init__(self, number: str) -> None:
        super().__init__(f"no complaint {number!r}")
        self.number = number


class UnknownCategory(ComplaintError, ValueError):
    def __init__(self, category: str, known: Mapping[str, object]) -> None:
        super().__init__(f"no complaint category {category!r}; known: {', '.join(sorted(known))}")
        self.category = category


class IllegalTransition(ComplaintError):
    """A move the lifecycle does not allow (or a concurrent change got there first)."""

    def __init__(self, current: ComplaintStatus, target: ComplaintStatus, detail: str = "") -> None:
        message = detail or f"a complaint cannot go from {current.value} to {target.value}"
        super().__init__(f"{message}; from {current.value} it may go to: {_allowed(current)}")
        self.current = current
        self.target = target


class ComplaintStatus(StrEnum):
    RECEIVED = "received"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_CUSTOMER = "waiting_for_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Channel(StrEnum):
    """Where a complaint came in."""

    IVR = "ivr"  # recorded message, self-service
    OPERATOR = "operator"  # opened by an operator during a call
    WEB = "web"
    EMAIL = "email"
    LETTER = "letter"
    BRANCH = "branch"  # a post office counter


#: TRANSITIONS[current] -> statuses a ``move`` may go to. ``assigned`` is reached by ``assign``.
TRANSITIONS: Mapping[ComplaintStatus, frozenset[ComplaintStatus]] = MappingProxyType(
    {
        ComplaintStatus.RECEIVED: frozenset(),
        ComplaintStatus.ASSIGNED: frozenset({ComplaintStatus.IN_PROGRESS}),
        ComplaintStatus.IN_PROGRESS: frozenset({ComplaintStatus.WAITING_FOR_CUSTOMER, ComplaintStatus.RESOLVED}),
        ComplaintStatus.WAITING_FOR_CUSTOMER: frozenset({ComplaintStatus.IN_PROGRESS}),
        ComplaintStatus.RESOLVED: frozenset({ComplaintStatus.CLOSED, ComplaintStatus.IN_PROGRESS}),
        ComplaintStatus.CLOSED: frozenset(),
    }
)
#: statuses in which the deadline no longer runs
ANSWERED = frozenset({ComplaintStatus.RESOLVED, ComplaintStatus.CLOSED})


def _allowed(current: ComplaintStatus) -> str:
    if current is ComplaintStatus.CLOSED:
        return "nothing, closed is final"
    if current is ComplaintStatus.RECEIVED:
        return "assigned, by giving it an owner (assign)"
    return ", ".join(s.value for s in sorted(TRANSITIONS[current]))


def check_move(current: ComplaintStatus, target: ComplaintStatus) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is in :data:`TRANSITIONS`."""
    if target not in TRANSITIONS[current]:
        detail = ""
        if target is ComplaintStatus.ASSIGNED:
            detail = "a complaint becomes assigned by giving it an owner (assign), not by a move"
        raise IllegalTransition(current, target, detail)


def after_assign(current: ComplaintStatus) -> ComplaintStatus:
    """The status after a new owner: ``received`` becomes ``assigned``, the rest stay."""
    if current is ComplaintStatus.CLOSED:
        raise IllegalTransition(current, ComplaintStatus.ASSIGNED, "a closed complaint cannot change owner")
    return ComplaintStatus.ASSIGNED if current is ComplaintStatus.RECEIVED else current


# -- deadlines ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deadline:
    """``days`` after receipt, counted as ``calendar`` days or Italian ``business`` days."""

    days: int
    business: bool

    def __post_init__(self) -> None:
        if not 1 <= self.days <= 3650:
            raise ValueError(f"a deadline needs 1 to 3650 days, not {self.days}")

    def __str__(self) -> str:
        return f"{self.days} {'business' if self.business else 'calendar'} days"


#: Defaults; docs/complaints.md says which are researched (reliability.md) and which are assumptions.
DEFAULT_DEADLINES: Mapping[str, Deadline] = MappingProxyType(
    {
        # Banca d'Italia, Trasparenza sez. XI §3 / PSD2: 15 business days (researched)
        "payments": Deadline(15, business=True),
        # Banca d'Italia, Trasparenza sez. XI §3: 60 days (researched)
        "banking": Deadline(60, business=False),
        # AGCOM rules for postal services and for mobile telephony not researched: assumptions
        "postal": Deadline(45, business=False),
        "parcels": Deadline(45, business=False),
        "mobile": Deadline(45, business=False),
        # not classified (a recorded message nobody has listened to yet): the strictest deadline
        "other": Deadline(15, business=True),
    }
)
#: the categories the IVR's complaint menu offers (dialplan/main.yaml) are all among the above

_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_DEADLINE = re.compile(r"\s*(\d+)\s*(business|calendar)(?:\s+days?)?\s*")


def parse_deadline(text: str) -> Deadline:
    """``"15 business"``, ``"60 calendar days"`` -> :class:`Deadline`; ``ValueError`` otherwise."""
    match = _DEADLINE.fullmatch(text)
    if match is None:
        raise ValueError(f"deadline {text!r}: write '<days> business' or '<days> calendar'")
    return Deadline(int(match[1]), business=match[2] == "business")


def deadlines(overrides: Mapping[str, str] | None = None) -> Mapping[str, Deadline]:
    """The default categories with ``overrides`` applied (new categories may be added).

    ``deadlines({"postal": "30 calendar", "insurance": "45 calendar"})``; a bad category name or
    deadline raises ``ValueError`` naming it, so start-up stops on a typo.
    """
    result = dict(DEFAULT_DEADLINES)
    for category, text in (overrides or {}).items():
        if not _CATEGORY.fullmatch(category):
            raise ValueError(f"complaint category {category!r}: lower-case letters, digits and '_' only")
        result[category] = parse_deadline(text)
    return MappingProxyType(result)


@functools.cache
def _italian_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("IT", years=year))


def is_business_day(day: date) -> bool:
    """Monday to Friday and not an Italian national holiday."""
    return day.weekday() < 5 and day not in _italian_holidays(day.year)


def add_business_days(start: date, days: int) -> date:
    """The ``days``-th business day after ``start`` (``start`` itself never counts)."""
    day = start
    while days > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            days -= 1
    return day


def italian_day(at: datetime) -> date:
    """The date in Italy at the instant ``at`` (aware)."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}; pass a timezone-aware one")
    return at.astimezone(ITALY_TZ).date()


def due_date(received_at: datetime, deadline: Deadline) -> date:
    """The last day to answer a complaint received at ``received_at`` (aware)."""
    received = italian_day(received_at)
    if deadline.business:
        return add_business_days(received, deadline.days)
    return received + timedelta(days=deadline.days)


def is_overdue(status: ComplaintStatus, due_on: date, now: datetime) -> bool:
    """Still unanswered after its due day (Italian date)."""
    return status not in ANSWERED and italian_day(now) > due_on


def new_number() -> str:
    """A random complaint number: 9 digits, the first 1-9 (no leading zero to lose)."""
    return str(10 ** (NUMBER_DIGITS - 1) + secrets.randbelow(9 * 10 ** (NUMBER_DIGITS - 1)))
