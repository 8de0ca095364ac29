"""Report intervals in local wall-clock time: 15/30/60 minutes, a day or a calendar month.

Theory of operation. A bucket is named by the instant it starts, as integer epoch seconds (UTC), so
it can be a dict key: two local wall times that read the same (02:00 CEST and 02:00 CET on the
night clocks go back) are different instants and so different buckets. The bucket of an instant is
found by flooring its *local* time (minutes down to the interval, or to midnight, or to the first
of the month) and converting back with the same ``fold``, which is what keeps DST days right: in
Europe/Rome the last Sunday of March has 23 hourly buckets and the last Sunday of October 25,
two of them starting at a local 02:00.

Speed: computing a local time costs about a microsecond, too much a million times over. Every
zone in use today has an offset in whole quarter hours and changes it on a quarter hour, so all
the instants of one UTC quarter hour fall in the same bucket; :meth:`Buckets.start_of` asks the
zone once per quarter hour and remembers the answer.

Example::

    hours = Buckets("60m", ZoneInfo("Europe/Rome"))
    first = hours.start_of(datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp())
    hours.local(first)                  # 2026-10-25 02:00:00+02:00
    hours.local(hours.next_start(first))  # 2026-10-25 02:00:00+01:00
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Literal, cast, get_args
from zoneinfo import ZoneInfo

Interval = Literal["15m", "30m", "60m", "day", "month"]
INTERVALS: tuple[str, ...] = get_args(Interval)
_MINUTES = {"15m": 15, "30m": 30, "60m": 60}
#: the unit within which every instant lands in one bucket (see the module docstring)
QUARTER = 900


def parse_interval(value: str) -> Interval:
    """``"60m"`` -> ``"60m"``; anything else raises ``ValueError`` listing the accepted values."""
    if value in INTERVALS:
        return cast("Interval", value)
    raise ValueError(f"unknown interval {value!r}; use one of {', '.join(INTERVALS)}")


class Buckets:
    """The buckets of one interval length in one zone; bucket starts are epoch seconds (``int``)."""

    __slots__ = ("by_quarter", "interval", "zone")

    def __init__(self, interval: Interval, zone: ZoneInfo) -> None:
        parse_interval(interval)
        self.interval = interval
        self.zone = zone
        #: bucket start by UTC quarter hour (``int(timestamp // 900)``) for the hot loops that
        #: look it up themselves; :meth:`start_of` fills it
        self.by_quarter: dict[int, int] = {}

    def start_of(self, timestamp: float) -> int:
        """The start of the bucket holding ``timestamp`` (epoch seconds), as epoch seconds."""
        quarter = int(timestamp // QUARTER)
        start = self.by_quarter.get(quarter)
        if start is None:
            start = self.by_quarter[quarter] = self._floor(quarter * QUARTER)
        return start

    def next_start(self, start: int) -> int:
        """The start of the bucket after the one starting at ``start``."""
        if self.interval in _MINUTES:
            # one step of absolute time, floored again: across a DST change the floor lands on the
            # local boundary (03:00 after 01:00 in March, the second 02:00 in October)
            return self.start_of(start + _MINUTES[self.interval] * 60)
        local = self.local(start)
        if self.interval == "day":
            return _midnight(local.date() + timedelta(days=1), self.zone)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return _midnight(date(year, month, 1), self.zone)

    def between(self, start: datetime, end: datetime) -> Iterator[int]:
        """Every bucket overlapping ``[start, end)`` (aware datetimes), in order."""
        stop = end.timestamp()
        bucket = self.start_of(start.timestamp())
        while bucket < stop:
            yield bucket
            bucket = self.next_start(bucket)

    def local(self, start: int) -> datetime:
        """Epoch seconds as an aware local datetime (its ``fold`` and offset set by the zone)."""
        return datetime.fromtimestamp(start, UTC).astimezone(self.zone)

    def _floor(self, timestamp: int) -> int:
        local = datetime.fromtimestamp(timestamp, UTC).astimezone(self.zone)
        if self.interval in _MINUTES:
            step = _MINUTES[self.interval]
            # replace() keeps fold, so a floored 02:xx of the repeated hour stays in that hour
            floored = local.replace(minute=local.minute - local.minute % step, second=0, microsecond=0)
            return int(floored.timestamp())
        if self.interval == "day":
            return _midnight(local.date(), self.zone)
        return _midnight(local.date().replace(day=1), self.zone)


def _midnight(day: date, zone: ZoneInfo) -> int:
    # midnight exists on every day in Europe/Rome (clocks change at 02:00/03:00)
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


__all__ = ["INTERVALS", "QUARTER", "Buckets", "Interval", "parse_interval"]
