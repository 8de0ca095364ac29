"""Capacity (B3) and soak (B12): Unico's full call path against a bare Stasis app, same Asterisk.

**Capacity.** The highest call rate with zero failed calls (RFC 7502: a step passes only when
every call completes end to end), searched with a step-up then a bisection, for two systems that
get the same sipp caller, the same sipp operators, the same Asterisk and the same run, their trials
interleaved in random order:

- **unico**: caller -> 7310 (``bench/capacity_flows.yaml``: a one-word welcome, an office-hours
  decision, "please hold", the queue ``cap_load`` of ``bench/capacity_skills.yaml``) -> the ACD
  rings the longest-idle operator -> the operator answers, talks ``--talk-ms`` and hangs up ->
  Unico hangs up the caller.
- **bare**: caller -> 7300 (``Stasis(capacity-bare)``) -> :class:`BareApp` (in this file, run as its
  own process like the controller): answer, originate the longest-idle operator, mixing bridge,
  hang up both when either leaves. No IVR, no Redis, no database: what Asterisk + ARI cost alone.

A call passes when the caller was answered, an operator's softphone got an INVITE carrying the
caller's number, answered it and hung up after the talk time, and the caller got Asterisk's BYE,
all within the caller's timeouts. Per trial: offered and achieved rate, failures by reason, peak
concurrent calls (overlap of the callers' INVITE -> end intervals), CPU seconds per call of the
controller (or the bare app) and of Asterisk (``/proc/<pid>/stat`` utime + stime before/after),
and caller INVITE -> operator INVITE latency. Then **memory per waiting call**: N callers wait in
``cap_hold``, whose only operator is paused; the controller's RSS delta divided by N (Asterisk's
too, for context).

**Soak.** Steady traffic at one rate for ``--soak-minutes`` (default rate: 70 % of Unico's capacity
in ``bench/results/capacity.json``); every minute the controller's and Asterisk's RSS, then per
minute of arrival the calls, failures and assignment latency p50/p99. At the end: memory growth
(mean RSS of the first window vs the last, window = min(5 min, a third of the run)) and p99 drift
(last window vs first).

Everything runs on its own Asterisk instance ``capacity`` (ARI 28088, SIP 25060, AMI 25038, web
28780), never touching the e2e rigs (test, test1..3) or the ``bench`` instance. Operators are
``cap001..capNNN`` (generated roster) in groups of 20, each group registered from one UAS port and
served by one sipp process (``tests/softphone.py`` registers each from that port; Asterisk's
``rewrite_contact`` keeps the source address). 240 operators ran (2026-12-07); the controller
subscribes to their endpoints in batches of 100, since Asterisk refuses a request with more than a
hundred-odd ("Too many values for event_source", which once stopped this rig at ~120). A soak takes
``--operators`` and ``--talk-ms`` from the capacity run its rate comes from, unless given.

The caller INVITE -> operator INVITE latency includes Unico's IVR (two one-word prompts, ~2 s);
the bare app has none. ``--profile DIR`` records the controller with py-spy during Unico trials.

Usage::

    python -m bench.capacity                        # search + memory, ~10 min (make bench-capacity)
    python -m bench.capacity --quick                # a 2-minute sanity run
    python -m bench.capacity --soak-minutes 60      # soak at 70 % of the last capacity (make bench-soak)
    python -m bench.capacity --soak-minutes 3 --rate 2

Results: ``bench/results/capacity.{json,csv,png}`` and ``bench/results/soak.{json,csv,png}``.
Figures are printed and recorded, never asserted: they depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis
import yaml
from pydantic import SecretStr

from bench.report import machine, percentile
from ivr.config import load_config
from tests.e2e.rig import Controller, copy_config, wait_for
from tests.sipp import free_media_port, free_udp_port
from tests.softphone import Event, Invite, Softphone
from unico import memtrace, pbx
from unico.pbx.config import instance_dir, write_generated
from unico.pbx.operators import ensure_operator_passwords, write_operators
from unico.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
INSTANCE = "capacity"
ARI_PORT, SIP_PORT, AMI_PORT, WEB_PORT = 28088, 25060, 25038, 28780
#: a Unico trial passes only if its record writes are all in the database this long after its last
#: call: a rate the write-behind queue cannot keep up with grows the controller's memory without end
#: (a 60-minute soak at 16.8 calls/s found 39,000 writes waiting after 10 minutes)
DRAIN_SECONDS = 10.0
#: and its backlog may not grow by more than this over the second half of its arrivals (a batch or
#: two of the writer's: it keeps pace); the first soak at 18.9 calls/s, 70 % of a capacity measured
#: without this, fell 3,000 writes a minute behind
PACE_SLACK = 300
FLOWS = ROOT / "bench" / "capacity_flows.yaml"
SKILLS = ROOT / "bench" / "capacity_skills.yaml"
UNICO, BARE = "unico", "bare"
SYSTEMS = (UNICO, BARE)
NUMBERS = {UNICO: "7310", BARE: "7300"}
HOLD_NUMBER = "7390"  # straight into cap_hold, which nobody serves
LOAD_QUEUE, HOLD_QUEUE = "cap_load", "cap_hold"
HOLD_OPERATOR = "caphold"
GROUP = 20  # operators per sipp UAS (see Rig.start_operators)
BARE_APP = "capacity-bare"
RING_TIMEOUT_S = 10  # cap_load's ring_timeout; the bare app rings as long
ANSWER_TIMEOUT_MS = 10_000  # caller: INVITE -> 200 OK
WAIT_MARGIN_MS = 30_000  # caller: 200 OK -> Asterisk's BYE may take talk time + this
EXTENSIONS_LOCAL = f"""; generated by bench/capacity.py for the `capacity` instance only
[from-carrier](+)
exten => {NUMBERS[BARE]},1,Stasis({BARE_APP},inbound)
 same => n,Hangup()
"""
_LOG_LINE = re.compile(r"^\S+\t\S+\t(?P<epoch>\d+\.\d+) (?P<kind>[A-Z_]+)\|(?P<call>\d+)(?:\|(?P<extra>.*))?$")


class BenchError(Exception):
    """The rig could not be set up or a step did not go as scripted."""


# --- the caller: one sipp UAC process per trial ---------------------------------------------------


def caller_xml(dialled: str, prefix: str, *, hold_ms: int | None, bye_timeout_ms: int) -> str:
    """A sipp UAC scenario: INVITE, wait for the answer, then wait for Asterisk's BYE (``hold_ms``
    None) or hang up after ``hold_ms``. Every step logs ``[timestamp] KIND|<call number>``; the
    caller number is ``<prefix><call number>``, so the operator's INVITE can be matched to it."""
    caller = f"{prefix}[call_number]"
    uri = f"sip:{dialled}@[remote_ip]:[remote_port]"
    via = "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]"
    from_ = f"From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"
    to = f"To: <{uri}>"
    contact = f"Contact: <sip:{caller}@[local_ip]:[local_port]>"
    sdp = (
        "v=0\no=sipp 1 1 IN IP[local_ip_type] [local_ip]\ns=-\nc=IN IP[media_ip_type] [media_ip]\nt=0 0\n"
        "m=audio [media_port] RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\n"
        "a=fmtp:101 0-16\na=ptime:20\na=sendrecv"
    )

    def log(kind: str, extra: str = "") -> str:
        return f'<action><log message="[timestamp] {kind}|[call_number]{extra}"/></action>'

    reply = "[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\n"
    ok = f"<send><![CDATA[\nSIP/2.0 200 OK\n{reply}{contact}\nContent-Length: 0\n]]></send>"
    rejects = "\n".join(
        f'  <recv response="{code}" optional="true" next="rejected">{log("REJECTED", f"|{code}")}</recv>'
        for code in (400, 401, 403, 404, 408, 480, 481, 484, 486, 487, 488, 500, 502, 503, 603)
    )
    if hold_ms is None:
        talk = f"""  <label id="talk"/>
  <!-- Asterisk may update the connected line mid-call (UPDATE, re-INVITE) or send INFO -->
  <recv request="UPDATE" optional="true" next="in_dialog" timeout="{bye_timeout_ms}" ontimeout="no_bye"/>
  <recv request="INFO" optional="true" next="in_dialog" timeout="{bye_timeout_ms}" ontimeout="no_bye"/>
  <recv request="INVITE" optional="true" next="reinvite" timeout="{bye_timeout_ms}" ontimeout="no_bye"/>
  <recv request="BYE" next="remote_bye" timeout="{bye_timeout_ms}" ontimeout="no_bye"/>
  <label id="no_bye"/>
  <nop>{log("NO_BYE")}</nop>"""
    else:
        talk = f"""  <label id="talk"/>
  <pause milliseconds="{hold_ms}"/>
  <nop>{log("HUNG_UP")}</nop>"""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="capacity caller -> {dialled}">
  <nop>{log("SENT")}</nop>
  <send retrans="500"><![CDATA[
INVITE {uri} SIP/2.0
{via}
{from_}
{to}
Call-ID: [call_id]
CSeq: 1 INVITE
{contact}
Max-Forwards: 70
User-Agent: sipp-capacity
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
  <recv response="100" optional="true" timeout="{ANSWER_TIMEOUT_MS}" ontimeout="no_answer"/>
  <recv response="180" optional="true" timeout="{ANSWER_TIMEOUT_MS}" ontimeout="no_answer"/>
  <recv response="183" optional="true" timeout="{ANSWER_TIMEOUT_MS}" ontimeout="no_answer"/>
  <recv request="BYE" optional="global" next="remote_bye"/>
{rejects}
  <recv response="200" timeout="{ANSWER_TIMEOUT_MS}" ontimeout="no_answer">{log("ANSWERED")}</recv>
  <send><![CDATA[
ACK {uri} SIP/2.0
{via}
{from_}
{to}[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
{contact}
Max-Forwards: 70
Content-Length: 0
]]></send>
{talk}
  <send retrans="500"><![CDATA[
BYE {uri} SIP/2.0
{via}
{from_}
{to}[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
{contact}
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>
  <nop next="end"/>

  <label id="in_dialog"/>
  {ok}
  <nop next="talk"/>

  <label id="reinvite"/>
  <send><![CDATA[
SIP/2.0 200 OK
{reply}{contact}
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
  <recv request="ACK"/>
  <nop next="talk"/>

  <label id="remote_bye"/>
  {ok}
  <nop>{log("REMOTE_BYE")}</nop>
  <nop next="end"/>

  <label id="rejected"/>
  <send><![CDATA[
ACK {uri} SIP/2.0
[last_Via:]
{from_}
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop next="end"/>

  <label id="no_answer"/>
  <nop>{log("NO_ANSWER")}</nop>
  <send><![CDATA[
CANCEL {uri} SIP/2.0
[last_Via:]
{from_}
{to}
Call-ID: [call_id]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" optional="true"/>
  <recv response="487"/>
  <send><![CDATA[
ACK {uri} SIP/2.0
[last_Via:]
{from_}
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>

  <label id="end"/>
  <nop>{log("END")}</nop>
</scenario>
"""


@dataclass
class CallerRun:
    """One sipp UAC process placing ``calls`` calls at ``rate`` per second; its log, read as it grows."""

    folder: Path
    prefix: str
    process: asyncio.subprocess.Process | None = None
    offset: int = 0
    partial: str = ""
    events: dict[int, dict[str, float]] = field(default_factory=dict)  # call number -> kind -> epoch
    rejected: dict[int, str] = field(default_factory=dict)

    @classmethod
    async def start(
        cls,
        folder: Path,
        dialled: str,
        prefix: str,
        *,
        rate: float,
        calls: int,
        port: int,
        hold_ms: int | None,
        bye_timeout_ms: int,
        limit: int,
    ) -> CallerRun:
        sipp = shutil.which("sipp")
        if sipp is None:
            raise BenchError("sipp not found: apt-get install sip-tester")
        folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a few bytes, once per trial)
        scenario = folder / "caller.xml"
        scenario.write_text(caller_xml(dialled, prefix, hold_ms=hold_ms, bye_timeout_ms=bye_timeout_ms))
        budget = calls / rate + ANSWER_TIMEOUT_MS / 1000 + bye_timeout_ms / 1000 + (hold_ms or 0) / 1000 + 30
        # -r with -rp 1000 s takes a rate of calls per 1000 s: fractional CPS without rounding
        command = [
            sipp,
            f"127.0.0.1:{port}",
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port()),
            "-mp",
            str(free_media_port()),
            "-r",
            str(max(1, round(rate * 1000))),
            "-rp",
            "1000s",
            "-m",
            str(calls),
            "-l",
            str(limit),
            "-nostdin",
            "-timeout",
            f"{int(budget)}s",
            "-trace_logs",
            "-log_file",
            str(folder / "events.log"),
            "-trace_err",
            "-error_file",
            str(folder / "errors.log"),
        ]
        (folder / "command.txt").write_text(" ".join(command) + "\n")
        run = cls(folder, prefix)
        with (folder / "stderr.txt").open("wb") as stderr:
            run.process = await asyncio.create_subprocess_exec(
                *command, cwd=folder, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=stderr
            )
        return run

    def number(self, call: int) -> str:
        return f"{self.prefix}{call}"

    def read(self) -> None:
        """Take in the complete lines sipp appended since the last read."""
        try:
            with (self.folder / "events.log").open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        lines = (self.partial + data.decode(errors="replace")).split("\n")
        self.partial = lines.pop()
        for line in lines:
            match = _LOG_LINE.match(line.strip())
            if match is None:
                continue
            call = int(match["call"])
            self.events.setdefault(call, {}).setdefault(match["kind"], float(match["epoch"]))
            if match["kind"] == "REJECTED":
                self.rejected[call] = match["extra"] or "?"

    async def wait(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        self.read()
        return code

    def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


# --- outcome of a trial ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CallOutcome:
    number: str
    sent: float
    ended: float
    answered_ms: float | None  # caller INVITE sent -> 200 OK
    assigned_ms: float | None  # caller INVITE sent -> INVITE at the operator's softphone
    failure: str | None  # None: the call completed end to end


def outcomes(run: CallerRun, calls: int, operator_events: Sequence[Event]) -> list[CallOutcome]:
    """Join the caller's log with the operators' events (the operator INVITE's From is the caller)."""
    by_call_id: dict[str, list[Event]] = {}
    for event in operator_events:
        by_call_id.setdefault(event.call_id, []).append(event)
    legs: dict[str, tuple[float, set[str]]] = {}  # caller number -> (operator INVITE at, kinds)
    for call_id, events in by_call_id.items():
        invite = next((e for e in events if e.kind == "INVITE"), None)
        if invite is None:
            continue
        number = Invite(invite.at, call_id, from_header=invite.detail[-1], to_header=invite.detail[-2]).caller_number
        if number is None:
            continue
        seen = {e.kind for e in events}
        # a caller rung twice (ring-no-answer, then someone else): the answered leg counts
        if number not in legs or "ANSWERED" in seen:
            legs[number] = (invite.at, seen)
    result = []
    for call in range(1, calls + 1):
        kinds = run.events.get(call, {})
        number = run.number(call)
        sent = kinds.get("SENT")
        if sent is None:
            result.append(
                CallOutcome(
                    number=number,
                    sent=math.nan,
                    ended=math.nan,
                    answered_ms=None,
                    assigned_ms=None,
                    failure="never sent",
                )
            )
            continue
        ended = max(kinds.values())
        answered = kinds.get("ANSWERED")
        leg = legs.get(number)
        failure: str | None = None
        if answered is None:
            failure = (
                f"rejected {run.rejected[call]}"
                if call in run.rejected
                else ("no answer" if "NO_ANSWER" in kinds else "caller failed before the answer")
            )
        elif leg is None:
            failure = "no operator rung" if "NO_BYE" in kinds or "REMOTE_BYE" not in kinds else "released unassigned"
        elif "ANSWERED" not in leg[1]:
            failure = "operator did not answer"
        elif "LOCAL_BYE" not in leg[1]:
            failure = "operator leg cut by Asterisk"
        elif "REMOTE_BYE" not in kinds:
            failure = "caller not released (no BYE)"
        result.append(
            CallOutcome(
                number=number,
                sent=sent,
                ended=ended,
                answered_ms=None if answered is None else (answered - sent) * 1000,
                assigned_ms=None if leg is None else (leg[0] - sent) * 1000,
                failure=failure,
            )
        )
    return result


def peak_concurrency(calls: Sequence[CallOutcome]) -> int:
    """Most calls in progress at once (caller INVITE -> the caller's last event)."""
    edges = sorted(
        [(c.sent, 1) for c in calls if not math.isnan(c.sent)]
        + [(c.ended, -1) for c in calls if not math.isnan(c.sent)]
    )
    peak = now = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


@dataclass(frozen=True, kw_only=True)
class Trial:
    system: str
    round: int
    rate: float  # offered calls per second
    seconds: float
    calls: int
    completed: int
    failed: int
    failures: dict[str, int]
    passed: bool
    achieved_cps: float  # calls sent / time between first and last INVITE
    peak_concurrent: int
    app_cpu_s: float  # controller (unico) or bare app process
    asterisk_cpu_s: float
    app_cpu_ms_per_call: float
    asterisk_cpu_ms_per_call: float
    assign_p50_ms: float
    assign_p99_ms: float
    answer_p99_ms: float
    leftover_channels: int
    started: float
    #: share of all the machine's cores busy while the calls ran (/proc/stat): everything on it,
    #: Asterisk, the app, sipp and Redis, share these cores
    machine_busy_pct: float = math.nan
    #: the shared Redis server's CPU and commands (those inside Lua scripts included) per call; the
    #: controller stays up in the bare app's trials, so theirs is its idle sweep
    redis_cpu_ms_per_call: float = math.nan
    redis_commands_per_call: float = math.nan


# --- /proc ---------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (proc(5): fields 14 and 15, after the parenthesised command)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all the machine's cores since boot (proc(5) ``/proc/stat``:
    idle and iowait are not busy)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - fields[3] - fields[4], total


#: a trial starts once the machine is at most this busy (% of all cores) over one second
QUIET_PCT = 20.0
#: ... or after this long (seconds), saying so
QUIET_PATIENCE = 90.0


async def wait_quiet(
    *,
    threshold: float = QUIET_PCT,
    patience: float = QUIET_PATIENCE,
    window: float = 1.0,
    sample: Callable[[], tuple[int, int]] = machine_jiffies,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> tuple[float, float]:
    """Wait until the machine was at most ``threshold`` % busy over one ``window``, at most
    ``patience`` seconds; returns (seconds waited, busy % of the last window).

    With no channel left and the controller idle, an overloaded trial still leaves work behind:
    record writes landing, Asterisk and the sipp operators catching up. The next trial started on
    that paid for it (one run failed Unico at 36 calls/s, then the bare app at 96, right after an
    overloaded 48), so its result depended on the order the seed drew.
    """
    waited, busy = 0.0, math.nan
    while True:
        before = sample()
        await sleep(window)
        waited += window
        busy = busy_pct(before, sample())
        if not busy > threshold or waited >= patience:  # NaN (no ticks counted) passes
            return waited, busy


def redis_counters(url: str) -> tuple[float, int]:
    """(CPU seconds, commands processed) of the Redis server at ``url`` since it started
    (``INFO``: ``used_cpu_sys`` + ``used_cpu_user``, ``total_commands_processed``); NaN and 0 if
    it cannot be read."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            cpu, stats = client.info("cpu"), client.info("stats")
        finally:
            client.close()
    except redis.RedisError:
        return math.nan, 0
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), int(stats["total_commands_processed"])


def busy_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of the machine's cores busy between two ``machine_jiffies`` readings, percent."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(100 * busy / total, 1) if total > 0 else math.nan


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_parts(pid: int) -> dict[str, float]:
    """``pid``'s resident memory by kind, MiB (proc(5) status): ``anon`` (heap, stacks), ``file``
    (mapped files: libraries, SQLite's WAL index) and ``shmem``."""
    parts = {"RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem"}
    found = {name: math.nan for name in parts.values()}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(maxsplit=1)[0] if line else ""
        if key in parts:
            found[parts[key]] = round(int(line.split()[1]) / 1024, 2)
    return found


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header for ARI (aiohttp's BasicAuth is deprecated)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def asterisk_pid(settings: Settings) -> int:
    return int((instance_dir(settings) / "run" / "asterisk.pid").read_text().strip())


# --- the bare Stasis baseline ---------------------------------------------------------------------


class BareApp:
    """The least an ARI app must do to connect a caller to an operator: answer, originate the
    longest-idle operator (FIFO of idle operators, FIFO of callers when none is idle), put both in
    a mixing bridge, hang up the other side when either leaves. No IVR, no Redis, no records.

    One task per event (so REST round trips overlap as the controller's per-call actors do); the
    state changes happen before the awaits, and 404s from a side already gone are ignored.
    """

    def __init__(self, http: aiohttp.ClientSession, base: str, app: str, operators: Sequence[str], ring: int) -> None:
        self.http, self.base, self.app, self.ring = http, base, app, ring
        self.idle: deque[str] = deque(operators)
        self.line: deque[str] = deque()  # caller channel ids waiting for an operator
        self.callers: dict[str, str] = {}  # caller channel id -> caller number
        self.legs: dict[str, tuple[str, str]] = {}  # operator leg id -> (caller channel id, operator)
        self.tasks: set[asyncio.Task[None]] = set()

    async def rest(self, method: str, path: str, **params: str) -> int:
        async with self.http.request(method, f"{self.base}/ari{path}", params=params) as response:
            await response.read()
            return response.status

    async def run(self) -> None:
        url = self.base.replace("http", "ws", 1) + f"/ari/events?app={self.app}"
        async with self.http.ws_connect(url, max_msg_size=0) as ws:
            print(f"bare app {self.app!r} connected", flush=True)
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                task = asyncio.create_task(self.on_event(json.loads(message.data)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def on_event(self, event: dict[str, Any]) -> None:
        kind, channel = event.get("type"), event.get("channel") or {}
        channel_id = channel.get("id", "")
        try:
            if kind == "StasisStart":
                args = event.get("args") or []
                if args[:1] == ["operator"] and len(args) > 1:
                    await self.connect(channel_id, args[1])
                else:
                    await self.arrive(channel_id, channel.get("caller", {}).get("number", ""))
            elif kind == "StasisEnd" and channel_id in self.callers:
                await self.caller_gone(channel_id)
            elif kind == "ChannelDestroyed" and channel_id in self.legs:
                await self.leg_gone(channel_id)
        except aiohttp.ClientError as exc:
            print(f"bare app: {kind} {channel_id}: {exc}", file=sys.stderr, flush=True)

    async def arrive(self, caller: str, number: str) -> None:
        self.callers[caller] = number
        await self.rest("POST", f"/channels/{caller}/answer")
        self.line.append(caller)
        await self.dispatch()

    async def dispatch(self) -> None:
        while self.idle and self.line:
            caller = self.line.popleft()
            if caller in self.callers:
                await self.dial(caller, self.idle.popleft())

    async def dial(self, caller: str, operator: str) -> None:
        leg = f"{caller}-op"
        self.legs[leg] = (caller, operator)
        number = self.callers.get(caller, "")
        status = await self.rest(
            "POST",
            "/channels",
            endpoint=f"PJSIP/{operator}",
            app=self.app,
            appArgs=f"operator,{caller}",
            callerId=f'"{number}" <{number}>',
            timeout=str(self.ring),
            channelId=leg,
            originator=caller,
        )
        if status >= 300:
            await self.leg_gone(leg)

    async def connect(self, leg: str, caller: str) -> None:
        if caller not in self.callers:
            await self.rest("DELETE", f"/channels/{leg}")
            return
        bridge = f"{caller}-bridge"
        await self.rest("POST", f"/bridges/{bridge}", type="mixing")
        await self.rest("POST", f"/bridges/{bridge}/addChannel", channel=f"{caller},{leg}")

    async def caller_gone(self, caller: str) -> None:
        self.callers.pop(caller, None)
        for leg, (owner, _) in list(self.legs.items()):
            if owner == caller:
                await self.rest("DELETE", f"/channels/{leg}")
        await self.rest("DELETE", f"/bridges/{caller}-bridge")

    async def leg_gone(self, leg: str) -> None:
        entry = self.legs.pop(leg, None)
        if entry is None:
            return
        caller, operator = entry
        self.idle.append(operator)
        if caller in self.callers:
            await self.rest("DELETE", f"/channels/{caller}")
        await self.dispatch()


async def serve_bare() -> int:
    """Run :class:`BareApp` with the connection given in the environment (CAPACITY_BARE_*)."""
    env = os.environ
    operators = env["CAPACITY_BARE_OPERATORS"].split(",")
    user, password = env["CAPACITY_BARE_ARI_USER"], env["CAPACITY_BARE_ARI_PASSWORD"]
    connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=10)  # under Asterisk's 15 s keep-alive
    async with aiohttp.ClientSession(headers=basic_auth(user, password), connector=connector) as http:
        app = BareApp(http, env["CAPACITY_BARE_ARI_URL"], BARE_APP, operators, int(env["CAPACITY_BARE_RING"]))
        await app.run()
    return 1  # the websocket closed: Asterisk went away


# --- the rig ---------------------------------------------------------------------------------------


#: how long the operators' registrations last. The rig's softphones do not refresh them (a
#: REGISTER from a group's port stops its UAS and its calls), and with an hour's registration the
#: first 60-minute soak lost its operators in its last minute. Asterisk's default
#: ``max_expiration`` for an AOR is 7200 s, so a soak runs at most :data:`MAX_SOAK_MINUTES`.
REGISTRATION_SECONDS = 7200
MAX_SOAK_MINUTES = 110


def capacity_settings(state_dir: Path) -> Settings:
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
        redis_prefix=f"unico-capacity-{secrets.token_hex(4)}:",
    )


class CapacityController(Controller):
    """The e2e rig's controller process, logging at INFO as in production (the rig uses DEBUG)."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env["UNICO_LOG_LEVEL"] = "INFO"
        return env

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def operator_ids(count: int) -> list[str]:
    return [f"cap{n:03d}" for n in range(1, count + 1)]


def roster_yaml(ids: Sequence[str]) -> str:
    operators: dict[str, Any] = {
        op: {"name": f"Capacity {op[3:]}", "site": "bench", "tiers": ["general"], "skills": {"capacity": 5}}
        for op in ids
    }
    operators[HOLD_OPERATOR] = {
        "name": "Capacity hold",
        "site": "bench",
        "tiers": ["general"],
        "skills": {"capacity_hold": 5},
    }
    return "# generated by bench/capacity.py\n" + yaml.safe_dump({"operators": operators}, sort_keys=True)


@dataclass
class Rig:
    settings: Settings
    controller: CapacityController
    work: Path
    operators: list[str]
    talk_ms: int
    http: aiohttp.ClientSession
    phones: list[Softphone] = field(default_factory=list)
    heads: list[Softphone] = field(default_factory=list)  # one per group, running its UAS
    bare: subprocess.Popen[bytes] | None = None
    rounds: int = 0
    profile_dir: Path | None = None  # py-spy samples of the controller during Unico trials

    async def ari(self, method: str, path: str) -> Any:
        auth = basic_auth(self.settings.ari_user, self.settings.ari_password.get_secret_value())
        async with self.http.request(method, f"{self.settings.ari_url}/ari{path}", headers=auth) as response:
            text = await response.text()
            return json.loads(text) if text and response.status < 300 else None

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.settings.admin_token.get_secret_value()}"}
        url = f"http://127.0.0.1:{self.settings.web_port}{path}"
        async with self.http.request(method, url, json=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    # --- set-up ----------------------------------------------------------------------------------

    def operator_marks(self) -> list[int]:
        return [len(phone.poll()) for phone in self.heads]

    def operator_events(self, marks: Sequence[int]) -> list[Event]:
        return [event for phone, mark in zip(self.heads, marks, strict=True) for event in phone.poll()[mark:]]

    async def start_operators(self) -> None:
        """Register the operators (and the hold operator) in groups of :data:`GROUP`, each group from
        one UAS port, then start one sipp UAS per group answering for all of its operators and
        hanging up ``talk_ms`` after the answer.

        Registrations are sequential (each is sent from the group's port while its UAS is not
        bound); a group takes ~0.4 s per operator, well under the 30 s qualify interval, so
        Asterisk's OPTIONS always finds the UAS (a missed one marks the contact Unreachable).
        """
        ids = [*self.operators, HOLD_OPERATOR]
        passwords = ensure_operator_passwords(self.settings.state_dir, ids)
        root = self.work / "artifacts" / "softphone"
        started = time.monotonic()
        for first in range(0, len(ids), GROUP):
            port, media = free_udp_port(), free_media_port()
            group = [
                Softphone(
                    op,
                    passwords[op],
                    port=self.settings.sip_port,
                    uas_port=port,
                    media_port=media,
                    artifacts_root=root,
                    expires=REGISTRATION_SECONDS,
                )
                for op in ids[first : first + GROUP]
            ]
            for phone in group:
                await phone.register()
            await group[0].start("answer", ring_ms=0, talk_ms=self.talk_ms)
            self.phones += group
            self.heads.append(group[0])  # its events are the whole group's
        print(
            f"{len(ids)} operators registered ({len(self.heads)} sipp UAS) in {time.monotonic() - started:.0f} s",
            flush=True,
        )

    async def login_unico(self) -> None:
        for op in [*self.operators, HOLD_OPERATOR]:
            await self.controller.wait_agent(op, "logged_out")  # the registration reached the ACD
            status, body = await self.api("POST", f"/api/agents/{op}/login")
            if status != 200:
                raise BenchError(f"login {op}: {status} {body}")
        status, body = await self.api("POST", f"/api/agents/{HOLD_OPERATOR}/pause", {"reason": "break"})
        if status != 200:
            raise BenchError(f"pause {HOLD_OPERATOR}: {status} {body}")

        async def all_ready() -> bool:
            _, agents = await self.api("GET", "/api/agents")
            states = {a["id"]: a["state"] for a in agents if a["id"] in self.operators}
            for op, state in states.items():
                if state == "not_ready":  # e.g. logged in before the ACD saw the registration
                    await self.api("POST", f"/api/agents/{op}/ready")
            return sum(1 for state in states.values() if state == "ready") == len(self.operators)

        try:
            await wait_for(all_ready, timeout=40, interval=1, what="every operator ready in Unico")
        except AssertionError as exc:
            raise BenchError(
                f"{exc}\nThe controller does not see the operators' registrations: look for a refused endpoint "
                'subscription in the controller log ("Too many values for event_source": see '
                "unico.controller.SUBSCRIBE_BATCH) or use fewer --operators"
            ) from None

    def start_bare(self) -> None:
        s = self.settings
        env = {
            **os.environ,
            "CAPACITY_BARE_ARI_URL": s.ari_url,
            "CAPACITY_BARE_ARI_USER": s.ari_user,
            "CAPACITY_BARE_ARI_PASSWORD": s.ari_password.get_secret_value(),
            "CAPACITY_BARE_OPERATORS": ",".join(self.operators),
            "CAPACITY_BARE_RING": str(RING_TIMEOUT_S),
        }
        with (self.work / "bare.log").open("ab") as log:
            self.bare = subprocess.Popen(
                [sys.executable, "-m", "bench.capacity", "--serve-bare"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_bare(self) -> None:
        async def registered() -> bool:
            if self.bare is None or self.bare.poll() is not None:
                raise BenchError(f"the bare app exited; see {self.work / 'bare.log'}")
            apps = await self.ari("GET", "/applications")
            return any(app.get("name") == BARE_APP for app in apps or [])

        await wait_for(registered, timeout=20, interval=0.2, what=f"ARI application {BARE_APP}")

    def stop_bare(self) -> None:
        if self.bare is not None and self.bare.poll() is None:
            self.bare.terminate()
            try:
                self.bare.wait(5)
            except subprocess.TimeoutExpired:
                self.bare.kill()

    def app_pid(self, system: str) -> int:
        if system == UNICO:
            return self.controller.pid
        assert self.bare is not None
        return self.bare.pid

    # --- between trials --------------------------------------------------------------------------

    async def settle(self, patience: float = 30.0) -> int:
        """Wait until Asterisk holds no channel (hang up what is left after ``patience`` s) and every
        Unico operator is ready again; return the channels that had to be hung up."""
        deadline = time.monotonic() + patience
        channels: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            channels = await self.ari("GET", "/channels") or []
            if not channels:
                break
            await asyncio.sleep(0.25)
        for channel in channels:
            await self.ari("DELETE", f"/channels/{channel['id']}")
        if self.controller.running:
            await wait_for(self.controller_idle, timeout=15, interval=0.25, what="controller without calls")
            _, agents = await self.api("GET", "/api/agents")
            for agent in agents if isinstance(agents, list) else []:
                if agent.get("id") in self.operators and agent.get("state") not in ("ready",):
                    await self.api("POST", f"/api/agents/{agent['id']}/ready")
        return len(channels)

    async def pending_writes(self) -> int:
        health = await self.controller.health()
        writes = health.get("record_writes") if isinstance(health, dict) else None
        return int(writes.get("pending", 0)) if isinstance(writes, dict) else 0

    async def backlog_growth(self, seconds: float) -> int:
        """How much the record writes waiting grew from the middle to the end of a trial's arrivals."""
        await asyncio.sleep(seconds / 2)
        middle = await self.pending_writes()
        await asyncio.sleep(seconds / 2)
        return await self.pending_writes() - middle

    async def record_backlog(self) -> int:
        """Record writes still waiting :data:`DRAIN_SECONDS` after the trial's last call (0: the
        controller's write-behind queue kept up with the rate)."""
        pending = 0
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            health = await self.controller.health()
            writes = health.get("record_writes") if isinstance(health, dict) else None
            pending = int(writes.get("pending", 0)) if isinstance(writes, dict) else 0
            if pending == 0 or time.monotonic() >= deadline:
                return pending
            await asyncio.sleep(0.5)

    async def controller_idle(self) -> bool:
        health = await self.controller.health()
        return bool(health) and health is not None and health.get("calls") == 0

    # --- one trial -------------------------------------------------------------------------------

    async def trial(self, system: str, rate: float, seconds: float, label: str) -> Trial:
        self.rounds += 1
        calls = max(1, round(rate * seconds))
        waited, busy = await wait_quiet()  # the last trial's leftovers are not this one's
        if busy > QUIET_PCT:
            print(f"  (the machine was still {busy:.0f} % busy after {waited:.0f} s: starting anyway)", flush=True)
        prefix = f"39{os.getpid() % 100:02d}{self.rounds:03d}"
        marks = self.operator_marks()
        app, ast = self.app_pid(system), asterisk_pid(self.settings)
        cpu_app, cpu_ast = cpu_seconds(app), cpu_seconds(ast)
        machine = machine_jiffies()
        redis_before = redis_counters(self.settings.redis_url)
        started = time.time()
        run = await CallerRun.start(
            self.work / "sipp" / f"{self.rounds:03d}-{system}",
            NUMBERS[system],
            prefix,
            rate=rate,
            calls=calls,
            port=self.settings.sip_port,
            hold_ms=None,
            bye_timeout_ms=self.talk_ms + WAIT_MARGIN_MS,
            limit=max(200, 4 * len(self.operators)),
        )
        profiler = await self.profile(f"{self.rounds:03d}-{rate:g}cps") if system == UNICO else None
        pace = asyncio.ensure_future(self.backlog_growth(seconds)) if system == UNICO else None
        try:
            await run.wait()
            machine_busy = busy_pct(machine, machine_jiffies())
        finally:
            run.stop()
            if profiler is not None and profiler.returncode is None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                await profiler.wait()
        growth = await pace if pace is not None else 0
        backlog = await self.record_backlog() if system == UNICO else 0
        leftovers = await self.settle()
        cpu_app, cpu_ast = cpu_seconds(app) - cpu_app, cpu_seconds(ast) - cpu_ast
        redis_after = redis_counters(self.settings.redis_url)
        calls_out = outcomes(run, calls, self.operator_events(marks))
        sent = sorted(c.sent for c in calls_out if not math.isnan(c.sent))
        failures = Counter(c.failure for c in calls_out if c.failure is not None)
        if leftovers:
            failures["channels left in Asterisk"] += leftovers
        if backlog:
            # the calls went through but their records did not keep up: not a sustainable rate
            failures[f"record writes behind ({backlog} waiting {DRAIN_SECONDS:g} s after the last call)"] += 1
        if growth > PACE_SLACK:
            # still landing after the trial, but falling further behind while it ran: a longer run
            # at this rate grows the backlog (and the controller's memory) without end
            failures[f"record writes falling behind (+{growth} waiting over the trial's second half)"] += 1
        assigned = [c.assigned_ms for c in calls_out if c.assigned_ms is not None and c.failure is None]
        answered = [c.answered_ms for c in calls_out if c.answered_ms is not None]
        failed = sum(1 for c in calls_out if c.failure is not None)
        trial = Trial(
            system=system,
            round=self.rounds,
            rate=rate,
            seconds=seconds,
            calls=calls,
            completed=calls - failed,
            failed=failed,
            failures=dict(failures),
            passed=not failures,
            achieved_cps=(len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else math.nan,
            peak_concurrent=peak_concurrency(calls_out),
            app_cpu_s=round(cpu_app, 3),
            asterisk_cpu_s=round(cpu_ast, 3),
            app_cpu_ms_per_call=round(cpu_app / calls * 1000, 2),
            asterisk_cpu_ms_per_call=round(cpu_ast / calls * 1000, 2),
            assign_p50_ms=round(percentile(assigned, 50), 1),
            assign_p99_ms=round(percentile(assigned, 99), 1),
            answer_p99_ms=round(percentile(answered, 99), 1),
            leftover_channels=leftovers,
            started=started,
            machine_busy_pct=machine_busy,
            redis_cpu_ms_per_call=round((redis_after[0] - redis_before[0]) / calls * 1000, 2),
            redis_commands_per_call=round((redis_after[1] - redis_before[1]) / calls, 1),
        )
        verdict = "pass" if trial.passed else f"FAIL {dict(failures)}"
        print(
            f"  {label:<10} {system:<5} {rate:6.2f} cps x {seconds:.0f} s: {trial.completed}/{calls} ok, "
            f"peak {trial.peak_concurrent} concurrent, cpu {trial.app_cpu_ms_per_call:.1f} ms/call "
            f"(asterisk {trial.asterisk_cpu_ms_per_call:.1f}, redis {trial.redis_cpu_ms_per_call:.1f}), "
            f"machine {trial.machine_busy_pct:.0f} % busy, "
            f"assign p99 {trial.assign_p99_ms:.0f} ms: {verdict}",
            flush=True,
        )
        if trial.passed:
            shutil.rmtree(run.folder, ignore_errors=True)
        return trial

    async def profile(self, name: str) -> asyncio.subprocess.Process | None:
        """``py-spy record`` on the controller (collapsed stacks, 100 Hz, not pausing it)."""
        if self.profile_dir is None:
            return None
        spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        command = [spy, "record", "--pid", str(self.controller.pid), "--rate", "100", "--nonblocking"]
        command += ["--format", "raw", "--output", str(self.profile_dir / f"{name}.txt")]
        return await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )

    # --- memory per waiting call -------------------------------------------------------------------

    async def waiting_memory(self, count: int, rate: float = 10.0) -> dict[str, Any]:
        """RSS of the controller and Asterisk before and while ``count`` callers wait in cap_hold."""
        controller, ast = self.controller.pid, asterisk_pid(self.settings)
        before = (rss_bytes(controller), rss_bytes(ast))
        self.rounds += 1
        hold_ms = int(count / rate * 1000) + 20_000
        run = await CallerRun.start(
            self.work / "sipp" / f"{self.rounds:03d}-hold",
            HOLD_NUMBER,
            f"38{os.getpid() % 100:02d}{self.rounds:03d}",
            rate=rate,
            calls=count,
            port=self.settings.sip_port,
            hold_ms=hold_ms,
            bye_timeout_ms=WAIT_MARGIN_MS,
            limit=count + 10,
        )

        async def all_waiting() -> bool:
            _, queues = await self.api("GET", "/api/queues")
            line: list[Any] = next((q["waiting"] for q in queues if q["name"] == HOLD_QUEUE), [])
            return len(line) >= count

        try:
            await wait_for(all_waiting, timeout=count / rate + 20, interval=0.5, what=f"{count} callers waiting")
            await asyncio.sleep(2)
            samples = []
            for _ in range(3):
                samples.append((rss_bytes(controller), rss_bytes(ast)))
                await asyncio.sleep(1)
            during = (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
            await run.wait()
        finally:
            run.stop()
        await self.settle()
        after = (rss_bytes(controller), rss_bytes(ast))
        result = {
            "waiting_calls": count,
            "controller_rss_before_mb": round(before[0] / 2**20, 1),
            "controller_rss_waiting_mb": round(during[0] / 2**20, 1),
            "controller_rss_after_mb": round(after[0] / 2**20, 1),
            "controller_kb_per_waiting_call": round((during[0] - before[0]) / count / 1024, 1),
            "asterisk_rss_before_mb": round(before[1] / 2**20, 1),
            "asterisk_rss_waiting_mb": round(during[1] / 2**20, 1),
            "asterisk_rss_after_mb": round(after[1] / 2**20, 1),
            "asterisk_kb_per_waiting_call": round((during[1] - before[1]) / count / 1024, 1),
        }
        print(
            f"  memory: {count} callers waiting: controller +{result['controller_kb_per_waiting_call']} KB/call "
            f"({result['controller_rss_before_mb']} -> {result['controller_rss_waiting_mb']} MB), Asterisk "
            f"+{result['asterisk_kb_per_waiting_call']} KB/call ({result['asterisk_rss_before_mb']} -> "
            f"{result['asterisk_rss_waiting_mb']} MB)",
            flush=True,
        )
        shutil.rmtree(run.folder, ignore_errors=True)
        return result

    async def close(self) -> None:
        if self.controller.running:
            for op in [*self.operators, HOLD_OPERATOR]:
                await self.api("POST", f"/api/agents/{op}/logout")
        for phone in self.phones:
            try:
                await phone.close()
            except Exception as exc:  # noqa: BLE001 - stop every other softphone all the same
                print(f"softphone {phone.op_id}: {exc}", file=sys.stderr)
                await phone.stop()


# --- the search ---------------------------------------------------------------------------------


@dataclass
class Search:
    """Step up by ``factor`` from ``start`` until a trial fails, then bisect between the highest
    passing and the lowest failing rate until they are within ``resolution`` (relative)."""

    system: str
    start: float
    factor: float
    resolution: float
    ceiling: float  # what the operators can absorb: beyond it the search would measure them
    passed: float = 0.0
    failed: float | None = None
    tried: bool = False

    def next_rate(self) -> float | None:
        if self.failed is None:
            rate = self.start if not self.tried else self.passed * self.factor
            if self.passed >= self.ceiling:
                return None
            return round(min(rate, self.ceiling), 2)
        if self.failed - self.passed <= max(self.resolution * self.failed, 0.1):
            return None
        return round((self.passed + self.failed) / 2, 2)

    def record(self, rate: float, ok: bool) -> None:
        self.tried = True
        if ok:
            self.passed = max(self.passed, rate)
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)

    @property
    def operator_limited(self) -> bool:
        return self.failed is None and self.passed >= self.ceiling


async def capacity(rig: Rig, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    trials: list[Trial] = []
    systems = [s for s in SYSTEMS if s in args.systems]
    print("warm-up (not counted): each system at 2 cps", flush=True)
    warmups = []
    for system in systems:
        warm = await rig.trial(system, 2.0, min(args.trial_seconds, 10), "warm-up")
        warmups.append(asdict(warm))
        if not warm.passed:
            raise BenchError(f"{system}: the warm-up trial failed {warm.failures}; see {rig.work / 'sipp'}")
    # each operator handles one call per talk time + ~1 s of signalling: stay below 80 % of that
    ceiling = round(0.8 * len(rig.operators) / (args.talk_ms / 1000 + 1), 2)
    searches = {s: Search(s, args.start_rate, args.factor, args.resolution, ceiling) for s in systems}
    deadline = time.monotonic() + args.budget_minutes * 60
    step = 0
    print(
        f"search: start {args.start_rate} cps, x{args.factor}, resolution {args.resolution:.0%}, "
        f"operator ceiling {ceiling} cps, {args.trial_seconds:.0f} s trials",
        flush=True,
    )
    while time.monotonic() < deadline:
        pending = [(s, r) for s in systems if (r := searches[s].next_rate()) is not None]
        if not pending:
            break
        rng.shuffle(pending)
        step += 1
        for system, rate in pending:
            trial = await rig.trial(system, rate, args.trial_seconds, f"step {step}")
            trials.append(trial)
            searches[system].record(rate, trial.passed)
            if system == UNICO and not rig.controller.running:
                raise BenchError("the controller exited during a trial; see its log")
    stopped = {s: searches[s].next_rate() is not None for s in systems}
    memory = await rig.waiting_memory(args.waiting_calls) if args.waiting_calls and UNICO in systems else {}
    summary: dict[str, Any] = {}
    for system in systems:
        search = searches[system]
        best = max(
            (t for t in trials if t.system == system and t.passed and t.rate == search.passed),
            key=lambda t: t.round,
            default=None,
        )
        passing = [t for t in trials if t.system == system and t.passed]
        summary[system] = {
            "max_cps": search.passed,
            "lowest_failing_cps": search.failed,
            "operator_limited": search.operator_limited,
            "stopped_by_budget": stopped[system],
            "peak_concurrent": best.peak_concurrent if best else 0,
            "peak_concurrent_any_pass": max((t.peak_concurrent for t in passing), default=0),
            "app_cpu_ms_per_call": best.app_cpu_ms_per_call if best else math.nan,
            "asterisk_cpu_ms_per_call": best.asterisk_cpu_ms_per_call if best else math.nan,
            "machine_busy_pct": best.machine_busy_pct if best else math.nan,
            "redis_cpu_ms_per_call": best.redis_cpu_ms_per_call if best else math.nan,
            "redis_commands_per_call": best.redis_commands_per_call if best else math.nan,
            "assign_p50_ms": best.assign_p50_ms if best else math.nan,
            "assign_p99_ms": best.assign_p99_ms if best else math.nan,
        }
    if UNICO in summary and BARE in summary:
        u, b = summary[UNICO], summary[BARE]
        summary["ratio_cps"] = round(u["max_cps"] / b["max_cps"], 3) if b["max_cps"] else math.nan
        summary["ratio_concurrent"] = (
            round(u["peak_concurrent"] / b["peak_concurrent"], 3) if b["peak_concurrent"] else math.nan
        )
        summary["controller_cpu_share_of_asterisk"] = (
            round(u["app_cpu_ms_per_call"] / u["asterisk_cpu_ms_per_call"], 3)
            if u["asterisk_cpu_ms_per_call"]
            else math.nan
        )
    return {
        "summary": summary,
        "memory": memory,
        "trials": [asdict(t) for t in trials],
        "warmups": warmups,
        "ceiling_cps": ceiling,
    }


# --- soak ----------------------------------------------------------------------------------------


async def soak(rig: Rig, minutes: float, rate: float, *, trace: bool = False) -> dict[str, Any]:
    """Steady traffic to Unico for ``minutes``; RSS every minute, per-minute latency and failures.

    ``trace``: the controller traces its allocations; it writes a snapshot after the first minute
    and another once the calls are over, and what grew in between is printed and returned.
    """
    controller, ast = rig.controller.pid, asterisk_pid(rig.settings)
    calls = max(1, round(rate * minutes * 60))
    rig.rounds += 1
    marks = rig.operator_marks()
    run = await CallerRun.start(
        rig.work / "sipp" / f"{rig.rounds:03d}-soak",
        NUMBERS[UNICO],
        f"37{os.getpid() % 100:02d}{rig.rounds:03d}",
        rate=rate,
        calls=calls,
        port=rig.settings.sip_port,
        hold_ms=None,
        bye_timeout_ms=rig.talk_ms + WAIT_MARGIN_MS,
        limit=max(200, 4 * len(rig.operators)),
    )
    started = time.time()
    samples: list[dict[str, float]] = []
    cpu0 = cpu_seconds(controller), cpu_seconds(ast)
    total_minutes = max(1, math.ceil(minutes))
    machine = [machine_jiffies()]

    def sample(minute: int) -> dict[str, float]:
        """RSS and CPU at the end of ``minute`` (-1: before the first call)."""
        parts = rss_parts(controller)
        machine.append(machine_jiffies())
        return {
            "minute": minute,
            "machine_busy_pct": busy_pct(machine[-2], machine[-1]),
            "at": round(time.time() - started, 1),
            "controller_rss_mb": round(rss_bytes(controller) / 2**20, 2),
            "controller_anon_mb": parts["anon"],
            "controller_file_mb": parts["file"] + parts["shmem"],
            "asterisk_rss_mb": round(rss_bytes(ast) / 2**20, 2),
            "controller_cpu_s": round(cpu_seconds(controller) - cpu0[0], 2),
            "asterisk_cpu_s": round(cpu_seconds(ast) - cpu0[1], 2),
        }

    samples.append(sample(-1))
    waiter = asyncio.ensure_future(run.wait())
    try:
        for minute in range(total_minutes):
            await asyncio.wait([waiter], timeout=max(0.0, started + (minute + 1) * 60 - time.time()))
            samples.append(now := sample(minute))
            health = await rig.controller.health()
            writes = health.get("record_writes") if isinstance(health, dict) else None
            now["records_pending"] = float(writes.get("pending", 0)) if isinstance(writes, dict) else math.nan
            blocks = health.get("python_blocks") if isinstance(health, dict) else None
            now["python_blocks"] = float(blocks) if isinstance(blocks, int) else math.nan
            run.read()
            done = sum(1 for kinds in run.events.values() if "END" in kinds)
            bad = sum(1 for kinds in run.events.values() if "END" in kinds and "REMOTE_BYE" not in kinds)
            print(
                f"  soak minute {minute + 1:3d}: controller {now['controller_rss_mb']:.1f} MB, Asterisk "
                f"{now['asterisk_rss_mb']:.1f} MB, {done} calls ended, {bad} without Asterisk's BYE, "
                f"{now['records_pending']:.0f} record writes waiting; controller heap "
                f"{now['controller_anon_mb']:.1f} MB, files {now['controller_file_mb']:.1f} MB, "
                f"{now['python_blocks']:.0f} Python blocks; machine {now['machine_busy_pct']:.0f} % busy",
                flush=True,
            )
            if trace and minute == 0:
                await memory_snapshot(rig)
            if waiter.done():
                break
        await waiter
    finally:
        run.stop()
    leftovers = await rig.settle()
    trimmed = await memory_after_trim(rig)
    grown = await memory_growth(rig) if trace else []
    calls_out = outcomes(run, calls, rig.operator_events(marks))
    per_minute = []
    for m in range(total_minutes):
        bucket = [c for c in calls_out if not math.isnan(c.sent) and m <= (c.sent - started) / 60 < m + 1]
        assigned = [c.assigned_ms for c in bucket if c.assigned_ms is not None and c.failure is None]
        at_end = next((s for s in samples if s["minute"] == m), {})
        per_minute.append(
            {
                "minute": m,
                "calls": len(bucket),
                "failed": sum(1 for c in bucket if c.failure is not None),
                "assign_p50_ms": round(percentile(assigned, 50), 1),
                "assign_p99_ms": round(percentile(assigned, 99), 1),
                "controller_rss_mb": at_end.get("controller_rss_mb", math.nan),
                "asterisk_rss_mb": at_end.get("asterisk_rss_mb", math.nan),
                "records_pending": at_end.get("records_pending", math.nan),
                "controller_anon_mb": at_end.get("controller_anon_mb", math.nan),
                "controller_file_mb": at_end.get("controller_file_mb", math.nan),
                "python_blocks": at_end.get("python_blocks", math.nan),
                "machine_busy_pct": at_end.get("machine_busy_pct", math.nan),
            }
        )
    window = max(1, min(5, total_minutes // 3))
    first, last = per_minute[:window], per_minute[-window:]

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        values = [r[key] for r in rows if not math.isnan(r[key])]
        return statistics.fmean(values) if values else math.nan

    def p99(rows: list[dict[str, Any]]) -> float:
        minutes_in = {r["minute"] for r in rows}
        values = [
            c.assigned_ms
            for c in calls_out
            if c.assigned_ms is not None and c.failure is None and int((c.sent - started) // 60) in minutes_in
        ]
        return percentile(values, 99)

    growth = {
        key: round((mean(last, key) / mean(first, key) - 1) * 100, 2)
        for key in ("controller_rss_mb", "asterisk_rss_mb", "controller_anon_mb", "python_blocks")
    }
    first_p99, last_p99 = p99(first), p99(last)
    failures = Counter(c.failure for c in calls_out if c.failure is not None)
    summary = {
        "rate_cps": rate,
        "minutes": minutes,
        "calls": calls,
        "failed": sum(failures.values()) + leftovers,
        "failures": dict(failures),
        "leftover_channels": leftovers,
        "window_minutes": window,
        "controller_rss_growth_pct": growth["controller_rss_mb"],
        "asterisk_rss_growth_pct": growth["asterisk_rss_mb"],
        "controller_anon_growth_pct": growth["controller_anon_mb"],
        "python_blocks_growth_pct": growth["python_blocks"],
        "assign_p99_first_ms": round(first_p99, 1),
        "assign_p99_last_ms": round(last_p99, 1),
        "assign_p99_drift_pct": round((last_p99 / first_p99 - 1) * 100, 2) if first_p99 else math.nan,
        "controller_cpu_ms_per_call": round(samples[-1]["controller_cpu_s"] / calls * 1000, 2) if samples else math.nan,
    }
    summary.update(trimmed)
    return {"summary": summary, "per_minute": per_minute, "samples": samples, "memory_growth": grown}


async def memory_after_trim(rig: Rig) -> dict[str, float]:
    """Once the calls are over and their records written: the controller's memory, then again after
    it made a full collection and gave the allocator's free heap pages back (SIGUSR2,
    ``unico.memtrace.trim``). What the trim returns was freed memory the allocator kept; what stays
    is live."""
    pid = rig.controller.pid
    for _ in range(600):
        if not await rig.pending_writes():
            break
        await asyncio.sleep(1)
    before = rss_parts(pid)
    rss_before = rss_bytes(pid) / 2**20
    os.kill(pid, signal.SIGUSR2)
    await asyncio.sleep(3)
    after = rss_parts(pid)
    figures = {
        "controller_rss_idle_mb": round(rss_before, 2),
        "controller_anon_idle_mb": before["anon"],
        "controller_rss_trimmed_mb": round(rss_bytes(pid) / 2**20, 2),
        "controller_anon_trimmed_mb": after["anon"],
    }
    print(
        f"  controller once idle: {figures['controller_rss_idle_mb']:.1f} MB (heap {before['anon']:.1f}); after a full "
        f"collection and malloc_trim: {figures['controller_rss_trimmed_mb']:.1f} MB (heap {after['anon']:.1f})",
        flush=True,
    )
    return figures


async def memory_snapshot(rig: Rig) -> Path:
    """Have the controller write a tracemalloc snapshot (SIGUSR2) and wait for the file."""
    folder = rig.settings.state_dir / "memory"
    before = set(folder.glob("*.snapshot")) if folder.exists() else set()
    os.kill(rig.controller.pid, signal.SIGUSR2)
    for _ in range(600):
        fresh = set(folder.glob("*.snapshot")) - before if folder.exists() else set()
        if fresh:
            path = fresh.pop()
            size = -1
            while size != path.stat().st_size:  # written whole before it is read
                size = path.stat().st_size
                await asyncio.sleep(0.5)
            return path
        await asyncio.sleep(0.1)
    raise RuntimeError("the controller wrote no memory snapshot in 60 s (is UNICO_TRACEMALLOC set?)")


async def memory_growth(rig: Rig, limit: int = 15) -> list[dict[str, Any]]:
    """A last snapshot once the record writes have landed, compared with the first one: the places
    that grew most, printed (a write still waiting would show as growth)."""
    pending = await rig.pending_writes()
    for _ in range(600):
        if not pending:
            break
        await asyncio.sleep(1)
        pending = await rig.pending_writes()
    if pending:
        print(f"  memory growth: {pending} record writes still waiting after 10 minutes", flush=True)
    last = await memory_snapshot(rig)
    first = min(last.parent.glob("*.snapshot"), key=lambda path: path.stat().st_mtime)
    rows = await asyncio.to_thread(memtrace.compare, first, last, limit=limit)
    print("  memory growth after minute 1 (tracemalloc, by allocation site):", flush=True)
    for row in rows:
        print(f"    {row.line()}", flush=True)
    return [{"where": row.where, "size_bytes": row.size_bytes, "count": row.count} for row in rows]


# --- running it all ---------------------------------------------------------------------------------


async def with_rig(
    settings: Settings,
    controller: CapacityController,
    work: Path,
    args: argparse.Namespace,
    body: Callable[[Rig], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        rig = Rig(settings, controller, work, operator_ids(args.operators), args.talk_ms, http)
        rig.profile_dir = args.profile
        try:
            await rig.start_operators()
            await rig.login_unico()
            if BARE in args.systems:
                rig.start_bare()
                await rig.wait_bare()
            return await body(rig)
        finally:
            rig.stop_bare()
            await rig.close()


def prepare(work: Path, operators: int) -> tuple[Settings, CapacityController]:
    settings = capacity_settings(work / "state")
    config_dir = copy_config(work / "config" / "unico")
    shutil.copy(FLOWS, config_dir / "dialplan" / FLOWS.name)
    shutil.copy(SKILLS, config_dir / "skills" / SKILLS.name)
    (config_dir / "skills" / "capacity_operators.yaml").write_text(roster_yaml(operator_ids(operators)))
    controller = CapacityController(settings, config_dir, work / "controller.log")
    pbx.install(settings)
    write_operators(settings, load_config(config_dir / "dialplan", config_dir / "skills"))
    write_generated(settings, "extensions_local.conf", EXTENSIONS_LOCAL)
    return settings, controller


def drop_redis_keys(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{settings.redis_prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def problems_in(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line or " CRITICAL " in line]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~2-minute sanity run (short trials, small budget)")
    parser.add_argument("--trial-seconds", type=float, default=None, help="seconds of arrivals per trial (30)")
    parser.add_argument("--budget-minutes", type=float, default=None, help="minutes for the search (6; quick 1)")
    parser.add_argument("--start-rate", type=float, default=None, help="first rate of the step-up, cps (3)")
    parser.add_argument("--factor", type=float, default=2.0, help="step-up factor (2)")
    parser.add_argument("--resolution", type=float, default=0.1, help="bisection stops within this share (0.1)")
    parser.add_argument(
        "--operators",
        type=int,
        default=None,
        help="operators registered (100; quick 30; a soak: as the capacity run it takes its rate from)",
    )
    parser.add_argument(
        "--talk-ms",
        type=int,
        default=None,
        help="operators hang up this long after answering (2000; a soak: as the capacity run)",
    )
    parser.add_argument("--waiting-calls", type=int, default=None, help="callers for the memory step (100; 0 = skip)")
    parser.add_argument("--systems", default="unico,bare", help="comma-separated: unico, bare (both)")
    parser.add_argument("--soak-minutes", type=float, default=None, help="run the soak instead of the search")
    parser.add_argument("--rate", type=float, default=None, help="soak rate, cps (70%% of the last capacity)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the trial order")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results folder ({RESULTS})")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, sipp traces)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the controller in Unico trials, into DIR")
    parser.add_argument(
        "--trace-memory",
        type=int,
        default=0,
        metavar="FRAMES",
        help="soak: trace the controller's allocations (UNICO_TRACEMALLOC) and print what grew after minute 1",
    )
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    if args.soak_minutes is not None and not 0 < args.soak_minutes <= MAX_SOAK_MINUTES:
        parser.error(
            f"--soak-minutes: 0 < minutes <= {MAX_SOAK_MINUTES} (the operators' registrations last "
            f"{REGISTRATION_SECONDS} s and are not refreshed)"
        )
    if args.soak_minutes is not None:
        # the rate comes from a capacity run: the same operators and talk time, unless given
        for key, setting in capacity_run_settings(args.out).items():
            if getattr(args, key) is None:
                setattr(args, key, setting)
    defaults: dict[str, float] = {
        "trial_seconds": 10.0 if quick else 30.0,
        "budget_minutes": 1.0 if quick else 6.0,
        "start_rate": 3.0,
        "operators": 30 if quick else 100,
        "waiting_calls": 30 if quick else 100,
        "talk_ms": 2000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    if not set(args.systems) <= set(SYSTEMS) or not args.systems:
        parser.error(f"--systems takes {', '.join(SYSTEMS)}")
    if args.soak_minutes is not None:
        args.systems = (UNICO,)
        if args.rate is None:
            args.rate = default_soak_rate(args.out, parser)
    return args


def capacity_run_settings(folder: Path) -> dict[str, int]:
    """The operators and talk time of the capacity run in ``folder`` (none if there is none)."""
    try:
        run = json.loads((folder / "capacity.json").read_text())["run"]
        return {"operators": int(run["operators"]), "talk_ms": int(run["talk_ms"])}
    except (OSError, KeyError, ValueError, TypeError):
        return {}


def default_soak_rate(folder: Path, parser: argparse.ArgumentParser) -> float:
    path = folder / "capacity.json"
    try:
        cps = float(json.loads(path.read_text())["summary"][UNICO]["max_cps"])
    except (OSError, KeyError, ValueError, TypeError):
        parser.error(f"--rate is needed: no Unico capacity in {path} (run python -m bench.capacity first)")
    if cps <= 0:
        parser.error(f"--rate is needed: {path} has no passing Unico rate")
    return round(0.7 * cps, 2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare:
        return asyncio.run(serve_bare())
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    work = Path(tempfile.mkdtemp(prefix="unico-capacity-"))
    settings, controller = prepare(work, args.operators)
    soaking = args.soak_minutes is not None
    if soaking and args.trace_memory:
        controller.extra_env["UNICO_TRACEMALLOC"] = str(args.trace_memory)
    result: dict[str, Any] = {}
    ok, version, started = False, "?", time.time()
    pbx.start(settings)
    try:
        version = str((pbx.ari_get(settings, "/asterisk/info") or {}).get("system", {}).get("version", "?"))
        controller.start()
        asyncio.run(controller.wait_ready())
        if soaking:
            print(
                f"soak: {args.soak_minutes:g} min at {args.rate} cps, {args.operators} operators, "
                f"talk {args.talk_ms} ms",
                flush=True,
            )
            result = asyncio.run(
                with_rig(
                    settings,
                    controller,
                    work,
                    args,
                    lambda rig: soak(rig, args.soak_minutes, args.rate, trace=bool(args.trace_memory)),
                )
            )
        else:
            rng = random.Random(seed)
            result = asyncio.run(with_rig(settings, controller, work, args, lambda rig: capacity(rig, args, rng)))
        ok = True
    finally:
        controller.stop()
        pbx.stop(settings)
        drop_redis_keys(settings)
        problems = problems_in(controller.log_text())
        if problems or not ok or args.keep:
            print(f"work folder kept: {work} (controller.log, bare.log, sipp/, artifacts/)", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    run: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 1),
        "seed": seed,
        "operators": args.operators,
        "talk_ms": args.talk_ms,
        "quick": args.quick,
        "unico_number": f"{NUMBERS[UNICO]} (bench/capacity_flows.yaml: welcome, hours, hold prompt, queue)",
        "bare_number": f"{NUMBERS[BARE]} (Stasis({BARE_APP}): answer, originate, mixing bridge)",
    }
    meta: dict[str, Any] = {"machine": machine(version), "run": run, "controller_log_problems": problems[:20]}
    if soaking:
        run["rate_cps"] = args.rate
        report_soak(result, meta, args.out)
    else:
        run.update(
            trial_seconds=args.trial_seconds,
            start_rate=args.start_rate,
            factor=args.factor,
            resolution=args.resolution,
            budget_minutes=args.budget_minutes,
            systems=list(args.systems),
        )
        report_capacity(result, meta, args.out)
    if problems:
        print(f"the controller logged {len(problems)} error line(s), e.g.: {problems[0]}", file=sys.stderr)
    return 0


# --- reporting -------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _ratio(a: Any, b: Any) -> str:
    try:
        ratio = a / b
    except (TypeError, ZeroDivisionError):
        return "-"
    return "-" if math.isnan(ratio) else f"{ratio:.3f}"


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def report_capacity(result: dict[str, Any], meta: dict[str, Any], folder: Path) -> None:
    summary, memory, trials = result["summary"], result["memory"], result["trials"]
    systems = [s for s in SYSTEMS if s in summary]
    rows = [
        ("max zero-failure cps", "max_cps", ".2f"),
        ("peak concurrent calls at that rate", "peak_concurrent", "d"),
        ("app CPU ms per call (controller / bare app)", "app_cpu_ms_per_call", ".1f"),
        ("Asterisk CPU ms per call", "asterisk_cpu_ms_per_call", ".1f"),
        ("Redis CPU ms per call", "redis_cpu_ms_per_call", ".1f"),
        ("Redis commands per call (Lua scripts' included)", "redis_commands_per_call", ".0f"),
        ("machine busy at that rate, % of all cores", "machine_busy_pct", ".0f"),
        ("caller INVITE -> operator INVITE p50 ms", "assign_p50_ms", ".0f"),
        ("caller INVITE -> operator INVITE p99 ms", "assign_p99_ms", ".0f"),
    ]
    lines = [f"| | {' | '.join(systems)} | {' / '.join(systems)} |", "|---|" + "---:|" * (len(systems) + 1)]
    for title, key, spec in rows:
        values = [summary[s][key] for s in systems]
        ratio = _ratio(values[0], values[1]) if len(values) == 2 else "-"
        lines.append(f"| {title} | {' | '.join(_fmt(v, spec) for v in values)} | {ratio} |")
    print("\nCapacity (B3): zero-failure call rate through the full path, same Asterisk, same run")
    print("\n".join(lines))
    for s in systems:
        notes = []
        if summary[s]["operator_limited"]:
            notes.append(f"reached the operators' ceiling ({result['ceiling_cps']} cps): add --operators")
        if summary[s]["stopped_by_budget"]:
            notes.append("search stopped by the time budget before converging")
        if summary[s]["lowest_failing_cps"] is not None:
            notes.append(f"lowest failing rate {summary[s]['lowest_failing_cps']} cps")
        if notes:
            print(f"  {s}: {'; '.join(notes)}")
    if "ratio_cps" in summary:
        print(
            f"Unico / bare: {_fmt(summary['ratio_cps'], '.3f')} (target >= 0.9); controller CPU = "
            f"{_fmt(summary['controller_cpu_share_of_asterisk'], '.0%')} of Asterisk's per call (target <= 25%)"
        )
    if memory:
        print(
            f"memory per waiting call ({memory['waiting_calls']} callers): controller "
            f"{memory['controller_kb_per_waiting_call']} KB, Asterisk {memory['asterisk_kb_per_waiting_call']} KB"
        )
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "benchmark": "capacity",
        **meta,
        "summary": summary,
        "memory": memory,
        "ceiling_cps": result["ceiling_cps"],
        "trials": trials,
        "warmups": result["warmups"],
    }
    paths = [folder / "capacity.json", folder / "capacity.csv"]
    paths[0].write_text(json.dumps(body, indent=2, default=str) + "\n")
    with paths[1].open("w", newline="") as handle:
        fields = [k for k in trials[0] if k != "failures"] + ["failures"] if trials else ["system"]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for trial in trials:
            writer.writerow({**trial, "failures": json.dumps(trial["failures"])})
    chart = capacity_chart(folder / "capacity.png", trials, systems, meta["machine"])
    for path in [*paths, *([chart] if chart else [])]:
        print(f"wrote {_shown(path)}")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def capacity_chart(path: Path, trials: list[dict[str, Any]], systems: list[str], host: dict[str, Any]) -> Path | None:
    """Share of calls completed and caller INVITE -> operator INVITE p99 against the offered rate;
    a failing trial (any call not completed) is drawn with a cross."""
    plt = _pyplot()
    if plt is None or not trials:
        return None
    figure, (share, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    for system, marker in zip(systems, "os", strict=False):
        rows = sorted((t for t in trials if t["system"] == system), key=lambda t: t["rate"])
        rates = [t["rate"] for t in rows]
        (line,) = share.plot(rates, [100 * t["completed"] / t["calls"] for t in rows], marker=marker, label=system)
        latency.plot(rates, [t["assign_p99_ms"] for t in rows], marker=marker, color=line.get_color(), label=system)
        failed = [t for t in rows if not t["passed"]]
        share.scatter(
            [t["rate"] for t in failed],
            [100 * t["completed"] / t["calls"] for t in failed],
            marker="x",
            s=80,
            color="red",
            zorder=3,
        )
        latency.scatter(
            [t["rate"] for t in failed], [t["assign_p99_ms"] for t in failed], marker="x", s=80, color="red", zorder=3
        )
    share.set_xlabel("offered calls per second")
    share.set_ylabel("calls completed end to end (%)")
    share.legend()
    share.grid(True, alpha=0.3)
    latency.set_yscale("log")
    latency.set_xlabel("offered calls per second")
    latency.set_ylabel("caller INVITE -> operator INVITE p99 (ms, log)")
    latency.legend()
    latency.grid(True, which="both", alpha=0.3)
    figure.suptitle(f"Capacity: Unico vs bare Stasis app ({host['cpu']}, {host['cores']} cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def report_soak(result: dict[str, Any], meta: dict[str, Any], folder: Path) -> None:
    summary, per_minute = result["summary"], result["per_minute"]
    print(
        f"\nSoak (B12): {summary['minutes']:g} min at {summary['rate_cps']} cps, {summary['calls']} calls, "
        f"{summary['failed']} failed {summary['failures'] or ''}"
    )
    print("| minute | calls | failed | assign p50 ms | assign p99 ms | controller MB | Asterisk MB | writes waiting |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in per_minute:
        print(
            f"| {row['minute']} | {row['calls']} | {row['failed']} | {_fmt(row['assign_p50_ms'], '.0f')} | "
            f"{_fmt(row['assign_p99_ms'], '.0f')} | {_fmt(row['controller_rss_mb'], '.1f')} | "
            f"{_fmt(row['asterisk_rss_mb'], '.1f')} | {_fmt(row.get('records_pending', math.nan), '.0f')} |"
        )
    w = summary["window_minutes"]
    print(
        f"memory growth (first {w} min vs last {w} min): controller {_fmt(summary['controller_rss_growth_pct'])} %, "
        f"Asterisk {_fmt(summary['asterisk_rss_growth_pct'])} % (target < 5 %); controller heap "
        f"{_fmt(summary.get('controller_anon_growth_pct', math.nan))} %, Python blocks "
        f"{_fmt(summary.get('python_blocks_growth_pct', math.nan))} %"
    )
    print(
        f"assignment p99 drift: {_fmt(summary['assign_p99_first_ms'], '.0f')} -> "
        f"{_fmt(summary['assign_p99_last_ms'], '.0f')} ms ({_fmt(summary['assign_p99_drift_pct'])} %, "
        f"target within 10 %); controller CPU {_fmt(summary['controller_cpu_ms_per_call'], '.1f')} ms per call"
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "soak.json", folder / "soak.csv"]
    paths[0].write_text(json.dumps({"benchmark": "soak", **meta, **result}, indent=2, default=str) + "\n")
    with paths[1].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(per_minute[0]) if per_minute else ["minute"])
        writer.writeheader()
        writer.writerows(per_minute)
    chart = soak_chart(folder / "soak.png", result, meta["machine"])
    for path in [*paths, *([chart] if chart else [])]:
        print(f"wrote {_shown(path)}")


def soak_chart(path: Path, result: dict[str, Any], host: dict[str, Any]) -> Path | None:
    plt = _pyplot()
    if plt is None or not result["per_minute"]:
        return None
    samples, per_minute = result["samples"], result["per_minute"]
    figure, (memory, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    minutes = [s["at"] / 60 for s in samples]
    memory.plot(minutes, [s["controller_rss_mb"] for s in samples], label="controller")
    memory.plot(minutes, [s["asterisk_rss_mb"] for s in samples], label="Asterisk")
    memory.set_xlabel("minute")
    memory.set_ylabel("RSS (MB)")
    memory.legend()
    memory.grid(True, alpha=0.3)
    rows = [r for r in per_minute if not math.isnan(r["assign_p99_ms"])]
    latency.plot([r["minute"] for r in rows], [r["assign_p99_ms"] for r in rows], marker="o", label="p99")
    latency.plot([r["minute"] for r in rows], [r["assign_p50_ms"] for r in rows], marker=".", label="p50")
    latency.set_xlabel("minute of arrival")
    latency.set_ylabel("caller INVITE -> operator INVITE (ms)")
    latency.legend()
    latency.grid(True, alpha=0.3)
    summary = result["summary"]
    figure.suptitle(
        f"Soak: {summary['minutes']:g} min at {summary['rate_cps']} cps ({host['cpu']}, {host['cores']} cores)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


if __name__ == "__main__":
    sys.exit(main())
