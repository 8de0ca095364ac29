"""Assignment latency: Unico's ACD against Asterisk's app_queue, same Asterisk, same run.

Two scenarios, ``t1`` always the moment the operator's softphone receives the INVITE (sipp stamps
it with time.time(), see tests/softphone.py); ``t1 - t0`` per assignment, p50/p95/p99/mean/max:

- **waiting** (B1): a caller waits in a queue whose only operator is paused; the operator becomes
  ready at ``t0``.
- **idle** (B2): the operator is ready and idle (for 0.3-1 s, random); a caller dials at ``t0``,
  the moment the caller's sipp sends its INVITE (a ``[timestamp]`` log line sipp writes right
  before sending it). Unico: 7201 (``bench/flows.yaml``: straight to ``tq_basic``, no prompt);
  app_queue: 9500 with the member unpaused. Both answer the caller, then ring the operator.

The details below are the waiting scenario's; the idle one uses the same queues, operator,
softphone and clean-up.

- **Unico**: caller to 7101 (IVR queue node -> ``tq_basic`` of tests/e2e/acd_test.yaml); ready is
  ``POST /api/agents/op1001/ready`` on a kept-alive HTTP connection, ``t0`` right before sending.
  Unico routes on the event: the operator is offered the longest-waiting call at once.
- **app_queue**: caller to 9500 (``Queue(bench)``, ``strategy = ringall``, ``retry = 1``); the
  member ``PJSIP/op1001`` starts paused and ready is ``queue unpause member`` sent as an AMI
  ``Command`` on a connection kept open, ``t0`` right before writing it. app_queue does not react
  to an unpause: the waiting caller's loop re-checks the members once a ``retry`` (1 s, the
  shortest setting) and rings then.

Both run on one Asterisk instance (``bench``, its own ports) with one controller process, the same
softphone and the same caller script, interleaved in random order round by round. The caller has
waited 0.5-1.5 s (uniformly random) when the operator becomes ready, so app_queue's one-second
cycle is sampled at every phase. The operator answers at once and hangs up after ``TALK_MS``; each
iteration ends with no channel left in Asterisk and the operator paused again on both sides.

Usage::

    python -m bench.assignment_latency                  # both scenarios, 30 samples each (make bench)
    python -m bench.assignment_latency --iterations 3   # a quick sanity run
    python -m bench.assignment_latency --scenario idle  # one scenario only

Results go to ``bench/results/assignment_latency.{json,csv,png}`` (waiting) and
``bench/results/assignment_latency_idle.{json,csv,png}`` (idle); figures are only printed and
recorded, never asserted (they depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import redis
from pydantic import SecretStr

from bench.ami import Ami
from bench.report import Sample, machine, summarize, table, write_chart, write_results
from ivr.config import load_config
from tests.e2e.rig import Controller, copy_config, wait_for
from tests.sipp import Call, CallResult
from tests.softphone import Softphone
from unico import pbx
from unico.pbx.config import write_generated
from unico.pbx.operators import ensure_operator_passwords, write_operators
from unico.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
NAME = "assignment_latency"
# Our own instance and ports: the end-to-end suite's `test` instance (18088/15060/15038/18780) and
# `make run`'s `default` one (8088/5060/5038/8780) are never touched.
INSTANCE = "bench"
ARI_PORT, SIP_PORT, AMI_PORT, WEB_PORT = 48088, 45060, 45038, 48780
FLOWS = ROOT / "tests" / "e2e" / "flows.yaml"
ACD_TEST = ROOT / "tests" / "e2e" / "acd_test.yaml"
BENCH_FLOWS = ROOT / "bench" / "flows.yaml"  # copied as dialplan/bench_flows.yaml (flows.yaml is taken)

OPERATOR = "op1001"  # general tier, italiano 10: eligible for tq_basic (italiano >= 5)
UNICO, APP_QUEUE = "unico", "app_queue"
SYSTEMS = (UNICO, APP_QUEUE)
NUMBERS = {UNICO: "7101", APP_QUEUE: "9500"}
WAITING, IDLE = "waiting", "idle"
SCENARIOS = (WAITING, IDLE)
#: idle operator: Unico's number goes straight to the queue (no prompt before it)
IDLE_NUMBERS = {UNICO: "7201", APP_QUEUE: "9500"}
IDLE_BEFORE_CALL = (0.3, 1.0)  # seconds the operator has been ready and idle when the caller dials
RESULT_NAMES = {WAITING: NAME, IDLE: f"{NAME}_idle"}
APP_QUEUE_NAME = "bench"
MEMBER = f"PJSIP/{OPERATOR}"
TALK_MS = 300  # the operator hangs up this long after answering; both ACDs then release the caller
CALLER_PATIENCE_MS = 20_000  # far longer than an iteration: the caller never gives up by itself
WAIT_BEFORE_READY = (0.5, 1.5)  # seconds the caller has waited when the operator becomes ready

# app_queue for the same scenario: one queue, one member (paused at start), no announcements.
# `retry` is how long the caller's loop sleeps after finding nobody to ring: 1 s is the minimum
# that means anything (0 falls back to the default of 5 s). Member syntax (queues.conf.sample,
# Asterisk 22): interface, penalty, membername, state_interface, ringinuse, wrapuptime, paused.
QUEUES_LOCAL = f"""; generated by bench/assignment_latency.py for the `bench` instance only
[{APP_QUEUE_NAME}]
strategy = ringall
timeout = 15
retry = 1
wrapuptime = 0
autopause = no
announce-frequency = 0
periodic-announce-frequency = 0
announce-position = no
announce-holdtime = no
musicclass = default
member => {MEMBER},0,{OPERATOR},,,0,1
"""
EXTENSIONS_LOCAL = f"""; generated by bench/assignment_latency.py for the `bench` instance only
[from-carrier](+)
exten => {NUMBERS[APP_QUEUE]},1,Answer()
 same => n,Queue({APP_QUEUE_NAME})
 same => n,Hangup()
"""


class BenchError(Exception):
    """The scenario did not go as scripted (the message says where, with sipp's explanation)."""


class StampedCall(Call):
    """A sipp caller that logs ``[timestamp] INVITE_SENT`` right before sending its INVITE.

    sipp's ``[timestamp]`` is ``<date>\t<time>\t<epoch>`` (the softphone's INVITE stamps use the
    same clock); the log line is written by the step just before the send, microseconds apart.
    """

    MARK = "INVITE_SENT"

    def _scenario_xml(self) -> str:
        xml = super()._scenario_xml()
        send = '  <send retrans="500"><![CDATA[\nINVITE '
        if xml.count(send) != 1:  # a challenged caller sends two INVITEs: not used here
            raise BenchError("cannot find the one INVITE of the caller's scenario")
        stamp = f'  <nop><action><log message="[timestamp] {self.MARK}"/></action></nop>\n'
        return xml.replace(send, stamp + send)

    @classmethod
    def sent_at(cls, result: CallResult) -> float:
        """The epoch of the INVITE's sending, from the run's log lines."""
        for line in result.events:
            head, _, kind = line.rpartition(" ")
            if kind == cls.MARK:
                return float(head.split("\t")[-1])
        raise BenchError(f"the caller logged no {cls.MARK}\n{result.explain()}")


def bench_settings(state_dir: Path) -> Settings:
    """Like tests/e2e/rig.py ``rig_settings``, with the bench's instance, ports and Redis prefix."""
    return Settings(
        home=ROOT,
        state_dir=state_dir,
        asterisk_instance=INSTANCE,
        ari_url=f"http://127.0.0.1:{ARI_PORT}",
        ari_password=SecretStr(secrets.token_urlsafe(18)),
        ami_port=AMI_PORT,
        ami_secret=SecretStr(secrets.token_urlsafe(18)),
        sip_port=SIP_PORT,
        web_port=WEB_PORT,
        admin_token=SecretStr(secrets.token_urlsafe(18)),
        database_url=f"sqlite+aiosqlite:///{state_dir / 'unico.db'}",
        redis_prefix=f"unico-bench-{secrets.token_hex(4)}:",
    )


class BenchController(Controller):
    """The e2e rig's controller process, logging at INFO as in production (the rig uses DEBUG)."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env["UNICO_LOG_LEVEL"] = "INFO"
        return env


@dataclass
class Rig:
    """What one measurement needs: the settings, the controller, the softphone, both control links."""

    settings: Settings
    controller: Controller
    phone: Softphone
    http: aiohttp.ClientSession
    ami: Ami
    artifacts: Path

    async def ari(self, path: str) -> Any:
        return await asyncio.to_thread(pbx.ari_get, self.settings, path)

    # --- Unico ---------------------------------------------------------------------------------

    async def agent_action(self, action: str, body: dict[str, str] | None = None) -> dict[str, Any]:
        async with self.http.post(f"/api/agents/{OPERATOR}/{action}", json=body) as response:
            result: dict[str, Any] = await response.json()
            if response.status != 200:
                raise BenchError(f"POST /api/agents/{OPERATOR}/{action}: {response.status} {result}")
            return result

    async def agent_state(self) -> str:
        async with self.http.get(f"/api/agents/{OPERATOR}") as response:
            body: dict[str, Any] = await response.json()
            return str(body["state"])

    async def unico_waiting(self) -> bool:
        async with self.http.get("/api/queues") as response:
            queues: list[dict[str, Any]] = await response.json()
        return any(q["name"] == "tq_basic" and q["waiting"] for q in queues)

    async def unico_ready(self) -> float:
        t0 = time.time()
        state = (await self.agent_action("ready"))["state"]
        if state not in ("ready", "ringing"):
            raise BenchError(f"{OPERATOR} is {state!r} after ready")
        return t0

    async def unico_pause(self) -> None:
        # after the call: on_call -> wrap_up (2 s) -> ready; pause is legal in wrap_up and ready
        async def free() -> bool:
            return await self.agent_state() in ("wrap_up", "ready")

        await wait_for(free, timeout=10, interval=0.05, what=f"{OPERATOR} out of the call")
        await self.agent_action("pause", {"reason": "break"})

    async def controller_idle(self) -> bool:
        health = await self.controller.health()
        return bool(health) and health is not None and health["calls"] == 0

    # --- app_queue -----------------------------------------------------------------------------

    async def app_queue_waiting(self) -> bool:
        channels: list[dict[str, Any]] = await self.ari("/channels")
        return any(c.get("dialplan", {}).get("app_name") == "Queue" for c in channels)

    async def member_command(self, verb: str) -> float:
        # QueuePause needs only the AMI write class "agent"; Command (the whole CLI) is not granted
        paused = "true" if verb == "pause" else "false"
        action = {"Action": "QueuePause", "Interface": MEMBER, "Queue": APP_QUEUE_NAME, "Paused": paused}
        sent_at, response = await self.ami.send(action)
        if not response.ok:
            raise BenchError(f"QueuePause {verb}: {response.fields.get('Message', response.fields)}")
        return sent_at

    async def member_paused(self) -> bool:
        text = await asyncio.to_thread(pbx.cli, self.settings, f"queue show {APP_QUEUE_NAME}")
        lines = [line for line in text.splitlines() if MEMBER in line]
        return bool(lines) and all("paused" in line.lower() for line in lines)

    # --- both ----------------------------------------------------------------------------------

    async def asterisk_idle(self) -> bool:
        return not await self.ari("/channels")

    async def assign_once(self, system: str, iteration: int, rng: random.Random) -> Sample:
        """One caller, one assignment: returns its sample; the operator is paused again after."""
        number = f"39{os.getpid() % 10000:04d}{iteration:04d}{SYSTEMS.index(system)}"
        call = Call(NUMBERS[system], caller=number, port=self.settings.sip_port, answer_timeout_ms=15_000)
        call.pause(CALLER_PATIENCE_MS).hangup()
        caller = asyncio.ensure_future(call.run(artifacts_root=self.artifacts / "sipp"))
        waiting: Callable[[], Awaitable[bool]] = self.unico_waiting if system == UNICO else self.app_queue_waiting
        try:
            await wait_for(waiting, timeout=15, interval=0.05, what=f"{system}: caller {number} waiting")
            queued = time.monotonic()
            await asyncio.sleep(rng.uniform(*WAIT_BEFORE_READY))
            before = len(self.phone.invites)
            waited_s = time.monotonic() - queued
            t0 = await (self.unico_ready() if system == UNICO else self.member_command("unpause"))
            invites = await self.phone.wait_invites(before + 1, timeout=10)
            t1 = invites[before].at
            if number not in (invites[before].caller_number or ""):
                raise BenchError(f"{system}: the INVITE is not for caller {number}: {invites[before]}")
            result = await asyncio.wait_for(caller, CALLER_PATIENCE_MS / 1000 + 10)
            if not (result.answered and result.remote_bye):
                raise BenchError(f"{system}: the caller was not released by the ACD\n{result.explain()}")
        finally:
            if not caller.done():
                caller.cancel()
        if system == UNICO:
            await self.unico_pause()
            await wait_for(self.controller_idle, timeout=10, interval=0.05, what="controller without calls")
        else:
            await self.member_command("pause")
        await wait_for(self.asterisk_idle, timeout=10, interval=0.05, what="no channels left in Asterisk")
        return Sample(system=system, iteration=iteration, waited_s=round(waited_s, 3), t0=t0, t1=t1)

    async def make_ready(self, system: str) -> None:
        """The operator ready and idle on ``system``'s side (still paused on the other)."""
        if system == UNICO:
            await self.agent_action("ready")

            async def ready() -> bool:
                return await self.agent_state() == "ready"

            await wait_for(ready, timeout=10, interval=0.05, what=f"{OPERATOR} ready")
        else:
            await self.member_command("unpause")

            async def unpaused() -> bool:
                return not await self.member_paused()

            await wait_for(unpaused, timeout=10, interval=0.05, what=f"{MEMBER} unpaused")

    async def assign_idle(self, system: str, iteration: int, rng: random.Random) -> Sample:
        """The operator is ready and idle; a caller dials: INVITE sent -> INVITE at the softphone."""
        number = f"38{os.getpid() % 10000:04d}{iteration:04d}{SYSTEMS.index(system)}"
        await self.make_ready(system)
        idle_s = rng.uniform(*IDLE_BEFORE_CALL)
        await asyncio.sleep(idle_s)
        call = StampedCall(IDLE_NUMBERS[system], caller=number, port=self.settings.sip_port, answer_timeout_ms=15_000)
        call.pause(CALLER_PATIENCE_MS).hangup()
        before = len(self.phone.invites)
        caller = asyncio.ensure_future(call.run(artifacts_root=self.artifacts / "sipp"))
        try:
            invites = await self.phone.wait_invites(before + 1, timeout=15)
            t1 = invites[before].at
            if number not in (invites[before].caller_number or ""):
                raise BenchError(f"{system}: the INVITE is not for caller {number}: {invites[before]}")
            result = await asyncio.wait_for(caller, CALLER_PATIENCE_MS / 1000 + 10)
            if not (result.answered and result.remote_bye):
                raise BenchError(f"{system}: the caller was not released by the ACD\n{result.explain()}")
            t0 = StampedCall.sent_at(result)
        finally:
            if not caller.done():
                caller.cancel()
        if system == UNICO:
            await self.unico_pause()
            await wait_for(self.controller_idle, timeout=10, interval=0.05, what="controller without calls")
        else:
            await self.member_command("pause")
        await wait_for(self.asterisk_idle, timeout=10, interval=0.05, what="no channels left in Asterisk")
        return Sample(system=system, iteration=iteration, waited_s=round(idle_s, 3), t0=t0, t1=t1)


async def measure(
    settings: Settings,
    controller: Controller,
    work: Path,
    *,
    iterations: int,
    warmup: int,
    seed: int,
    scenarios: tuple[str, ...] = SCENARIOS,
) -> dict[str, list[Sample]]:
    """Register the softphone, pause the operator on both sides, then run the interleaved rounds:
    each round runs every scenario, each scenario both systems in random order."""
    password = ensure_operator_passwords(settings.state_dir, [OPERATOR])[OPERATOR]
    phone = Softphone(OPERATOR, password, port=settings.sip_port, artifacts_root=work / "artifacts" / "softphone")
    headers = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    rng = random.Random(seed)
    samples: dict[str, list[Sample]] = {scenario: [] for scenario in scenarios}
    async with (
        aiohttp.ClientSession(f"http://127.0.0.1:{settings.web_port}", headers=headers) as http,
        phone,
    ):
        ami = await Ami.connect(
            settings.ami_host, settings.ami_port, settings.ami_user, settings.ami_secret.get_secret_value()
        )
        rig = Rig(settings, controller, phone, http, ami, work / "artifacts")
        try:
            await phone.register()
            await phone.start("answer", ring_ms=0, talk_ms=TALK_MS)
            await controller.wait_agent(OPERATOR, "logged_out")  # the registration reached the ACD
            await rig.agent_action("login")
            await rig.agent_action("pause", {"reason": "break"})
            if not await rig.member_paused():
                raise BenchError(f"{MEMBER} is not a paused member of app_queue's {APP_QUEUE_NAME!r}")
            total = warmup + iterations
            for round_ in range(total):
                for scenario in scenarios:
                    order = list(SYSTEMS)
                    rng.shuffle(order)
                    for system in order:
                        assign = rig.assign_once if scenario == WAITING else rig.assign_idle
                        sample = await assign(system, round_, rng)
                        label = "warm-up" if round_ < warmup else f"{round_ - warmup + 1}/{iterations}"
                        print(f"  {label:>7} {scenario:<7} {system:<9} {sample.latency_ms:8.1f} ms", flush=True)
                        if round_ >= warmup:
                            samples[scenario].append(replace(sample, iteration=round_ - warmup + 1))
        finally:
            await ami.close()
            if controller.running:
                await controller.api("POST", f"/api/agents/{OPERATOR}/logout")
    return samples


def asterisk_version(settings: Settings) -> str:
    info = pbx.ari_get(settings, "/asterisk/info")
    return str(info.get("system", {}).get("version", "?"))


def controller_problems(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line or " CRITICAL " in line]


def drop_redis_keys(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{settings.redis_prefix}*", count=500))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.assignment_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=30, help="samples per system (default 30)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the order and waits")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, sipp traces)")
    parser.add_argument(
        "--scenario",
        choices=(*SCENARIOS, "both"),
        default="both",
        help="waiting: operator made ready while a caller waits; idle: caller arrives, operator idle (default both)",
    )
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    work = Path(tempfile.mkdtemp(prefix="unico-bench-"))
    settings = bench_settings(work / "state")
    config_dir = copy_config(work / "config" / "unico", FLOWS, ACD_TEST)
    controller = BenchController(settings, config_dir, work / "controller.log")
    shutil.copy(BENCH_FLOWS, config_dir / "dialplan" / "bench_flows.yaml")
    scenarios = SCENARIOS if args.scenario == "both" else (args.scenario,)
    ok, version, elapsed = False, "?", 0.0
    samples: dict[str, list[Sample]] = {}
    pbx.install(settings)
    write_operators(settings, load_config(config_dir / "dialplan", config_dir / "skills"))
    write_generated(settings, "queues_local.conf", QUEUES_LOCAL)
    write_generated(settings, "extensions_local.conf", EXTENSIONS_LOCAL)
    pbx.start(settings)
    try:
        version = asterisk_version(settings)
        controller.start()
        asyncio.run(controller.wait_ready())
        print(
            f"measuring {args.iterations} assignments each (+{args.warmup} warm-up), scenarios {', '.join(scenarios)}, "
            f"seed {seed}",
            flush=True,
        )
        started = time.time()
        samples = asyncio.run(
            measure(
                settings,
                controller,
                work,
                iterations=args.iterations,
                warmup=args.warmup,
                seed=seed,
                scenarios=scenarios,
            )
        )
        elapsed = time.time() - started
        ok = True
    finally:
        controller.stop()
        pbx.stop(settings)
        drop_redis_keys(settings)
        problems = controller_problems(controller.log_text())
        if problems or not ok or args.keep:
            print(f"work folder kept: {work} (controller.log, artifacts/)", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(samples, problems, args=args, seed=seed, version=version, elapsed=elapsed)
    return 0


MEASURED = {
    WAITING: "operator made ready while a caller waits -> INVITE received by the operator's softphone",
    IDLE: "caller's INVITE sent while the operator is ready and idle -> INVITE received by the operator's softphone",
}
SETUP = {
    WAITING: {
        "unico": "queue tq_basic (tests/e2e/acd_test.yaml) via 7101; ready = POST /api/agents/op1001/ready",
        "app_queue": "queue bench: strategy ringall, retry 1, member paused; ready = AMI Command "
        "'queue unpause member'",
        "wait_before_ready_s": list(WAIT_BEFORE_READY),
    },
    IDLE: {
        "unico": "queue tq_basic via 7201 (bench/flows.yaml: straight to the queue, no prompt); operator ready",
        "app_queue": "queue bench via 9500, member unpaused; t0 = sipp's [timestamp] right before the INVITE",
        "idle_before_call_s": list(IDLE_BEFORE_CALL),
    },
}
TITLES = {
    WAITING: ("operator ready while a caller waits -> INVITE at the softphone", "ready -> INVITE"),
    IDLE: ("caller arrives, operator idle: caller's INVITE -> INVITE at the softphone", "caller INVITE -> INVITE"),
}


def report(
    samples: dict[str, list[Sample]],
    problems: list[str],
    *,
    args: argparse.Namespace,
    seed: int,
    version: str,
    elapsed: float,
) -> None:
    host = machine(version)
    print()
    for scenario, scenario_samples in samples.items():
        by_system = {system: [s.latency_ms for s in scenario_samples if s.system == system] for system in SYSTEMS}
        summaries = {system: summarize(values) for system, values in by_system.items()}
        meta = {
            "benchmark": RESULT_NAMES[scenario],
            "scenario": scenario,
            "measured": MEASURED[scenario],
            "machine": host,
            "run": {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "iterations": args.iterations,
                "warmup_rounds": args.warmup,
                "seed": seed,
                "seconds": round(elapsed, 1),
                **SETUP[scenario],
            },
        }
        title, axis = TITLES[scenario]
        paths = write_results(
            args.out, RESULT_NAMES[scenario], samples=scenario_samples, summaries=summaries, meta=meta
        )
        chart = write_chart(
            args.out / f"{RESULT_NAMES[scenario]}.png",
            scenario_samples,
            SYSTEMS,
            f"{axis}, {args.iterations} assignments each ({host['cpu']}, {host['cores']} cores)",
            xlabel=f"{axis} at the softphone (ms, log scale)",
        )
        print(f"Assignment latency ({scenario}): {title}")
        print(table(summaries, baseline=APP_QUEUE, subject=UNICO))
        print()
        for path in itertools.chain(paths, [chart] if chart else []):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        if chart is None:
            print("no chart: matplotlib is not installed (pip install -e '.[dev]')")
        print()
    print(
        f"{elapsed:.0f} s; machine: {host['cpu']}, {host['cores']} cores, {host['os']}; "
        f"Python {host['python']}; Asterisk {host['asterisk']}"
    )
    if problems:
        print(f"the controller logged {len(problems)} error line(s), e.g.: {problems[0]}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
