"""How long workforce planning takes: a week of 15-minute intervals for 50 queues, and a 4-week plan.

Runs on made-up history (``wfm.synthetic``: Poisson calls with a weekly and daily pattern, nothing
while closed) for synthetic queues split over the two shipped areas (customers Mon-Sat 08-20,
internal Mon-Sat 08-19, Italian holidays), and a synthetic roster for the 4-week case. Prints the
wall-clock time of each stage and the solver's status and gap; no Asterisk, Redis or network.

    python -m bench.wfm_plan                         # both cases, defaults below
    python -m bench.wfm_plan --queues 10 --weeks 2   # smaller

Times are for this machine (printed at the top); the planner is single-threaded except inside
HiGHS.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from acd.queues import QueueSpec
from acd.roster import OperatorSpec
from ivr.config import load_config
from wfm import PlanRequest, PlanSetup, RosterRules, StaffingTargets, make_plan, synthetic_history
from wfm.opening import Area

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
#: the first Monday of the history; the plans start eight weeks later (2 March 2026)
HISTORY_START = date(2026, 1, 5)


def timed(label: str, action: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - began
    print(f"  {label:<44} {seconds:8.2f} s", flush=True)
    return result, seconds


def synthetic_setup(queues: int, operators: int, seed: int) -> PlanSetup:
    """``queues`` queues (one skill each, alternating areas) and ``operators`` operators with three
    skills each, so every queue has a few dozen operators who could serve it."""
    config = load_config(ROOT / "dialplan", ROOT / "skills")
    rng = np.random.default_rng(seed)
    specs = {
        f"q{i:02d}": QueueSpec(
            name=f"Queue {i}",
            tier="general",
            calendar="internal" if i % 5 == 4 else "customers",
            required_skills={f"skill{i:02d}": 5},
        )
        for i in range(queues)
    }
    roster = {}
    for n in range(operators):
        skills = rng.choice(queues, size=min(3, queues), replace=False)
        roster[f"op{n:04d}"] = OperatorSpec.model_validate(
            {
                "name": f"Operatore {n}",
                "site": "roma",
                "tiers": ["general"],
                "skills": {f"skill{int(s):02d}": int(rng.integers(5, 11)) for s in skills},
            }
        )
    return PlanSetup(calendars=config.calendars, queues=specs, operators=roster)


def run_case(
    title: str, setup: PlanSetup, *, weeks: int, interval: int, step: int, daily_calls: float, request: dict[str, Any]
) -> None:
    print(f"\n{title}")
    areas = {name: Area(name, calendar) for name, calendar in setup.calendars.items()}

    def area_of(queue: str) -> Area:
        return areas[setup.queues[queue].calendar]

    history, _ = timed(
        "synthetic history (8 weeks, not planning)",
        lambda: synthetic_history(
            sorted(setup.queues),
            area_of=area_of,
            first_day=HISTORY_START,
            weeks=8,
            interval_minutes=interval,
            daily_calls=daily_calls,
        ),
    )
    plan_request = PlanRequest.model_validate(
        {"interval_minutes": interval, "weeks": weeks, "shifts": {"step_minutes": step}, **request}
    )
    result, total = timed("plan (all stages below)", lambda: make_plan(history, setup, plan_request))
    for stage, seconds in result.timings.items():
        print(f"    {stage.removesuffix('_s'):<42} {seconds:8.2f} s")
    intervals = sum(int(t.open.sum()) for t in result.staffing.queues.values())
    shifts = sum(s.total for s in result.shifts.queues.values())
    bound = sum(s.lp_bound for s in result.shifts.queues.values())
    print(
        f"  {len(result.staffing.queues)} queues, {result.staffing.days} days, {intervals} open queue-intervals, "
        f"{shifts} shifts (LP bound {bound:g})"
    )
    accuracy = [a for a in result.accuracy or [] if a.queue == "*"]
    if accuracy:
        a = accuracy[0]
        print(f"  held-out week: WAPE {a.wape:.1%} (seasonal naive {a.naive_wape:.1%}), daily WAPE {a.daily_wape:.1%}")
    if result.roster is not None:
        r = result.roster
        gap = "-" if r.mip_gap is None else f"{r.mip_gap:.4%}"
        print(
            f"  roster: {r.status}, gap {gap}, {r.variables} variables, {len(r.assignments)} assigned, "
            f"{sum(u.missing for u in r.unfilled)} unfilled, {r.seconds:.2f} s"
        )
    print(f"  total {total:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wfm_plan", description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--weeks", type=int, default=4, help="weeks of the long plan")
    parser.add_argument("--operators", type=int, default=800, help="synthetic roster of the long plan")
    parser.add_argument("--time-limit", type=float, default=60.0, help="rostering time limit, seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    setup = synthetic_setup(args.queues, args.operators, args.seed)
    run_case(
        f"1 week, 15-minute intervals, {args.queues} queues, Erlang C, 6-hour shifts every 15 minutes",
        setup,
        weeks=1,
        interval=15,
        step=15,
        daily_calls=400.0,
        request={},
    )
    run_case(
        f"1 week, 15-minute intervals, {args.queues} queues, Erlang A (patience 120 s), 6-hour shifts every 15 minutes",
        setup,
        weeks=1,
        interval=15,
        step=15,
        daily_calls=400.0,
        request={"targets": StaffingTargets(model="erlang_a", patience=120)},
    )
    run_case(
        f"{args.weeks} weeks, 15-minute intervals, {args.queues} queues, shifts every 30 minutes, "
        f"named roster of {args.operators} operators (time limit {args.time_limit:g} s)",
        setup,
        weeks=args.weeks,
        interval=15,
        step=30,
        daily_calls=150.0,
        request={"roster": RosterRules(time_limit=args.time_limit)},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
