"""Forecast of offered calls and handle time per queue and interval, and its held-out accuracy.

Theory of operation. The model is deliberately one a supervisor can check by hand: the forecast
for a Tuesday's 10:00-10:30 is an exponentially weighted mean of the same slot on the previous
Tuesdays (the most recent weighs ``alpha``, the one before ``alpha (1 - alpha)``, and so on, over
at most ``weeks`` weeks). The weekday carries the weekly seasonality, the slot the daily one, and
the weights follow a level that drifts. Handle time is the same weighted mean of handle seconds
divided by that of answered calls, falling back to the queue's mean, then to a default.

Public holidays are exceptions both ways: a holiday in the history is left out of every mean
(Easter Monday is no Monday), and a holiday in the horizon is forecast closed, listed in
``exceptions``. Which days are holidays comes from the queue's area calendar.

Accuracy is measured the honest way: the last week of history is held out, the model is fitted on
the weeks before it, and its forecast of that week is compared with what happened: WAPE (sum of
absolute errors over the sum of actuals, the headline), MAPE over intervals with calls, sMAPE,
bias, the same WAPE on daily totals, and the WAPE of the seasonal-naive forecast (same slot last
week) for comparison.

Example::

    forecast = seasonal_forecast(history, start=date(2026, 3, 2), days=7, area_of=areas.get)
    forecast.offered["general"][0, 20]     # Monday 10:00-10:30
    accuracy = holdout_accuracy(history, area_of=areas.get)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from wfm.history import IntervalTable
from wfm.opening import MINUTES_PER_DAY, Area

FloatArray = npt.NDArray[np.float64]
AreaOf = Callable[[str], Area]
HOLDOUT_DAYS = 7


class ForecastModel(BaseModel):
    """How much the most recent week weighs, and how many weeks back the model looks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.3
    weeks: Annotated[int, Field(ge=1, le=52)] = 8


@dataclass(frozen=True, eq=False)
class Forecast:
    """Per queue, ``days x slots`` offered calls and AHT (seconds) from ``first_day`` on."""

    interval_minutes: int
    first_day: date
    days: int
    zone: ZoneInfo
    offered: Mapping[str, FloatArray]
    aht: Mapping[str, FloatArray]
    exceptions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def slots_per_day(self) -> int:
        return MINUTES_PER_DAY // self.interval_minutes

    @property
    def dates(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]


@dataclass(frozen=True, slots=True)
class Accuracy:
    """How the model did on the held-out week; shares, not percentages (0.12 is 12%)."""

    queue: str
    week_start: date
    actual_calls: float
    forecast_calls: float
    wape: float
    mape: float
    smape: float
    bias: float
    daily_wape: float
    naive_wape: float


def forecast_from_table(table: IntervalTable, *, default_aht: float) -> Forecast:
    """Take a forecast as given (CSV or JSON with future timestamps): offered as is, AHT where
    unknown from the queue's mean, else ``default_aht``."""
    aht: dict[str, FloatArray] = {}
    notes = list(table.notes)
    for queue, offered in table.offered.items():
        aht[queue], note = _aht(table.handle_seconds[queue], table.handled[queue], offered.shape, queue, default_aht)
        notes.extend(note)
    return Forecast(
        interval_minutes=table.interval_minutes,
        first_day=table.first_day,
        days=table.days,
        zone=table.zone,
        offered=dict(table.offered),
        aht=aht,
        notes=tuple(notes),
    )


def seasonal_forecast(
    history: IntervalTable,
    *,
    start: date,
    days: int,
    area_of: AreaOf,
    model: ForecastModel | None = None,
    default_aht: float = 180.0,
) -> Forecast:
    """Forecast ``days`` days from ``start`` for every queue in ``history`` (see the module doc)."""
    model = model or ForecastModel()
    if days < 1:
        raise ValueError("forecast at least one day")
    history_dates = history.dates
    targets = [start + timedelta(days=i) for i in range(days)]
    offered: dict[str, FloatArray] = {}
    aht: dict[str, FloatArray] = {}
    exceptions: set[str] = set()
    notes = list(history.notes)
    for queue in sorted(history.offered):
        area = area_of(queue)
        usable = [i for i, day in enumerate(history_dates) if area.holiday(day) is None]
        calls_hist = history.offered[queue]
        seconds_hist = history.handle_seconds[queue]
        known_hist = history.handled[queue]
        fallback_aht, note = _mean_aht(seconds_hist, known_hist, queue, default_aht)
        notes.extend(note)
        calls = np.zeros((days, history.slots_per_day))
        seconds = np.zeros_like(calls)
        known = np.zeros_like(calls)
        for t, day in enumerate(targets):
            holiday = area.holiday(day)
            if holiday is not None:
                exceptions.add(f"{day.isoformat()} {holiday}: public holiday, forecast closed")
                continue
            same_weekday = [i for i in usable if history_dates[i].weekday() == day.weekday() and history_dates[i] < day]
            recent = same_weekday[-model.weeks :][::-1]  # most recent first
            if not recent:
                notes.append(f"{queue}: no past {day:%A} in the history; {day} forecast as no traffic")
                continue
            weights = model.alpha * (1 - model.alpha) ** np.arange(len(recent))
            weights /= weights.sum()
            calls[t] = weights @ calls_hist[recent]
            seconds[t] = weights @ seconds_hist[recent]
            known[t] = weights @ known_hist[recent]
        offered[queue] = calls
        with np.errstate(divide="ignore", invalid="ignore"):
            aht[queue] = np.where(known > 0, seconds / np.where(known > 0, known, 1.0), fallback_aht)
    return Forecast(
        interval_minutes=history.interval_minutes,
        first_day=start,
        days=days,
        zone=history.zone,
        offered=offered,
        aht=aht,
        exceptions=tuple(sorted(exceptions)),
        notes=tuple(dict.fromkeys(notes)),
    )


def holdout_accuracy(
    history: IntervalTable, *, area_of: AreaOf, model: ForecastModel | None = None
) -> list[Accuracy] | None:
    """Fit on all but the last week, forecast that week, compare. One row per queue plus ``*``
    for all queues together; ``None`` when the history is shorter than two weeks."""
    if history.days < 2 * HOLDOUT_DAYS:
        return None
    split = history.days - HOLDOUT_DAYS
    train, test = history.days_slice(0, split), history.days_slice(split, history.days)
    forecast = seasonal_forecast(train, start=test.first_day, days=HOLDOUT_DAYS, area_of=area_of, model=model)
    rows: list[Accuracy] = []
    actual_all, predicted_all, naive_all = [], [], []
    for queue in sorted(history.offered):
        actual = test.offered[queue]
        predicted = forecast.offered[queue]
        naive = train.offered[queue][-HOLDOUT_DAYS:]
        rows.append(_accuracy(queue, test.first_day, actual, predicted, naive))
        actual_all.append(actual)
        predicted_all.append(predicted)
        naive_all.append(naive)
    if len(rows) > 1:
        rows.append(
            _accuracy(
                "*",
                test.first_day,
                np.concatenate(actual_all, axis=1),
                np.concatenate(predicted_all, axis=1),
                np.concatenate(naive_all, axis=1),
            )
        )
    return rows


def _accuracy(queue: str, week_start: date, actual: FloatArray, predicted: FloatArray, naive: FloatArray) -> Accuracy:
    total = float(actual.sum())
    error = np.abs(predicted - actual)
    with_calls = actual > 0
    either = (actual + predicted) > 0
    daily_error = np.abs(predicted.sum(axis=1) - actual.sum(axis=1))

    def share(numerator: float) -> float:
        return numerator / total if total > 0 else float("nan")

    return Accuracy(
        queue=queue,
        week_start=week_start,
        actual_calls=total,
        forecast_calls=float(predicted.sum()),
        wape=share(float(error.sum())),
        mape=float(np.mean(error[with_calls] / actual[with_calls])) if with_calls.any() else float("nan"),
        smape=float(np.mean(2 * error[either] / (actual[either] + predicted[either]))) if either.any() else 0.0,
        bias=share(float((predicted - actual).sum())),
        daily_wape=share(float(daily_error.sum())),
        naive_wape=share(float(np.abs(naive - actual).sum())),
    )


def _mean_aht(seconds: FloatArray, known: FloatArray, queue: str, default_aht: float) -> tuple[float, list[str]]:
    total = float(known.sum())
    if total > 0:
        return float(seconds.sum()) / total, []
    return default_aht, [f"{queue}: no handle times in the data; AHT {default_aht:g}s assumed"]


def _aht(
    seconds: FloatArray, known: FloatArray, shape: tuple[int, ...], queue: str, default_aht: float
) -> tuple[FloatArray, list[str]]:
    fallback, notes = _mean_aht(seconds, known, queue, default_aht)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(known > 0, seconds / np.where(known > 0, known, 1.0), fallback)
    return np.broadcast_to(values, shape).astype(np.float64), notes


__all__ = ["Accuracy", "Forecast", "ForecastModel", "forecast_from_table", "holdout_accuracy", "seasonal_forecast"]
