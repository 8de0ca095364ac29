"""Which planning intervals an area is open, from the calendars in ``dialplan/hours.yaml``.

Theory of operation. Planning works on a local wall-clock grid: a day has ``1440 / interval``
slots, slot ``i`` starting at ``i * interval`` minutes past local midnight in the calendar's zone
(Europe/Rome), so a DST change never moves the 08:00 slot. A slot is open when the whole slot lies
inside one of the weekday's opening ranges, the day is no public holiday (the ``holidays`` package,
as the IVR's :class:`ivr.hours.Calendar` uses) and no extra closure overlaps it. A range that
starts or ends off the grid (08:10) leaves the partly open slot closed: a shift must never start
before the doors open.

Holiday look-ups build a table per year, so an :class:`Area` caches each day's answer.

Example::

    area = Area("customers", config.calendars["customers"])
    area.open_slots(date(2026, 3, 2), 30)[16]      # True: Monday 08:00-08:30
    area.hours_text(date(2026, 3, 2))              # '08:00-20:00'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
import numpy.typing as npt

from ivr.hours import Calendar

BoolArray = npt.NDArray[np.bool_]
MINUTES_PER_DAY = 24 * 60


def _minutes(moment: time) -> int:
    # ivr.hours writes 24:00 as time.max
    return MINUTES_PER_DAY if moment == time.max else moment.hour * 60 + moment.minute


def _naive(moment: datetime) -> datetime:
    # the same reading as Calendar.closure_at: closures are local wall-clock times
    return moment.replace(tzinfo=None)


@dataclass(eq=False)
class Area:
    """A named calendar (``customers``, ``internal``) with cached per-day answers."""

    name: str
    calendar: Calendar
    _holidays: dict[date, str | None] = field(default_factory=dict, init=False, repr=False)
    _open: dict[tuple[date, int], BoolArray] = field(default_factory=dict, init=False, repr=False)

    def holiday(self, day: date) -> str | None:
        """The public holiday's name on ``day`` in this area's country, or ``None``."""
        if day not in self._holidays:
            self._holidays[day] = self.calendar.holiday_name(day)
        return self._holidays[day]

    def open_slots(self, day: date, interval_minutes: int) -> BoolArray:
        """One flag per slot of ``day``: open for the whole slot. Read-only array."""
        key = (day, interval_minutes)
        cached = self._open.get(key)
        if cached is not None:
            return cached
        slots = MINUTES_PER_DAY // interval_minutes
        mask = np.zeros(slots, dtype=np.bool_)
        if self.holiday(day) is None:
            starts = np.arange(slots) * interval_minutes
            for begin, end in self.calendar.weekly[day.weekday()]:
                mask |= (starts >= _minutes(begin)) & (starts + interval_minutes <= _minutes(end))
            midnight = datetime.combine(day, time())
            for closure in self.calendar.closures:
                first = (_naive(closure.start) - midnight) / timedelta(minutes=1)
                last = (_naive(closure.end) - midnight) / timedelta(minutes=1)
                mask &= ~((starts < last) & (starts + interval_minutes > first))
        mask.flags.writeable = False
        self._open[key] = mask
        return mask

    def hours_text(self, day: date) -> str:
        """``08:00-20:00`` for the weekday of ``day``; ``closed (Natale)`` on a holiday."""
        name = self.holiday(day)
        if name is not None:
            return f"closed ({name})"
        ranges = self.calendar.weekly[day.weekday()]
        if not ranges:
            return "closed"
        return ", ".join(f"{begin:%H:%M}-{'24:00' if end == time.max else f'{end:%H:%M}'}" for begin, end in ranges)


def slot_time(slot: int, interval_minutes: int) -> time:
    """The local start time of slot ``slot``: ``slot_time(17, 30)`` is 08:30."""
    minutes = slot * interval_minutes
    return time(minutes // 60, minutes % 60)


def slot_label(slot: int, interval_minutes: int) -> str:
    """``08:30-09:00``: the slot's span, its end written 24:00 at midnight."""
    end = (slot + 1) * interval_minutes
    return f"{slot_time(slot, interval_minutes):%H:%M}-{end // 60:02d}:{end % 60:02d}"


__all__ = ["MINUTES_PER_DAY", "Area", "slot_label", "slot_time"]
