"""The capacity benchmark's readings of the machine (``bench.capacity``): what the trials print as
"machine % busy" next to each system's CPU per call."""

from __future__ import annotations

import math
import time

from bench.capacity import busy_pct, machine_jiffies


def test_given_two_readings_then_busy_share_of_all_cores() -> None:
    assert busy_pct((100, 1_000), (250, 1_200)) == 75.0
    assert busy_pct((0, 0), (0, 400)) == 0.0
    assert math.isnan(busy_pct((5, 10), (5, 10))), "no time passed: no share"


def test_given_this_machine_when_it_spins_then_busy_ticks_grow_and_never_pass_the_total() -> None:
    before = machine_jiffies()
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:  # one core busy for at least 20 clock ticks
        pass
    after = machine_jiffies()
    assert 0 <= before[0] <= before[1] and 0 <= after[0] <= after[1]
    assert after[0] > before[0] and after[1] > before[1]
    assert 0 < busy_pct(before, after) <= 100
