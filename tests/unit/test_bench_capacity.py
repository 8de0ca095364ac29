"""The capacity benchmark's readings of the machine (``bench.capacity``): what the trials print as
"machine % busy" next to each system's CPU per call."""

from __future__ import annotations

import math
import time

import redis

from bench.capacity import busy_pct, machine_jiffies, redis_counters


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


def test_given_redis_when_commands_run_then_counted_and_a_dead_server_reads_as_unknown() -> None:
    url = "redis://127.0.0.1:6379/0"
    cpu0, commands0 = redis_counters(url)
    client = redis.Redis.from_url(url)
    try:
        for _ in range(50):
            client.ping()
    finally:
        client.close()
    cpu1, commands1 = redis_counters(url)
    assert commands1 - commands0 >= 50 and cpu1 >= cpu0 >= 0
    cpu, commands = redis_counters("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert math.isnan(cpu) and commands == 0


async def test_given_a_busy_machine_then_a_trial_waits_until_it_is_quiet_or_patience_runs_out() -> None:
    from bench.capacity import wait_quiet

    # busy ticks per window: 90 %, 60 %, then 10 % of 100 ticks
    samples = iter([(0, 0), (90, 100), (90, 100), (150, 200), (150, 200), (160, 300)])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    waited, busy = await wait_quiet(threshold=20.0, patience=60.0, sample=lambda: next(samples), sleep=sleep)
    assert (waited, busy) == (3.0, 10.0) and slept == [1.0, 1.0, 1.0]

    always_busy = iter([(0, 0), (100, 100)] * 10)
    waited, busy = await wait_quiet(threshold=20.0, patience=3.0, sample=lambda: next(always_busy), sleep=sleep)
    assert (waited, busy) == (3.0, 100.0), "gives up after its patience and says how busy it was"
