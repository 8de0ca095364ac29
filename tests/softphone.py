"""Operator softphones for the end-to-end tests, played by sipp (Debian ``sip-tester``).

A :class:`Softphone` is one operator's SIP phone against the real Asterisk ``test`` instance: it
registers as ``<op_id>`` with digest authentication, then a long-running sipp UAS answers,
ignores or rejects the calls Asterisk sends it::

    phone = Softphone("op1001", passwords["op1001"], port=settings.sip_port)
    await phone.register()
    await phone.start("answer", ring_ms=500)        # or "no_answer", "busy"
    ... originate PJSIP/op1001, or let the ACD route a call ...
    (invite,) = await phone.wait_invites(1, timeout=5)
    await phone.wait_count("REMOTE_BYE", 1)
    await phone.close()                             # stop the UAS, unregister

Theory of operation (verified against Asterisk 22.10 and SIPp 3.6.1):

- The operator endpoints have ``rewrite_contact = yes``, so Asterisk stores the *source* address of
  the REGISTER as the contact, whatever its Contact header says. The REGISTER is therefore sent
  from the UAS port itself, by a short sipp run while the UAS is not bound; :meth:`register` stops
  a running UAS for that moment and starts it again.
- Asterisk qualifies a new contact at once (``qualify_frequency``), sometimes before, sometimes
  after its 200 OK to the REGISTER: the register run answers that OPTIONS (``-aa``) and lingers
  briefly for it. The UAS answers the later ones (every 30 s, ``-aa``). An OPTIONS that finds
  nothing listening marks the contact Unreachable and the ARI endpoint ``offline`` until the next
  good one, 30 s later: keep the gap between :meth:`stop` and :meth:`start` short.
- :meth:`unregister` sends ``Contact: *`` with ``Expires: 0`` (RFC 3261 10.2.2): a star is not
  rewritten, so it can come from any port and removes the binding whatever address was stored.
- The UAS scenario logs one line per event (``INVITE``, ``ANSWERED``, ``CANCELLED``, ...) with
  sipp's ``<log>`` action, stamped by sipp's ``[timestamp]`` (date, time, epoch): the epoch becomes
  :attr:`Invite.at`. The file is read incrementally, so counters work while sipp runs.
- sipp's soft exit (SIGUSR1) waits for calls in progress, its hard one (SIGTERM) drops them
  silently. :meth:`stop` therefore ends what sipp left behind itself, from the UAS port once sipp
  is gone: BYE to answered calls, 480 to ringing ones; Asterisk keeps no channel.

The password travels only as sipp's ``-ap`` argument; it is masked in the saved command line and
never written to a scenario. Artifacts (scenarios, message traces, sipp logs) go to
``tests/artifacts/softphone/<op_id>-<n>/``; a run's files are removed after it ended cleanly
unless ``keep_artifacts=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import SecretStr

from tests.sipp import SippError, free_media_port, free_udp_port, udp_port_bound

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "softphone"
Mode = Literal["answer", "no_answer", "busy"]
MODES: tuple[Mode, ...] = ("answer", "no_answer", "busy")
# Asterisk's qualify OPTIONS to a new contact can trail the 200 OK to the REGISTER by a few ms.
REGISTER_LINGER_MS = 300
# Final responses to a REGISTER we report as RegistrationError.status.
REGISTER_REJECTS = (401, 403, 404, 407, 423, 480, 500, 503)
# sipp exit codes for "no failed call": 0 all calls succeeded, 97 exit on internal command,
# 99 normal exit without calls processed (sipp -h, "Exit codes").
CLEAN_EXIT = (0, 97, 99)
# Events that end a call; DROPPED is stop() ending a call sipp left behind.
ENDINGS = frozenset({"REMOTE_BYE", "LOCAL_BYE", "CANCELLED", "BUSY", "DROPPED"})
_EVENT_LINE = re.compile(r"^\S+\t\S+\t(?P<epoch>\d+\.\d+) (?P<kind>[A-Z_]+)\|(?P<rest>.*)$")
_DISPLAY = re.compile(r'^\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^<]*?))\s*<(?P<uri>[^>]*)>')
_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)


class SoftphoneError(SippError):
    """sipp is missing, would not start, or died; the message includes :meth:`Softphone.explain`."""


class RegistrationError(SoftphoneError):
    """Asterisk did not accept the REGISTER: ``status`` is its last final response (None: no answer)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class Invite(NamedTuple):
    """One INVITE the softphone received; ``at`` is the time.time() of its receipt."""

    at: float
    call_id: str
    from_header: str  # e.g. '"Mario Rossi" <sip:3331234567@127.0.0.1>;tag=...'
    to_header: str

    @property
    def caller_name(self) -> str | None:
        match = _DISPLAY.match(self.from_header)
        if match is None:
            return None
        name = match["quoted"] if match["quoted"] is not None else match["bare"]
        return name or None

    @property
    def caller_number(self) -> str | None:
        """The user part of the From URI (Asterisk puts the caller id number there)."""
        match = _DISPLAY.match(self.from_header)
        uri = match["uri"] if match else self.from_header.strip()
        user = re.match(r"^sips?:([^@;>]+)@", uri)
        return user[1] if user else None


@dataclass(frozen=True, kw_only=True)
class Event:
    """One event of the UAS: ``kind`` is INVITE, ANSWERED, CANCELLED, REMOTE_BYE, LOCAL_BYE, BUSY
    or DROPPED; ``detail`` holds what :meth:`Softphone.stop` needs to end the call itself."""

    at: float
    kind: str
    call_id: str
    detail: tuple[str, ...] = ()


@dataclass
class _Run:
    """One sipp process and its files, all named ``<name>.*`` in the softphone's folder."""

    name: str
    folder: Path
    process: asyncio.subprocess.Process | None = None
    returncode: int | None = None
    log_offset: int = 0
    partial: str = ""

    def path(self, suffix: str) -> Path:
        return self.folder / f"{self.name}.{suffix}"

    def read_new_lines(self) -> list[str]:
        """Complete lines appended to the events log since the last call (sipp flushes each)."""
        try:
            with self.path("events.log").open("rb") as handle:
                handle.seek(self.log_offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self.log_offset += len(data)
        lines = (self.partial + data.decode(errors="replace")).split("\n")
        self.partial = lines.pop()
        return [line for line in lines if line.strip()]

    def remove_files(self) -> None:
        for path in self.folder.glob(f"{self.name}.*"):
            path.unlink(missing_ok=True)


@dataclass
class Softphone:
    """One operator's SIP softphone: :meth:`register`, :meth:`start` a mode, :meth:`stop`, :meth:`close`.

    ``port`` is Asterisk's SIP port (tests/e2e/rig.py ``SIP_PORT``); ``uas_port`` and
    ``media_port`` are picked free unless given. Counters and :attr:`invites` cover every UAS run
    of this softphone (they survive stop/start). Use it as ``async with Softphone(...) as phone:``
    to have it closed whatever happens.
    """

    op_id: str
    password: SecretStr | str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 5060
    expires: int = 3600  # Asterisk's aor minimum_expiration is 60 s (423 below it)
    keep_artifacts: bool = False
    artifacts_root: Path = ARTIFACTS
    uas_port: int = field(default_factory=free_udp_port)
    media_port: int = field(default_factory=free_media_port)
    #: the softphone's own address (SIP and RTP); e.g. "127.0.0.2" for a phone outside the
    #: operators' permitted networks (any 127.x.y.z works on Linux without an alias)
    local_ip: str = "127.0.0.1"
    events: list[Event] = field(default_factory=list, init=False)
    registered: bool = field(default=False, init=False)
    mode: Mode | None = field(default=None, init=False)
    _ring_ms: int = field(default=0, init=False, repr=False)
    _talk_ms: int | None = field(default=None, init=False, repr=False)
    _uas: _Run | None = field(default=None, init=False, repr=False)
    _runs: list[_Run] = field(default_factory=list, init=False, repr=False)
    _folder: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", self.op_id):
            raise SoftphoneError(f"not a usable SIP user name: {self.op_id!r}")

    @property
    def contact(self) -> str:
        """The contact this softphone registers (and the address Asterisk sends INVITEs to)."""
        return f"sip:{self.op_id}@{self.local_ip}:{self.uas_port}"

    @property
    def artifacts(self) -> Path | None:
        """This softphone's artifacts folder, if it has one right now."""
        return self._folder if self._folder is not None and self._folder.is_dir() else None

    # --- observations ---------------------------------------------------------------------------

    def poll(self) -> list[Event]:
        """Read what the running UAS logged since the last poll; return all events so far."""
        if self._uas is not None:
            self._collect(self._uas)
        return self.events

    def count(self, kind: str) -> int:
        return sum(1 for event in self.poll() if event.kind == kind)

    @property
    def invites(self) -> list[Invite]:
        """Every INVITE received, oldest first, as (time.time(), Call-ID, From, To)."""
        return [
            Invite(event.at, event.call_id, from_header=event.detail[-1], to_header=event.detail[-2])
            for event in self.poll()
            if event.kind == "INVITE"
        ]

    @property
    def answered(self) -> int:
        """Calls answered: 200 OK sent and ACKed."""
        return self.count("ANSWERED")

    @property
    def cancelled(self) -> int:
        """Calls Asterisk cancelled while ringing (200 to the CANCEL, 487 to the INVITE, ACK)."""
        return self.count("CANCELLED")

    @property
    def remote_byes(self) -> int:
        """Answered calls Asterisk hung up (BYE received and answered 200)."""
        return self.count("REMOTE_BYE")

    @property
    def local_byes(self) -> int:
        """Answered calls the operator hung up after ``talk_ms`` (our BYE got 200)."""
        return self.count("LOCAL_BYE")

    @property
    def rejected(self) -> int:
        """Calls answered 486 Busy Here (``busy`` mode) and ACKed."""
        return self.count("BUSY")

    @property
    def calls_in_progress(self) -> list[str]:
        """Call-IDs of the calls received and not ended yet (ringing or answered)."""
        ended = {event.call_id for event in self.poll() if event.kind in ENDINGS}
        return [event.call_id for event in self.events if event.kind == "INVITE" and event.call_id not in ended]

    async def wait_invites(self, n: int, timeout: float = 10.0) -> list[Invite]:
        """Wait until at least ``n`` INVITEs arrived; return them all. Raises AssertionError.

        Example::

            first, second = await phone.wait_invites(2, timeout=5)
            assert second.at - first.at >= 2.0        # the ACD waited before ringing again
        """
        await self.wait_count("INVITE", n, timeout)
        return self.invites

    async def wait_count(self, kind: str, n: int = 1, timeout: float = 10.0) -> int:
        """Wait until at least ``n`` events of ``kind`` (e.g. "REMOTE_BYE") were logged."""
        deadline = time.monotonic() + timeout
        while (have := self.count(kind)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.op_id}: {have} {kind} after {timeout}s, wanted {n}\n{self.explain()}")
            if self._uas is not None and self._uas.process is not None and self._uas.process.returncode is not None:
                raise AssertionError(f"{self.op_id}: the UAS sipp exited\n{self.explain()}")
            await asyncio.sleep(0.05)
        return have

    def explain(self) -> str:
        """A readable summary for assertion messages: state, events and the tails of sipp's files."""
        self.poll()
        parts = [
            f"softphone {self.op_id}: mode={self.mode}, registered={self.registered}, contact={self.contact}, "
            f"media_port={self.media_port}, invites={self.count('INVITE')}, answered={self.answered}, "
            f"cancelled={self.cancelled}, remote_byes={self.remote_byes}, local_byes={self.local_byes}, "
            f"rejected={self.rejected}, dropped={self.count('DROPPED')}, artifacts={self._folder}",
            "events: " + ", ".join(f"{event.kind} {event.call_id}" for event in self.events[-20:]),
        ]
        for run in self._runs[-3:]:
            if run.process is None:
                state = "not started"
            else:
                code = run.process.returncode
                state = "running" if code is None else f"exit {code}"
            parts.append(f"--- sipp {run.name} ({state}) ---")
            for suffix, limit in (("stderr.txt", 2000), ("errors.log", 2000), ("messages.log", 4000)):
                path = run.path(suffix)
                if path.is_file() and (text := path.read_text(errors="replace").strip()):
                    parts.append(f"{run.name}.{suffix}:\n{text[-limit:]}")
        return "\n".join(parts)

    # --- registration ---------------------------------------------------------------------------

    async def register(self, expires: int | None = None, timeout: float = 5.0) -> None:
        """REGISTER :attr:`contact` for ``expires`` seconds, answering the digest challenge.

        Raises :class:`RegistrationError` unless Asterisk answers 200. A running UAS is stopped
        for the moment the REGISTER is sent from its port (its calls are ended, see :meth:`stop`),
        then started again in the same mode.
        """
        resume = self.mode if self._uas is not None else None
        if resume is not None:
            await self.stop()
        try:
            await self._register(self.expires if expires is None else expires, self.uas_port, timeout)
            self.registered = True
        finally:
            if resume is not None:
                await self.start(resume, ring_ms=self._ring_ms, talk_ms=self._talk_ms)

    async def unregister(self, timeout: float = 5.0) -> None:
        """Remove the registration (``Contact: *``, ``Expires: 0``); a running UAS keeps running."""
        await self._register(0, free_udp_port(self.local_ip), timeout)
        self.registered = False

    async def _register(self, expires: int, local_port: int, timeout: float) -> None:
        run = self._new_run("register" if expires else "unregister", self._register_xml(expires))
        password = self.password.get_secret_value() if isinstance(self.password, SecretStr) else self.password
        command = [
            _sipp(),
            f"{self.host}:{self.port}",
            "-sf",
            str(run.path("xml")),
            "-m",
            "1",
            "-i",
            self.local_ip,
            "-p",
            str(local_port),
            "-mp",
            str(free_media_port()),
            "-au",
            self.op_id,
            "-ap",
            password,
            "-aa",  # 200 OK to the qualify OPTIONS that may come while we are still here
            "-nostdin",
            "-timeout",
            f"{int(timeout) + 1}s",
            "-timeout_error",
            *_trace_options(run),
        ]
        await _spawn(run, command)
        assert run.process is not None
        try:
            await asyncio.wait_for(run.process.wait(), timeout + 5)
        except TimeoutError:
            run.process.kill()
            await run.process.wait()
        run.returncode = run.process.returncode
        statuses = [int(m[1]) for line in run.read_new_lines() if (m := re.search(r" FINAL\|(\d+)", line))]
        status = statuses[-1] if statuses else None
        if status is not None and run.returncode == 0:
            self._finish(run)  # went as scripted; a rejection is told in full below
        if status == 200 and run.returncode == 0:
            return
        what = "REGISTER" if expires else "REGISTER (Expires: 0)"
        raise RegistrationError(
            f"{self.op_id}: {what} to {self.host}:{self.port} got {status or 'no final answer'} "
            f"(sipp exit {run.returncode})\n{self.explain()}",
            status,
        )

    def _register_xml(self, expires: int) -> str:
        contact = "*" if expires == 0 else f"<{self.contact}>"
        uri = f"sip:{self.host}:{self.port}"
        aor = f"<sip:{self.op_id}@{self.host}>"
        headers = (
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            f"From: {aor};tag=[pid]SIPpTag00[call_number]\n"
            f"To: {aor}\n"
            "Call-ID: [call_id]\n"
        )
        tail = (
            f"Contact: {contact}\nExpires: {expires}\nMax-Forwards: 70\nUser-Agent: sipp-softphone\nContent-Length: 0\n"
        )

        def rejects(*skip: int) -> str:
            return "\n".join(
                f'  <recv response="{code}" optional="true" next="rejected">'
                f'<action><log message="[timestamp] FINAL|{code}"/></action></recv>'
                for code in REGISTER_REJECTS
                if code not in skip
            )

        linger = REGISTER_LINGER_MS if expires else 0
        return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="softphone {self.op_id} register expires={expires}">
  <send retrans="500"><![CDATA[
REGISTER {uri} SIP/2.0
{headers}CSeq: 1 REGISTER
{tail}
]]></send>
  <recv response="200" optional="true" next="registered"><action><log message="[timestamp] FINAL|200"/></action></recv>
{rejects(401)}
  <recv response="401" auth="true"/>
  <!-- [authentication] uses sipp's -au/-ap: the password is never written to this file -->
  <send retrans="500"><![CDATA[
REGISTER {uri} SIP/2.0
{headers}CSeq: 2 REGISTER
[authentication]
{tail}
]]></send>
{rejects()}
  <recv response="200"><action><log message="[timestamp] FINAL|200"/></action></recv>
  <label id="registered"/>
  <!-- answer Asterisk's first qualify OPTIONS (-aa) from this port, the contact's -->
  <pause milliseconds="{linger}"/>
  <label id="rejected"/>
</scenario>
"""

    # --- the UAS --------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._uas is not None and self._uas.process is not None and self._uas.process.returncode is None

    async def start(self, mode: Mode = "answer", *, ring_ms: int = 0, talk_ms: int | None = None) -> None:
        """Start the UAS answering calls in ``mode``; to change mode, :meth:`stop` first.

        - ``answer``: 180 Ringing, ``ring_ms`` later 200 OK (SDP alaw/ulaw); then wait for
          Asterisk's BYE, or hang up ``talk_ms`` after the ACK. A CANCEL while ringing is
          answered 200 + 487 (counted in :attr:`cancelled`).
        - ``no_answer``: 180 Ringing until Asterisk cancels (200 to CANCEL, 487, ACK).
        - ``busy``: 486 Busy Here.

        Returns once sipp holds the UAS port, so an INVITE sent right after finds it.
        """
        if mode not in MODES:
            raise SoftphoneError(f"unknown mode {mode!r}, expected one of {MODES}")
        if self._uas is not None:
            raise SoftphoneError(f"{self.op_id}: already running in mode {self.mode!r}; stop() first")
        run = self._new_run(f"uas-{mode}", self._uas_xml(mode, ring_ms, talk_ms))
        command = [
            _sipp(),
            "-sf",
            str(run.path("xml")),
            "-i",
            self.local_ip,
            "-p",
            str(self.uas_port),
            "-mp",
            str(self.media_port),
            "-aa",  # 200 OK to Asterisk's qualify OPTIONS
            "-nostdin",
            *_trace_options(run),
        ]
        await _spawn(run, command)
        self._uas, self.mode, self._ring_ms, self._talk_ms = run, mode, ring_ms, talk_ms
        assert run.process is not None
        deadline = time.monotonic() + 5
        while run.process.returncode is None and not udp_port_bound(self.uas_port, self.local_ip):
            if time.monotonic() > deadline:
                await self.stop()
                raise SoftphoneError(f"{self.op_id}: sipp did not bind port {self.uas_port}\n{self.explain()}")
            await asyncio.sleep(0.01)
        if run.process.returncode is not None:  # e.g. the port was taken
            run.returncode = run.process.returncode
            self._uas, self.mode = None, None
            raise SoftphoneError(f"{self.op_id}: sipp UAS exited at start ({run.returncode})\n{self.explain()}")

    async def stop(self) -> int | None:
        """Stop the UAS; return sipp's exit code (None if it was not running).

        Calls still in progress are ended from the UAS port once sipp is gone (BYE if answered,
        480 if ringing) and logged as DROPPED. The run's artifacts are kept if sipp failed or a
        call could not be ended.
        """
        run = self._uas
        if run is None or run.process is None:
            return None
        if run.process.returncode is None:
            # SIGUSR1 is sipp's soft exit: at once with no call in progress, else when they end.
            # SIGTERM exits at once, flushing the logs but dropping the calls without a word.
            for sig, grace in ((signal.SIGUSR1, 0.3), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                run.process.send_signal(sig)
                try:
                    await asyncio.wait_for(run.process.wait(), grace)
                    break
                except TimeoutError:
                    continue
        run.returncode = run.process.returncode
        self._collect(run)
        self._uas, self.mode = None, None
        left = self.calls_in_progress
        if left:
            invites = {e.call_id: e for e in self.events if e.kind == "INVITE" and e.call_id in left}
            answers = {e.call_id: e for e in self.events if e.kind == "ANSWERED" and e.call_id in left}
            ended = await asyncio.to_thread(self._end_calls, invites, answers)
            self.events.extend(Event(at=time.time(), kind="DROPPED", call_id=call_id) for call_id in ended)
        if run.returncode in CLEAN_EXIT and not self.calls_in_progress:
            self._finish(run)
        return run.returncode

    async def close(self) -> None:
        """Stop the UAS and, if registered, unregister."""
        await self.stop()
        if self.registered:
            await self.unregister()

    async def __aenter__(self) -> Softphone:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- internals ------------------------------------------------------------------------------

    def _new_run(self, kind: str, scenario: str) -> _Run:
        """The next run, its scenario written to ``<folder>/<kind>-<n>.xml``."""
        if self._folder is None or not self._folder.is_dir():
            self._folder = _claim_folder(self.artifacts_root, self.op_id)
        run = _Run(f"{kind}-{len(self._runs) + 1}", self._folder)
        run.path("xml").write_text(scenario)
        self._runs.append(run)
        return run

    def _collect(self, run: _Run) -> None:
        for line in run.read_new_lines():
            match = _EVENT_LINE.match(line)
            if match is None:
                continue
            call_id, *detail = match["rest"].split("|")
            if match["kind"] == "INVITE":  # tag, cseq, via, to, from; a From may hold a '|'
                detail = [*detail[:4], "|".join(detail[4:])]
            self.events.append(
                Event(at=float(match["epoch"]), kind=match["kind"], call_id=call_id, detail=tuple(detail))
            )

    def _finish(self, run: _Run) -> None:
        """Drop a clean run's files unless asked to keep them; the folder goes when empty."""
        if self.keep_artifacts or self._folder is None:
            return
        run.remove_files()
        with contextlib.suppress(OSError):  # not empty: an earlier run failed
            self._folder.rmdir()

    def _end_calls(self, invites: dict[str, Event], answers: dict[str, Event]) -> list[str]:
        """End the calls sipp left: BYE to answered ones, 480 to ringing ones. Blocking (a thread).

        Sent from the UAS port (now free) so the answers come back here: the 200 to our BYE,
        Asterisk's ACK to our 480 (RFC 3261 17.2.1). Retransmitted every 0.5 s for 2 s.
        """
        pending: dict[str, bytes] = {}
        for call_id, invite in invites.items():
            tag, cseq, via, to, from_ = invite.detail
            answer = answers.get(call_id)
            if answer is not None:
                message = (
                    f"BYE {answer.detail[0]} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {self.local_ip}:{self.uas_port};rport;branch=z9hG4bK-{secrets.token_hex(8)}\r\n"
                    f"From: {to};tag={tag}\r\nTo: {from_}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\n"
                )
            else:
                message = (
                    f"SIP/2.0 480 Temporarily Unavailable\r\nVia: {via}\r\nFrom: {from_}\r\nTo: {to};tag={tag}\r\n"
                    f"Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n"
                )
            message += f"Contact: <{self.contact}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            pending[call_id] = message.encode()
        ended: list[str] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((self.local_ip, self.uas_port))
            except OSError:
                sock.bind((self.local_ip, 0))  # taken again: BYEs still get their 200 (rport)
            deadline = time.monotonic() + 2.0
            resend = 0.0
            while pending and (now := time.monotonic()) < deadline:
                if now >= resend:
                    for datagram in pending.values():
                        sock.sendto(datagram, (self.host, self.port))
                    resend = now + 0.5
                sock.settimeout(max(0.01, min(resend, deadline) - now))
                try:
                    data = sock.recv(65535).decode(errors="replace")
                except TimeoutError:
                    continue
                found = _CALL_ID.search(data)
                if found is None or found[1] not in pending:
                    continue
                first_line = data.split("\r\n", 1)[0]
                if first_line.startswith(("SIP/2.0 200", "SIP/2.0 481", "ACK ")):
                    ended.append(found[1])
                    del pending[found[1]]
        return ended

    def _uas_xml(self, mode: Mode, ring_ms: int, talk_ms: int | None) -> str:
        contact = f"Contact: <sip:{self.op_id}@[local_ip]:[local_port]>"
        # replies echo the request's headers; to the INVITE we add our To tag (it has none)
        reply = "[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\n"
        tagged = f"[last_Via:]\n[last_From:]\n[last_To:];tag={_TAG}\n[last_Call-ID:]\n"
        sdp = (
            "v=0\n"
            "o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]\n"
            "s=-\n"
            "c=IN IP[media_ip_type] [media_ip]\n"
            "t=0 0\n"
            "m=audio [media_port] RTP/AVP 8 0 101\n"
            "a=rtpmap:8 PCMA/8000\n"
            "a=rtpmap:0 PCMU/8000\n"
            "a=rtpmap:101 telephone-event/8000\n"
            "a=fmtp:101 0-16\n"
            "a=ptime:20\n"
            "a=sendrecv\n"
        )
        sdp_headers = "Content-Type: application/sdp\nContent-Length: [len]\n\n" + sdp
        ringing = _send(f"SIP/2.0 180 Ringing\n{tagged}[last_CSeq:]\n{contact}\nContent-Length: 0\n")
        busy = _send(f"SIP/2.0 486 Busy Here\n{tagged}[last_CSeq:]\n{contact}\nContent-Length: 0\n", retrans=True)
        ok_invite = _send(f"SIP/2.0 200 OK\n{tagged}[last_CSeq:]\n{contact}\n{sdp_headers}", retrans=True)
        ok_reinvite = _send(f"SIP/2.0 200 OK\n{reply}{contact}\n{sdp_headers}", retrans=True)
        ok_request = _send(f"SIP/2.0 200 OK\n{reply}{contact}\nContent-Length: 0\n")
        ok_cancel = _send(f"SIP/2.0 200 OK\n{reply}Content-Length: 0\n")
        terminated = _send(
            f"SIP/2.0 487 Request Terminated\n{tagged}CSeq: [$invite_cseq] INVITE\nContent-Length: 0\n", retrans=True
        )
        bye = _send(
            "BYE [next_url] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            f"From: [$invite_to];tag={_TAG}\n"
            "To: [$invite_from]\n"
            "Call-ID: [call_id]\n"
            "CSeq: 1 BYE\n"
            f"{contact}\n"
            "Max-Forwards: 70\n"
            "Content-Length: 0\n",
            retrans=True,
        )
        if mode == "busy":
            body = f"""{busy}
  <recv request="ACK">{_log("BUSY")}</recv>
  <nop next="end"/>"""
        elif mode == "no_answer":
            body = f"""{ringing}
  <!-- ring until Asterisk gives up (originate timeout, queue ring timeout) -->
  <recv request="CANCEL" next="cancelled"/>"""
        else:
            ring = ""
            if ring_ms > 0:
                ring = f'  <recv request="CANCEL" timeout="{ring_ms}" ontimeout="answer" next="cancelled"/>'
            # sipp runs the timeout of the recv it waits at, the first of a group of optional ones
            hold = f' timeout="{talk_ms}" ontimeout="local_bye"' if talk_ms is not None else ""
            body = f"""{ringing}
{ring}
  <label id="answer"/>
{ok_invite}
  <label id="wait_ack"/>
  <!-- a CANCEL crossing our 200 OK changes nothing (RFC 3261 9.2): 200 to it, then the ACK -->
  <recv request="CANCEL" optional="true" next="late_cancel"/>
  <recv request="ACK">{_log("ANSWERED", "[next_url]")}</recv>
  <label id="talk"/>
  <!-- Asterisk may update the connected line (UPDATE or re-INVITE) or send INFO mid-call -->
  <recv request="UPDATE" optional="true" next="in_dialog"{hold}/>
  <recv request="INFO" optional="true" next="in_dialog"{hold}/>
  <recv request="INVITE" optional="true" next="reinvite"{hold}/>
  <recv request="BYE" next="remote_bye"{hold}/>

  <label id="local_bye"/>
{bye}
  <recv response="200">{_log("LOCAL_BYE")}</recv>
  <nop next="end"/>

  <label id="remote_bye"/>
{ok_request}
  <nop>{_log("REMOTE_BYE")}</nop>
  <nop next="end"/>

  <label id="in_dialog"/>
{ok_request}
  <nop next="talk"/>

  <label id="reinvite"/>
{ok_reinvite}
  <recv request="ACK"/>
  <nop next="talk"/>

  <label id="late_cancel"/>
{ok_cancel}
  <nop next="wait_ack"/>"""
        return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="softphone {self.op_id} {mode}">
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp="[^ ].*" search_in="hdr" header="From:" assign_to="invite_from"/>
      <ereg regexp="[^ ].*" search_in="hdr" header="To:" assign_to="invite_to"/>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>
      <ereg regexp="[^ ].*" search_in="hdr" header="Via:" assign_to="invite_via"/>
      {_log_line("INVITE", _TAG, "[$invite_cseq]", "[$invite_via]", "[$invite_to]", "[$invite_from]")}
    </action>
  </recv>
{body}

  <label id="cancelled"/>
{ok_cancel}
{terminated}
  <recv request="ACK">{_log("CANCELLED")}</recv>

  <label id="end"/>
</scenario>
"""


# Our To tag in every dialog; stop() needs it to end a call sipp left behind.
_TAG = "[pid]SIPpTag01[call_number]"


def _send(message: str, *, retrans: bool = False) -> str:
    attr = ' retrans="500"' if retrans else ""
    return f"  <send{attr}><![CDATA[\n{message}\n]]></send>"


def _log(kind: str, *fields: str) -> str:
    """A <log> action: ``<date>\\t<time>\\t<epoch> KIND|<call id>|fields...`` (see _EVENT_LINE)."""
    return f"<action>{_log_line(kind, *fields)}</action>"


def _log_line(kind: str, *fields: str) -> str:
    return f'<log message="[timestamp] {"|".join((kind, "[call_id]", *fields))}"/>'


def _sipp() -> str:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SoftphoneError("sipp not found: apt-get install sip-tester")
    return sipp


def _claim_folder(root: Path, op_id: str) -> Path:
    """A new ``<root>/<op_id>-<n>``: mkdir is atomic, so parallel sessions never share one."""
    root.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        folder = root / f"{op_id}-{n}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")


def _trace_options(run: _Run) -> list[str]:
    return [
        "-trace_msg",
        "-message_file",
        str(run.path("messages.log")),
        "-trace_logs",
        "-log_file",
        str(run.path("events.log")),
        "-trace_err",
        "-error_file",
        str(run.path("errors.log")),
    ]


async def _spawn(run: _Run, command: list[str]) -> None:
    """Start sipp; its screen goes nowhere (it redraws every second), stderr to a file."""
    masked = [*command]
    if "-ap" in masked:
        masked[masked.index("-ap") + 1] = "****"
    run.path("command.txt").write_text(" ".join(masked) + "\n")
    with run.path("stderr.txt").open("wb") as stderr:
        run.process = await asyncio.create_subprocess_exec(
            *command,
            cwd=run.folder,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )


__all__ = [
    "ARTIFACTS",
    "MODES",
    "Event",
    "Invite",
    "Mode",
    "RegistrationError",
    "Softphone",
    "SoftphoneError",
]
