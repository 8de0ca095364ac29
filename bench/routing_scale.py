"""Routing at scale, without Asterisk: decision latency, Redis round trips, claim correctness.

What is measured, on a synthetic roster and queues built in memory (the YAML is not touched) and
written under a unique Redis key prefix (wiped at the end):

- **call arrives -> best operator**: ``AcdService.route_call`` for calls arriving in bursts;
- **operator ready -> best call**: ``AcdService.route_agent`` for a random ready operator while
  ``--waiting`` calls wait across every queue.

Both go through ``AcdService`` itself (the controller's code path: one read script, ``acd.routing``,
one claim script), given a duck-typed config object with the two fields routing reads
(``operators``, ``queues``); nothing is rung (offers are delivered to a sink). The calls are written
through the service's own ``LiveState``, as the controller that owns them does. Each won claim is
undone outside the timed region so the scene stays the same. Round trips are counted at the socket:
every write of a command or of a whole pipeline to Redis is one (so an EVALSHA is one, and a
NOSCRIPT reload or a pipeline's hidden ``SCRIPT EXISTS`` would show).

The **baseline** is the same decision computed purely in Python (``best_operator`` /
``best_call``) on an in-memory snapshot of every operator: the ratio shows what Redis and the
snapshot cost. ``AcdService`` keeps, per set of routes (queue and escalation step), which roster
operators fit; the warm-up fills it for every queue, as a running controller's first calls do, and
that first look is reported apart (``first_look``).

One round trip per decision: a Lua script reads the live state, chooses and claims
(``LiveState.claim_best_agent`` / ``claim_best_call``). What only the roster decides (who fits a
call, rank groups) is worked out in Python beforehand, once per set of routes; the script applies
the live part, and ``tests/unit/test_routing_scripts.py`` holds it to ``acd.routing``'s choices.
A call written by another process or escalated since takes the two-trip way (read, then claim).

**Claims at volume**: ``--workers`` processes, each with its own Redis client, race the claim and
release Lua scripts of ``acd.live`` on shared agents and calls until ``--claims`` claims were won.
Each claim or release runs in a MULTI with an INCR of a shared counter, so the logged sequence is
Redis's own execution order; afterwards the logs are merged and replayed to check that no agent
ever held two calls and no call two agents (and Redis's final state agrees).

Usage::

    python -m bench.routing_scale                # 10,000 operators, 500 skills, 10^6 claims
    python -m bench.routing_scale --quick        # small numbers, a few seconds

Results go to ``bench/results/routing_scale.{json,csv,png}``; figures are printed and recorded,
never asserted (they depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import multiprocessing
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis

from acd.agents import Agent, AgentState, NotReadyReason
from acd.live import LiveState
from acd.roster import OperatorSpec
from acd.routing import OperatorView, RoutingStrategy, WaitingCall, best_call, best_operator
from acd.scripts import CLAIM, RELEASE
from bench.report import Summary, machine, percentile, summarize
from ivr.config import IvrConfig
from unico.acd_service import AcdService

RESULTS = Path(__file__).resolve().parent / "results"
TIERS = ("general", "specialist", "enterprise")
NOW = 1_000_000.0


# --- the synthetic scene ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueView:
    """The fields of ``acd.queues.QueueSpec`` that routing reads."""

    tier: str
    required_skills: dict[str, int]
    strategy: str


@dataclass(frozen=True, slots=True)
class Scene:
    """Roster and queues: what ``AcdService`` reads as ``config.operators`` / ``config.queues``."""

    operators: dict[str, OperatorSpec]
    queues: dict[str, QueueView]


def build_scene(rng: random.Random, *, operators: int, skills: int, queues: int) -> Scene:
    """Operators with 4-12 random skills (levels 1-10); each queue needs 1-2 skills at level 1-6."""
    names = [f"s{i:03d}" for i in range(skills)]
    roster = {}
    for i in range(operators):
        own = rng.sample(names, min(len(names), rng.randint(4, 12)))
        tiers = ("general",) if rng.random() < 0.7 else ("general", rng.choice(TIERS[1:]))
        roster[f"op{i:05d}"] = OperatorSpec(
            name=f"Operator {i}", site="main", tiers=tiers, skills={s: rng.randint(1, 10) for s in own}
        )
    lines = {}
    for i in range(queues):
        need = rng.sample(names, 1 if rng.random() < 0.8 else 2)
        lines[f"q{i:03d}"] = QueueView(
            tier="general" if rng.random() < 0.9 else rng.choice(TIERS[1:]),
            required_skills={s: rng.randint(1, 6) for s in need},
            strategy="best_skill" if rng.random() < 0.8 else "longest_idle",
        )
    return Scene(operators=roster, queues=lines)


def scene_agent(rng: random.Random, agent_id: str, ready_share: float) -> Agent:
    if rng.random() < ready_share:
        return Agent(id=agent_id, state=AgentState.READY, since=NOW - rng.uniform(0, 600), registered=True)
    state = rng.choice((AgentState.ON_CALL, AgentState.WRAP_UP, AgentState.NOT_READY, AgentState.LOGGED_OUT))
    reason = NotReadyReason.BREAK if state is AgentState.NOT_READY else None
    return Agent(id=agent_id, state=state, reason=reason, since=NOW - 30, registered=state is not AgentState.LOGGED_OUT)


def scene_call(call_id: str, queue: str, spec: QueueView, enqueued_at: float, priority: int) -> WaitingCall:
    return WaitingCall(
        call_id=call_id,
        queue=queue,
        priority=priority,
        enqueued_at=enqueued_at,
        requirements=spec.required_skills,
        tier=spec.tier,
        owner="bench",
    )


# --- round-trip counting ----------------------------------------------------------------------


class RoundTrips:
    """Counts round trips at the socket: each write to Redis (a command, or a whole pipeline).

    Pass ``connection_class`` to the client. A new connection's handshake counts too (HELLO, CLIENT
    SETINFO): the warm-up opens the connection before anything is timed.
    """

    def __init__(self) -> None:
        self.count = 0
        counter = self

        class Counted(aioredis.Connection):
            async def send_packed_command(
                self, command: bytes | str | Iterable[bytes], check_health: bool = True
            ) -> None:
                counter.count += 1
                await super().send_packed_command(command, check_health)

        self.connection_class = Counted


# --- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measure:
    kind: str  # route_call | route_agent | first_look (a queue's operators read once, cold filter)
    system: str  # redis (AcdService) | pure (acd.routing on a snapshot)
    iteration: int
    latency_ms: float
    round_trips: int
    claimed: bool


def views_of(scene: Scene, agents: dict[str, Agent]) -> list[OperatorView]:
    """The snapshot ``AcdService.operator_views`` builds, taken once (the pure baseline's input)."""
    return [
        OperatorView(
            id=agent_id,
            tiers=frozenset(spec.tiers),
            skills=spec.skills,
            state=agents[agent_id].state,
            idle_since=max(agents[agent_id].since, agents[agent_id].last_call_end or 0.0),
            registered=agents[agent_id].registered,
        )
        for agent_id, spec in scene.operators.items()
        if agent_id in agents
    ]


async def measure_decisions(args: argparse.Namespace, scene: Scene, rng: random.Random) -> list[Measure]:
    prefix = f"bench:routing:{uuid.uuid4().hex}:"
    counter = RoundTrips()
    client = aioredis.Redis.from_url(args.redis, decode_responses=True, connection_class=counter.connection_class)
    clock = [NOW]
    acd = AcdService(
        redis=client,
        prefix=prefix,
        controller_id="bench",
        config=cast(Callable[[], IvrConfig], lambda: scene),
        deliver=lambda call_id, message: True,
        clock=lambda: clock[0],
        sweep_interval=3600,
    )
    live = acd.live
    out: list[Measure] = []
    try:
        agents = {agent_id: scene_agent(rng, agent_id, args.ready) for agent_id in scene.operators}
        for chunk in range(0, len(agents), 50):
            await asyncio.gather(*(live.set_agent(a) for a in list(agents.values())[chunk : chunk + 50]))
        queue_names = list(scene.queues)
        waiting = []
        for i in range(args.waiting):
            queue = rng.choice(queue_names)
            call = scene_call(f"w{i:05d}", queue, scene.queues[queue], NOW - rng.uniform(0, 300), rng.choice((0, 0, 5)))
            waiting.append(call)
            await live.add_call(call)
        views = views_of(scene, agents)
        ready_ids = [v.id for v in views if v.state is AgentState.READY]

        async def timed(kind: str, iteration: int, run: Callable[[str], Awaitable[bool]], arg: str) -> None:
            before = counter.count
            t0 = time.perf_counter()
            result = await run(arg)
            latency = (time.perf_counter() - t0) * 1000
            out.append(Measure(kind, "redis", iteration, latency, counter.count - before, result))

        def pure(kind: str, iteration: int, t0: float, decision: object) -> None:
            latency = (time.perf_counter() - t0) * 1000
            out.append(Measure(kind, "pure", iteration, latency, 0, decision is not None))

        # warm-up: load the Lua scripts, open the connection; look once at the operators who fit
        # each queue, which fills AcdService's per-route roster filter as a running controller's
        # first call of each queue does (that first look scans the whole roster: timed apart)
        await acd.route_agent(ready_ids[0])
        await _undo(live, ready_ids[0], clock[0])
        for index, (queue, spec) in enumerate(scene.queues.items()):
            before, t0 = counter.count, time.perf_counter()
            await acd.operator_views(serving=scene_call("warm-up", queue, spec, clock[0], 0))
            latency = (time.perf_counter() - t0) * 1000
            out.append(Measure("first_look", "redis", index, latency, counter.count - before, False))

        # call arrives -> best operator, in bursts of arrivals
        iteration = 0
        while iteration < args.samples:
            burst: list[WaitingCall] = []
            for _ in range(min(args.burst, args.samples - iteration)):
                queue = rng.choice(queue_names)
                call = scene_call(f"a{iteration + len(burst):06d}", queue, scene.queues[queue], clock[0], 0)
                burst.append(call)
                await live.add_call(call)
            for call in burst:
                strategy = RoutingStrategy(scene.queues[call.queue].strategy)
                t0 = time.perf_counter()
                pure("route_call", iteration, t0, best_operator(call, views, strategy, now=clock[0]))
                await timed("route_call", iteration, acd.route_call, call.call_id)
                agent = await _holder_of(acd, call.call_id)
                if agent is not None:  # undo, untimed: the operator is ready again, the call forgotten
                    await live.release(
                        agent,
                        call.call_id,
                        "bench",
                        now=clock[0],
                        agent_state=AgentState.READY,
                        reason=None,
                        requeue=False,
                    )
                await live.forget_call(call.call_id)
                iteration += 1

        # operator ready -> best call across every queue
        for iteration in range(args.samples):
            agent_id = rng.choice(ready_ids)
            view = next(v for v in views if v.id == agent_id)
            t0 = time.perf_counter()
            pure("route_agent", iteration, t0, best_call(view, waiting, now=clock[0]))
            await timed("route_agent", iteration, acd.route_agent, agent_id)
            await _undo(live, agent_id, clock[0])
    finally:
        await live.wipe()
        await client.aclose()
    return out


async def _holder_of(acd: AcdService, call_id: str) -> str | None:
    raw = await acd.redis.hget(acd.live.call_key(call_id), "agent")
    return str(raw) if raw else None


async def _undo(live: LiveState, agent_id: str, now: float) -> None:
    """Release the agent's claim, if any: ready again, the call back in its place (untimed)."""
    agent = await live.get_agent(agent_id)
    if agent is not None and agent.call_id is not None:
        await live.release(agent_id, agent.call_id, "bench", now=now, agent_state=AgentState.READY, reason=None)


# --- claims at volume -------------------------------------------------------------------------


def claim_worker(url: str, prefix: str, worker: int, quota: int, agents: int, calls: int, log_path: str) -> None:
    """Race claims and releases until ``quota`` claims were won; log ``seq kind agent call``."""
    client = redis.Redis.from_url(url, decode_responses=True)
    claim_sha, release_sha = client.script_load(CLAIM), client.script_load(RELEASE)
    rng = random.Random(worker)
    controller = f"w{worker}"
    seq_key = f"{prefix}seq"
    events = f"{prefix}events"  # the live-change channel both scripts publish on
    held: list[tuple[str, str]] = []
    log: list[str] = []
    won = 0

    def keys(agent: str, call: str) -> list[str]:
        return [f"{prefix}agent:{agent}", f"{prefix}call:{call}", f"{prefix}queue:q{int(call[1:]) % 4}"]

    def release(agent: str, call: str) -> None:
        pipe = client.pipeline(transaction=True)
        queue = f"q{int(call[1:]) % 4}"
        pipe.evalsha(
            release_sha, 3, *keys(agent, call), agent, call, controller, "", "0", queue, "ready", "", "1", events
        )
        pipe.incr(seq_key)
        ok, seq = pipe.execute()
        if not ok:
            raise RuntimeError(f"{controller} could not release its own claim {agent}/{call}")
        log.append(f"{seq} r {agent} {call}")

    while won < quota:
        agent, call = f"op{rng.randrange(agents)}", f"c{rng.randrange(calls)}"
        pipe = client.pipeline(transaction=True)
        queue = f"q{int(call[1:]) % 4}"
        pipe.evalsha(claim_sha, 3, *keys(agent, call), agent, call, controller, "", "0", queue, events)
        pipe.incr(seq_key)
        ok, seq = pipe.execute()
        if ok:
            won += 1
            log.append(f"{seq} c {agent} {call}")
            held.append((agent, call))
        if held and (len(held) >= 3 or rng.random() < 0.5):
            release(*held.pop(rng.randrange(len(held))))
    for agent, call in held:
        release(agent, call)
    Path(log_path).write_text("\n".join(log) + "\n")
    client.close()


def double_assignments(events: Sequence[tuple[int, str, str, str]]) -> tuple[int, int]:
    """Replay ``(seq, kind, agent, call)`` in sequence order: (agents with 2 calls, calls with 2 agents)."""
    agent_holds: dict[str, str] = {}
    call_holds: dict[str, str] = {}
    agents = calls = 0
    for _, kind, agent, call in sorted(events):
        if kind == "c":
            agents += agent in agent_holds
            calls += call in call_holds
            agent_holds[agent], call_holds[call] = call, agent
        else:
            agent_holds.pop(agent, None)
            call_holds.pop(call, None)
    return agents, calls


def measure_claims(args: argparse.Namespace) -> dict[str, Any]:
    # the checker must see an overlap when there is one
    assert double_assignments([(1, "c", "a", "x"), (2, "c", "a", "y"), (3, "c", "b", "y")]) == (1, 1)
    prefix = f"bench:claims:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(args.redis, decode_responses=True)
    pipe = client.pipeline(transaction=False)
    for i in range(args.claim_agents):
        pipe.hset(
            f"{prefix}agent:op{i}",
            mapping={
                "state": "ready",
                "reason": "",
                "since": "0",
                "call_id": "",
                "registered": "1",
                "controller": "",
                "token": "",
            },
        )
    for i in range(args.claim_calls):
        call, queue = f"c{i}", f"q{i % 4}"
        pipe.hset(
            f"{prefix}call:{call}",
            mapping={
                "queue": queue,
                "enqueued_at": str(i),
                "status": "waiting",
                "agent": "",
                "controller": "",
                "token": "",
            },
        )
        pipe.zadd(f"{prefix}queue:{queue}", {call: i})
    pipe.execute()
    quota = math.ceil(args.claims / args.workers)
    context = multiprocessing.get_context("spawn")
    try:
        with tempfile.TemporaryDirectory() as folder:
            paths = [str(Path(folder) / f"w{w}.log") for w in range(args.workers)]
            processes = [
                context.Process(
                    target=claim_worker,
                    args=(args.redis, prefix, w, quota, args.claim_agents, args.claim_calls, paths[w]),
                )
                for w in range(args.workers)
            ]
            t0 = time.perf_counter()
            for process in processes:
                process.start()
            for process in processes:
                process.join()
            elapsed = time.perf_counter() - t0
            if any(p.exitcode != 0 for p in processes):
                raise RuntimeError(f"a claim worker failed: {[p.exitcode for p in processes]}")
            events = []
            for path in paths:
                for line in Path(path).read_text().splitlines():
                    seq, kind, agent, call = line.split()
                    events.append((int(seq), kind, agent, call))
        agent_doubles, call_doubles = double_assignments(events)
        claims = sum(1 for e in events if e[1] == "c")
        seqs = [e[0] for e in events]
        # Redis agrees: every claim was released, every call is waiting again, nobody holds anything
        stuck_agents = sum(
            1 for i in range(args.claim_agents) if client.hget(f"{prefix}agent:op{i}", "call_id") not in ("", None)
        )
        waiting = sum(client.zcard(f"{prefix}queue:q{q}") for q in range(4))
        attempts = int(client.get(f"{prefix}seq") or 0) - len(events)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    return {
        "workers": args.workers,
        "agents": args.claim_agents,
        "calls": args.claim_calls,
        "claims": claims,
        "releases": len(events) - claims,
        "lost_claim_attempts": attempts,
        "seconds": elapsed,
        "claims_per_s": claims / elapsed if elapsed else math.nan,
        "double_assignments_agent": agent_doubles,
        "double_assignments_call": call_doubles,
        "duplicate_sequence_numbers": len(seqs) - len(set(seqs)),
        "agents_left_holding": stuck_agents,
        "calls_waiting_at_end": waiting,
    }


# --- report -----------------------------------------------------------------------------------


def summaries(measures: Sequence[Measure]) -> dict[str, Summary]:
    keys = sorted({(m.kind, m.system) for m in measures})
    return {f"{k}/{s}": summarize([m.latency_ms for m in measures if (m.kind, m.system) == (k, s)]) for k, s in keys}


def round_trip_stats(measures: Sequence[Measure]) -> dict[str, dict[str, float]]:
    out = {}
    for kind in ("route_call", "route_agent"):
        values = [m.round_trips for m in measures if m.kind == kind and m.system == "redis"]
        if values:
            out[kind] = {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}
    return out


def decision_table(stats: dict[str, Summary], trips: dict[str, dict[str, float]]) -> str:
    rows = [
        "| decision | ms | Redis + routing | pure routing | ratio | Redis round trips |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for kind, label in (
        ("route_call", "call arrives -> best operator"),
        ("route_agent", "operator ready -> best call"),
    ):
        ours, base = stats.get(f"{kind}/redis"), stats.get(f"{kind}/pure")
        if ours is None or base is None:
            continue
        rt = trips[kind]
        for name in ("p50", "p95", "p99"):
            a, b = getattr(ours, name), getattr(base, name)
            trip = f"{rt['mean']:.1f} (max {rt['max']:.0f})" if name == "p50" else ""
            rows.append(f"| {label} | {name} | {a:.3f} | {b:.3f} | {a / b if b else math.nan:.1f} | {trip} |")
        label = ""
    return "\n".join(rows)


def claims_table(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| claims won | claims/s | lost attempts | double assignments (agent / call) | left holding |",
            "|---:|---:|---:|---:|---:|",
            f"| {result['claims']} | {result['claims_per_s']:.0f} | {result['lost_claim_attempts']} | "
            f"{result['double_assignments_agent']} / {result['double_assignments_call']} | "
            f"{result['agents_left_holding']} |",
        ]
    )


def write_outputs(measures: Sequence[Measure], meta: dict[str, Any], name: str) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, csv_path, png_path = (RESULTS / f"{name}.{ext}" for ext in ("json", "csv", "png"))
    json_path.write_text(json.dumps({**meta, "samples": [asdict(m) for m in measures]}, indent=2) + "\n")
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f for f in Measure.__dataclass_fields__])
        writer.writeheader()
        for m in measures:
            writer.writerow({**asdict(m), "latency_ms": round(m.latency_ms, 4)})
    written = [json_path, csv_path]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, kind in zip(axes, ("route_call", "route_agent"), strict=True):
        for system in ("redis", "pure"):
            values = sorted(m.latency_ms for m in measures if (m.kind, m.system) == (kind, system))
            if values:
                fractions = [(i + 1) / len(values) for i in range(len(values))]
                series = "Redis + routing" if system == "redis" else "pure routing"
                label = f"{series} (p99 {percentile(values, 99):.3g} ms)"
                axis.step(values, fractions, where="post", label=label)
        axis.set_xscale("log")
        axis.set_xlabel(f"{kind} decision (ms, log scale)")
        axis.set_ylabel("fraction of decisions")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(loc="lower right")
    figure.suptitle(
        f"Routing at scale: {meta['settings']['operators']} operators, {meta['settings']['waiting']} waiting"
    )
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    return [*written, png_path]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--operators", type=int, default=10_000)
    parser.add_argument("--skills", type=int, default=500)
    parser.add_argument("--queues", type=int, default=None, help="default: one per skill")
    parser.add_argument("--waiting", type=int, default=1_000)
    parser.add_argument("--ready", type=float, default=0.3, help="share of operators ready")
    parser.add_argument("--samples", type=int, default=300, help="decisions measured per direction")
    parser.add_argument("--burst", type=int, default=50, help="calls arriving at once")
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--claim-agents", type=int, default=64)
    parser.add_argument("--claim-calls", type=int, default=128)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--name", default="routing_scale", help="result file stem under bench/results/")
    parser.add_argument("--quick", action="store_true", help="small numbers: a few seconds")
    args = parser.parse_args(argv)
    if args.quick:
        args.operators, args.skills, args.waiting = 500, 50, 100
        args.samples, args.burst, args.claims = 50, 10, 20_000
    args.queues = args.queues or args.skills
    rng = random.Random(args.seed)

    scene = build_scene(rng, operators=args.operators, skills=args.skills, queues=args.queues)
    measures = asyncio.run(measure_decisions(args, scene, rng))
    stats, trips = summaries(measures), round_trip_stats(measures)
    print(
        f"\nDecisions ({args.operators} operators, {args.skills} skills, {args.queues} queues, "
        f"{args.waiting} waiting, {args.samples} per direction, bursts of {args.burst}):\n"
    )
    print(decision_table(stats, trips))
    cold = stats.get("first_look/redis")
    if cold is not None:
        print(
            f"\nFirst look at a queue's operators after start or reload (the whole roster filtered once, then "
            f"kept per route): p50 {cold.p50:.3f} ms, max {cold.max:.3f} ms over {cold.n} queues"
        )
    claims = measure_claims(args)
    print(f"\nClaims at volume ({args.workers} processes, {args.claim_agents} agents, {args.claim_calls} calls):\n")
    print(claims_table(claims))
    settings = {k: v for k, v in vars(args).items() if k not in ("redis", "name")}
    meta = {
        "machine": machine("not used"),
        "settings": settings,
        "summary_ms": {k: asdict(v) for k, v in stats.items()},
        "round_trips": trips,
        "claims": claims,
    }
    for path in write_outputs(measures, meta, args.name):
        print(f"wrote {path}")
    return 0 if claims["double_assignments_agent"] == claims["double_assignments_call"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
