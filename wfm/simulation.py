"""A small discrete-event simulation of one interval's queue, to cross-check the Erlang formulas.

Theory of operation. Calls arrive as a Poisson stream, take exponential handle times and are
answered first come, first served by ``agents`` identical agents; with ``patience`` given, each
caller hangs up after an exponential patience if not answered by then. Under FCFS the wait of a
call is fixed by the calls ahead of it, so the simulation is the Kiefer-Wolfowitz recursion: keep
the times the agents next become free in a heap, and for each call in arrival order either take
the earliest-free agent or, if that is later than the caller's patience, hang up without using
any agent. No event list or library is needed for this one model, and the recursion is exact.

The interval's parameters are run as a steady state: a long stream with the first calls
(``warmup``) dropped, which is what the Erlang formulas describe. Random numbers come from a seeded
numpy ``Generator``, so a test gets the same figures every run.

Example::

    result = simulate(arrival_rate=100 / 1800, aht=180, agents=14, answer_within=20, seed=1)
    round(result.service_level, 2)    # ~0.89, as Erlang C's 0.888
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Figures over the measured calls (after the warm-up); rates are shares of offered calls."""

    calls: int
    service_level: float
    p_wait: float
    asa: float
    p_abandon: float
    occupancy: float


def simulate(
    *,
    arrival_rate: float,
    aht: float,
    agents: int,
    answer_within: float,
    patience: float | None = None,
    calls: int = 200_000,
    warmup: int = 10_000,
    seed: int = 0,
) -> SimulationResult:
    """Simulate ``calls`` arrivals (``arrival_rate`` per second) to ``agents`` agents.

    ``patience`` is the mean patience in seconds (Erlang A); ``None`` means nobody hangs up
    (Erlang C), which needs ``arrival_rate * aht < agents`` to settle.
    """
    if arrival_rate <= 0 or aht <= 0 or agents < 1 or calls <= warmup or warmup < 0:
        raise ValueError("need arrival_rate > 0, aht > 0, agents >= 1 and calls > warmup >= 0")
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / arrival_rate, calls)).tolist()
    services = rng.exponential(aht, calls).tolist()
    patiences = rng.exponential(patience, calls).tolist() if patience is not None else [math.inf] * calls
    free = [0.0] * agents  # when each agent is next free; a heap
    answered = in_time = waited = abandoned = 0
    total_wait = busy = 0.0
    for i in range(calls):
        arrival = arrivals[i]
        wait = max(0.0, free[0] - arrival)
        measured = i >= warmup
        if wait > patiences[i]:
            if measured:
                abandoned += 1
                waited += 1
            continue
        heapq.heapreplace(free, arrival + wait + services[i])
        if measured:
            answered += 1
            total_wait += wait
            busy += services[i]
            waited += wait > 0
            in_time += wait <= answer_within
    offered = calls - warmup
    span = arrivals[-1] - arrivals[warmup]
    return SimulationResult(
        calls=offered,
        service_level=in_time / offered,
        p_wait=waited / offered,
        asa=total_wait / answered if answered else math.inf,
        p_abandon=abandoned / offered,
        occupancy=min(1.0, busy / (agents * span)) if span > 0 else 0.0,
    )


__all__ = ["SimulationResult", "simulate"]
