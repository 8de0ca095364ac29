"""Made-up but realistic contact history, for the tests, the benchmark and trying the planner.

Calls per interval are Poisson with a mean of ``daily volume x weekday factor x intraday profile``:
a morning peak around 10:30 and a smaller afternoon one around 15:30, Monday the busiest day and
Saturday the quietest, nothing while the area is closed (nights, Sundays, public holidays). Handle
times scatter around each queue's AHT. Seeded, so every run gives the same history.

Example::

    history = synthetic_history(["general", "bancoposta"], area_of=areas, first_day=date(2026, 1, 5), weeks=8)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from wfm.history import IntervalTable
from wfm.opening import MINUTES_PER_DAY, Area

FloatArray = npt.NDArray[np.float64]
#: Monday .. Sunday, relative to an average weekday
WEEKDAY_FACTOR = (1.25, 1.1, 1.0, 1.0, 0.95, 0.6, 0.3)


def intraday_profile(interval_minutes: int) -> FloatArray:
    """Relative call intensity per slot of a day (sums to 1 over the day)."""
    hours = (np.arange(MINUTES_PER_DAY // interval_minutes) + 0.5) * interval_minutes / 60
    shape = 1.0 * np.exp(-0.5 * ((hours - 10.5) / 1.4) ** 2) + 0.7 * np.exp(-0.5 * ((hours - 15.5) / 1.8) ** 2)
    shape += 0.15
    result: FloatArray = shape / shape.sum()
    return result


def synthetic_history(
    queues: Sequence[str],
    *,
    area_of: Callable[[str], Area],
    first_day: date,
    weeks: int,
    interval_minutes: int = 30,
    daily_calls: Mapping[str, float] | float = 800.0,
    aht: Mapping[str, float] | float = 240.0,
    seed: int = 0,
    zone: ZoneInfo | None = None,
) -> IntervalTable:
    """``weeks`` weeks of history from ``first_day`` for ``queues`` (see the module doc)."""
    rng = np.random.default_rng(seed)
    days = weeks * 7
    dates = [first_day + timedelta(days=i) for i in range(days)]
    profile = intraday_profile(interval_minutes)
    offered: dict[str, FloatArray] = {}
    seconds: dict[str, FloatArray] = {}
    for queue in queues:
        area = area_of(queue)
        volume = daily_calls[queue] if isinstance(daily_calls, Mapping) else daily_calls
        mean_aht = aht[queue] if isinstance(aht, Mapping) else aht
        is_open = np.stack([area.open_slots(day, interval_minutes) for day in dates])
        factor = np.array([WEEKDAY_FACTOR[day.weekday()] for day in dates])[:, None]
        mean = volume * factor * profile[None, :] * is_open
        calls = rng.poisson(mean).astype(np.float64)
        offered[queue] = calls
        # the mean of n handle times scatters around the AHT by about 1/sqrt(n)
        spread = rng.normal(1.0, 0.1, calls.shape) / np.sqrt(np.maximum(calls, 1.0))
        seconds[queue] = calls * mean_aht * np.clip(1.0 + spread, 0.5, 1.5)
    return IntervalTable(
        interval_minutes=interval_minutes,
        first_day=first_day,
        days=days,
        zone=zone or ZoneInfo("Europe/Rome"),
        offered=offered,
        handle_seconds=seconds,
        handled={q: a.copy() for q, a in offered.items()},
    )


__all__ = ["WEEKDAY_FACTOR", "intraday_profile", "synthetic_history"]
