"""The seasonal forecast against hand-computed weights, holidays as exceptions, and its accuracy."""

from __future__ import annotations

import math
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ivr.hours import Calendar, CalendarSpec
from wfm import (
    ForecastModel,
    IntervalTable,
    forecast_from_table,
    holdout_accuracy,
    seasonal_forecast,
    synthetic_history,
)
from wfm.opening import Area

ROME = ZoneInfo("Europe/Rome")
CUSTOMERS = Area("customers", Calendar.from_spec(CalendarSpec(hours={"mon-sat": "08:00-20:00"})))
SLOTS = 48
NINE = 18  # 09:00-09:30


def _table(first_day: date, days: int, offered: dict[str, np.ndarray], aht: float | None = 200.0) -> IntervalTable:
    return IntervalTable(
        interval_minutes=30,
        first_day=first_day,
        days=days,
        zone=ROME,
        offered=offered,
        handle_seconds={q: a * (aht or 0.0) for q, a in offered.items()},
        handled={q: a * (aht is not None) for q, a in offered.items()},
    )


def test_given_three_mondays_when_forecast_then_exponentially_weighted_mean() -> None:
    # Mondays 2 Feb, 9 Feb, 16 Feb 2026 with 10, 20, 40 calls at 09:00 (oldest first)
    calls = np.zeros((15, SLOTS))
    calls[[0, 7, 14], NINE] = [10, 20, 40]
    history = _table(date(2026, 2, 2), 15, {"general": calls})

    forecast = seasonal_forecast(
        history, start=date(2026, 2, 23), days=7, area_of=lambda _: CUSTOMERS, model=ForecastModel(alpha=0.5)
    )
    # weights 0.5, 0.25, 0.125 for the newest .. oldest, normalised: (20 + 5 + 1.25) / 0.875 = 30
    assert forecast.offered["general"][0, NINE] == pytest.approx(30.0)
    assert forecast.offered["general"][1:].sum() == 0  # the other weekdays never had a call
    assert forecast.aht["general"][0, NINE] == pytest.approx(200.0)
    one_week = seasonal_forecast(
        history, start=date(2026, 2, 23), days=1, area_of=lambda _: CUSTOMERS, model=ForecastModel(alpha=0.5, weeks=1)
    )
    assert one_week.offered["general"][0, NINE] == pytest.approx(40.0)


def test_given_holidays_when_forecast_then_left_out_of_training_and_forecast_closed() -> None:
    # Mondays 23 Mar, 30 Mar, 6 Apr (Easter Monday 2026) and 13 Apr; the holiday had a freak 500
    first = date(2026, 3, 23)
    calls = np.zeros((22, SLOTS))
    calls[[0, 7, 14, 21], NINE] = [10, 10, 500, 10]
    history = _table(first, 22, {"general": calls})

    forecast = seasonal_forecast(history, start=date(2026, 4, 20), days=14, area_of=lambda _: CUSTOMERS)
    assert forecast.offered["general"][0, NINE] == pytest.approx(10.0)  # Easter Monday ignored
    # 25 April (Liberation Day) is a Saturday in 2026: forecast closed and listed
    assert forecast.offered["general"][5].sum() == 0
    assert any(text.startswith("2026-04-25 ") and "public holiday" in text for text in forecast.exceptions)


def test_given_missing_handle_times_when_forecast_then_queue_mean_then_default() -> None:
    calls = np.zeros((7, SLOTS))
    calls[0, NINE] = 5
    calls[0, NINE + 1] = 5
    seconds = np.zeros((7, SLOTS))
    seconds[0, NINE] = 5 * 300  # only the 09:00 calls have a handle time
    known = np.zeros((7, SLOTS))
    known[0, NINE] = 5
    history = IntervalTable(
        30,
        date(2026, 3, 2),
        7,
        ROME,
        {"q": calls, "none": calls},
        {"q": seconds, "none": 0 * seconds},
        {"q": known, "none": 0 * known},
    )

    forecast = seasonal_forecast(history, start=date(2026, 3, 9), days=1, area_of=lambda _: CUSTOMERS, default_aht=150)
    assert forecast.aht["q"][0, NINE] == 300 and forecast.aht["q"][0, NINE + 1] == 300  # the queue's mean
    assert forecast.aht["none"][0, NINE] == 150
    assert "none: no handle times in the data; AHT 150s assumed" in forecast.notes
    given = forecast_from_table(history, default_aht=120)
    assert given.aht["q"][0, NINE + 1] == 300 and given.aht["none"][0, NINE] == 120


def test_given_known_held_out_week_when_accuracy_then_hand_computed_errors() -> None:
    # three weeks of 10 calls in every open slot Monday to Saturday, then a held-out week of 12
    first = date(2026, 2, 2)
    open_slots = np.stack([CUSTOMERS.open_slots(first + timedelta(days=i), 30) for i in range(28)])
    calls = np.where(open_slots, 10.0, 0.0)
    calls[21:] = np.where(open_slots[21:], 12.0, 0.0)
    history = _table(first, 28, {"general": calls})

    [row] = holdout_accuracy(history, area_of=lambda _: CUSTOMERS) or []
    assert row.week_start == date(2026, 2, 23)
    assert row.actual_calls == 12 * 24 * 6
    assert row.forecast_calls == pytest.approx(10 * 24 * 6)
    assert row.wape == pytest.approx(2 / 12)
    assert row.mape == pytest.approx(2 / 12)
    assert row.smape == pytest.approx(2 * 2 / 22)
    assert row.bias == pytest.approx(-2 / 12)
    assert row.daily_wape == pytest.approx(2 / 12)
    assert row.naive_wape == pytest.approx(2 / 12)


def test_given_short_or_silent_history_when_accuracy_then_none_or_nan_not_a_crash() -> None:
    assert (
        holdout_accuracy(_table(date(2026, 3, 2), 13, {"q": np.zeros((13, SLOTS))}), area_of=lambda _: CUSTOMERS)
        is None
    )
    rows = holdout_accuracy(_table(date(2026, 3, 2), 14, {"q": np.zeros((14, SLOTS))}), area_of=lambda _: CUSTOMERS)
    assert rows is not None and math.isnan(rows[0].wape) and rows[0].smape == 0.0


def test_given_noisy_weekly_pattern_when_forecast_then_beats_seasonal_naive() -> None:
    history = synthetic_history(
        ["a", "b"], area_of=lambda _: CUSTOMERS, first_day=date(2026, 1, 5), weeks=8, daily_calls=600.0, seed=4
    )
    rows = holdout_accuracy(history, area_of=lambda _: CUSTOMERS) or []

    assert [r.queue for r in rows] == ["a", "b", "*"]
    for row in rows:
        assert row.wape < row.naive_wape  # averaging weeks removes noise that last week alone keeps
        assert abs(row.bias) < 0.05 and row.daily_wape < 0.1
