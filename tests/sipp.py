"""Drive sipp (Debian ``sip-tester``) as a caller for the end-to-end tests.

One :class:`Call` is one sipp process placing one call (``-m 1``) with its own free SIP port
(``-p``) and media port (``-mp``), so calls can run in parallel. Build the call, then run it::

    call = Call("803160", caller="3331234567", port=settings.sip_port)
    call.pause(500).dtmf("12#", mode="info").expect_bye(10_000)
    result = await call.run()
    assert result.answered and result.remote_bye, result.explain()

DTMF (verified against Asterisk 22.10.1): both modes reach ARI as ``ChannelDtmfReceived``
(``duration_ms`` = the digit's duration). Digits can only be sent once the call is answered (the
steps run after 200 OK + ACK). SIP INFO digits are played out by Asterisk one after the other
(duration + ~100 ms each), so a fast burst arrives late: keep ``gap_ms`` >= 100 and pause ~0.5 s
before hanging up. RFC 4733 digits come from pcaps generated per call (see
:meth:`Call.write_dtmf_pcaps` for why sip-tester's ``dtmf_2833_*.pcap`` files are not used).

Artifacts (scenario, SIP message trace, sipp logs) go to ``tests/artifacts/sipp/<call>/`` and are
removed after a call whose sipp exit code is 0 unless ``keep_artifacts=True``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import shutil
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import quoteattr

SIP_TESTER_DIR = Path("/usr/share/sip-tester")
G711A_PCAP = SIP_TESTER_DIR / "g711a.pcap"  # 7 s of A-law speech (RTP payload type 8)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "sipp"
# RFC 4733 event codes. The digits are sent from pcaps generated per call (see write_dtmf_pcap).
RFC4733_EVENTS = {**{d: int(d) for d in "0123456789"}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
DTMF_PAYLOAD_TYPE = 101  # as offered in our SDP (a=rtpmap:101 telephone-event/8000)
# Final responses to the INVITE that end the call without an answer (sipp needs each listed).
REJECT_CODES = (400, 401, 403, 404, 408, 480, 481, 484, 486, 487, 488, 500, 503, 603)
DtmfMode = Literal["info", "rfc2833"]
_sequence = itertools.count(1)


class SippError(Exception):
    """The call cannot be built (e.g. a digit without an RFC 4733 pcap) or sipp is missing."""


@dataclass
class CallResult:
    """What happened on one sipp call."""

    returncode: int
    answered: bool
    final_status: int | None  # the final response to our INVITE (200, 404, ...), None if none
    remote_bye: bool  # Asterisk hung up (we received BYE and answered 200)
    local_bye: bool  # we hung up and Asterisk answered our BYE with 200
    events: list[str]  # our <log> lines, in order: ANSWERED, DTMF 1, REMOTE_BYE, ...
    stdout: str
    stderr: str
    artifacts: Path
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def explain(self) -> str:
        """A readable summary for assertion messages (includes sipp's errors and messages)."""
        parts = [
            f"sipp exit {self.returncode}, answered={self.answered}, final={self.final_status}, "
            f"remote_bye={self.remote_bye}, local_bye={self.local_bye}, "
            f"elapsed={self.elapsed:.2f}s, artifacts={self.artifacts}",
            f"events: {self.events}",
        ]
        if self.stderr.strip():
            parts.append(f"stderr:\n{self.stderr.strip()[-3000:]}")
        for name in ("errors.log", "messages.log"):
            path = self.artifacts / name
            if path.is_file():
                parts.append(f"--- {name} ---\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


@dataclass
class _Step:
    xml: str
    seconds: float = 0.0


@dataclass
class Call:
    """A scripted UAC call. Steps run after the call is answered (200 OK + ACK)."""

    dialled: str
    caller: str = "3331234567"
    host: str = "127.0.0.1"
    port: int = 5060
    caller_name: str | None = None
    answer_timeout_ms: int = 10_000
    #: (user, password): answer the 401 digest challenge, as an operator's softphone calling out
    auth: tuple[str, str] | None = field(default=None, repr=False)
    #: the source address of SIP and RTP; any 127.x.y.z works on Linux without an alias, e.g.
    #: "127.0.0.2" for a peer that is neither the carrier nor an operator's network
    local_ip: str = "127.0.0.1"
    _steps: list[_Step] = field(default_factory=list)
    # one pcap each: (events, duration_ms, gap_ms); one event for dtmf(), many for dtmf_burst()
    _rtp_events: list[tuple[tuple[int, ...], int, int]] = field(default_factory=list)
    _cseq: int = 1

    # --- steps --------------------------------------------------------------------------------

    def pause(self, ms: int) -> Call:
        """Wait ``ms`` milliseconds (a remote BYE during the pause ends the call at once)."""
        self._steps.append(_Step(f'<pause milliseconds="{int(ms)}"/>', ms / 1000))
        return self

    def dtmf(self, digits: str, mode: DtmfMode = "info", gap_ms: int = 250, duration_ms: int = 160) -> Call:
        """Send DTMF digits, ``gap_ms`` apart.

        - ``info``: SIP INFO, ``application/dtmf-relay`` (``Signal=5`` / ``Duration=160``), each
          waits for its 200 OK. Digits 0-9, ``*``, ``#``, A-D.
        - ``rfc2833``: RTP telephone-events (payload type 101, as our SDP offers) from a pcap
          generated for this call and replayed by sipp from its media port. 0-9, ``*``, ``#``,
          A-D; any order, repeats and gap 0 work.
        """
        for digit in digits:
            if mode == "info":
                if digit.upper() not in "0123456789*#ABCD":
                    raise SippError(f"not a DTMF digit: {digit!r}")
                self._steps.append(_Step(self._info_dtmf(digit.upper(), duration_ms)))
                self._steps.append(
                    _Step(
                        f"<!-- dtmf {digit} sent -->"
                        f'<nop><action><log message="DTMF {digit}"/></action></nop>'
                        f'<pause milliseconds="{gap_ms}"/>',
                        gap_ms / 1000,
                    )
                )
            elif mode == "rfc2833":
                event = RFC4733_EVENTS.get(digit.upper())
                if event is None:
                    raise SippError(f"not a DTMF digit: {digit!r}")
                self._rtp_events.append(((event,), duration_ms, 0))
                index = len(self._rtp_events) - 1
                # play_pcap_audio is asynchronous and a new one cancels the running one: wait for
                # the pcap (duration + 3 end packets) plus the gap before the next digit.
                wait = duration_ms + 60 + gap_ms
                self._steps.append(
                    _Step(
                        f'<nop><action><exec play_pcap_audio="@PCAP{index}@"/>'
                        f'<log message="DTMF {digit}"/></action></nop>'
                        f'<pause milliseconds="{wait}"/>',
                        wait / 1000,
                    )
                )
            else:
                raise SippError(f"unknown DTMF mode {mode!r}")
        return self

    def dtmf_burst(self, digits: str, duration_ms: int = 40, gap_ms: int = 20) -> Call:
        """Send ``digits`` as RFC 4733 events back to back from one pcap: a DTMF flood.

        :meth:`dtmf` replays one pcap per digit and waits for it; a burst is one replay, each
        digit taking (``duration_ms`` rounded to 20 ms) + 20 ms of end packets + ``gap_ms``: 300
        digits of 20 ms with no gap leave in 12 s. Asterisk 22.10 hands them to ARI at about that
        rate (one ``ChannelDtmfReceived`` every ~40 ms), but with gaps this short it reports some
        digits twice and drops others (its ``mindtmfduration`` emulation): send one repeated
        digit, or assert on bounds rather than on the exact digits.
        """
        events = []
        for digit in digits:
            event = RFC4733_EVENTS.get(digit.upper())
            if event is None:
                raise SippError(f"not a DTMF digit: {digit!r}")
            events.append(event)
        if not events:
            return self
        self._rtp_events.append((tuple(events), duration_ms, gap_ms))
        index = len(self._rtp_events) - 1
        wait = len(events) * _burst_slot_ms(duration_ms, gap_ms) + 60
        self._steps.append(
            _Step(
                f'<nop><action><exec play_pcap_audio="@PCAP{index}@"/>'
                f'<log message="DTMF_BURST {len(events)}"/></action></nop>'
                f'<pause milliseconds="{wait}"/>',
                wait / 1000,
            )
        )
        return self

    def play_audio(self, pcap: Path = G711A_PCAP, wait: bool = True) -> Call:
        """Send RTP from a pcap (default: 7 s of A-law speech), e.g. so a recording has audio.

        ``wait`` pauses for the pcap's duration; otherwise the next step starts at once (a later
        play_audio or RFC 4733 digit would cut it off).
        """
        seconds = pcap_duration(pcap)
        xml = f"<nop><action><exec play_pcap_audio={quoteattr(str(pcap))}/></action></nop>"
        if wait:
            xml += f'<pause milliseconds="{int(seconds * 1000) + 100}"/>'
        self._steps.append(_Step(xml, seconds if wait else 0.0))
        return self

    def expect_bye(self, timeout_ms: int) -> Call:
        """Wait up to ``timeout_ms`` for Asterisk to hang up; if it does not, we hang up."""
        self._steps.append(
            _Step(
                f'<pause milliseconds="{int(timeout_ms)}"/><nop><action><log message="NO_BYE"/></action></nop>',
                timeout_ms / 1000,
            )
        )
        return self

    def hangup(self) -> Call:
        """Send BYE now (ends the script; later steps are not run)."""
        self._steps.append(_Step('<nop next="hangup"/>'))
        return self

    # --- scenario ------------------------------------------------------------------------------

    def write_dtmf_pcaps(self, folder: Path) -> None:
        """Write this call's RFC 4733 digits as pcaps: one SSRC, rising sequence and timestamp.

        sip-tester's own dtmf_2833_*.pcap files cannot be used: every file carries a fixed RTP
        timestamp, and Asterisk drops an event whose timestamp is not newer than the previous
        one, so a repeated digit ("11") and any digit whose file has a lower timestamp than the
        previous digit's (e.g. "1" after "0", "3" after "9") are lost.
        """
        seq, timestamp, ssrc = 1000, 160_000, 0x554E4943
        for index, (events, duration_ms, gap_ms) in enumerate(self._rtp_events):
            seq = write_dtmf_burst_pcap(
                folder / f"dtmf-{index}.pcap", events, duration_ms, gap_ms, seq=seq, timestamp=timestamp, ssrc=ssrc
            )
            timestamp += 8 * 2000 * len(events)  # 2 s of RTP time per digit: always "a new event"

    def scenario_xml(self, pcap_dir: Path | None = None) -> str:
        """The sipp scenario; RFC 4733 digits refer to ``pcap_dir/dtmf-<n>.pcap``."""
        xml = self._scenario_xml()
        for index in range(len(self._rtp_events)):
            path = (pcap_dir or Path(".")) / f"dtmf-{index}.pcap"
            xml = xml.replace(f"@PCAP{index}@", str(path))
        return xml

    def _scenario_xml(self) -> str:
        caller_display = f'"{self.caller_name}" ' if self.caller_name else ""
        from_hdr = f"From: {caller_display}<sip:{self.caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"
        to_hdr = f"To: <sip:{self.dialled}@[remote_ip]:[remote_port]>"
        uri = f"sip:{self.dialled}@[remote_ip]:[remote_port]"
        common = f"Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n{from_hdr}\n"
        contact = f"Contact: <sip:{self.caller}@[local_ip]:[local_port]>"
        rejects = "\n".join(
            f'  <recv response="{code}" optional="true" next="rejected">'
            f'<action><log message="FINAL {code}"/></action></recv>'
            for code in REJECT_CODES
        )
        steps = "\n".join(f"  {step.xml}" for step in self._steps)
        invite_cseq = 2 if self.auth else 1
        if self.auth and self._cseq < invite_cseq:
            self._cseq = invite_cseq
        bye_cseq = self._cseq + 1
        sdp = """v=0
o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv"""
        challenge = ""
        if self.auth:
            # The first INVITE is challenged (401); its ACK reuses the INVITE's branch (ack_txn),
            # then the INVITE goes again with the digest answer (sipp's -au/-ap credentials).
            challenge = f"""  <send retrans="500" start_txn="invite1"><![CDATA[
INVITE {uri} SIP/2.0
{common}{to_hdr}
Call-ID: [call_id]
CSeq: 1 INVITE
{contact}
Max-Forwards: 70
User-Agent: sipp-unico
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
  <recv response="100" optional="true" response_txn="invite1"/>
  <recv response="401" auth="true" response_txn="invite1"/>
  <send ack_txn="invite1"><![CDATA[
ACK {uri} SIP/2.0
{common}{to_hdr}[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
"""
        authorization = "\n[authentication]" if self.auth else ""
        return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="unico caller {self.caller} -> {self.dialled}">
{challenge}  <send retrans="500"><![CDATA[
INVITE {uri} SIP/2.0
{common}{to_hdr}
Call-ID: [call_id]
CSeq: {invite_cseq} INVITE
{contact}{authorization}
Max-Forwards: 70
User-Agent: sipp-unico
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
  <!-- sipp runs the timeout of the recv it is waiting at, which is the first optional one after
       the last message received: every provisional recv carries the answer timeout. -->
  <recv response="100" optional="true" timeout="{self.answer_timeout_ms}" ontimeout="no_answer"/>
  <recv response="180" optional="true" timeout="{self.answer_timeout_ms}" ontimeout="no_answer"/>
  <recv response="183" optional="true" timeout="{self.answer_timeout_ms}" ontimeout="no_answer"/>
  <!-- Asterisk hangs up: sipp looks for optional="global" recvs only *behind* the current step,
       and accepts optional recvs only right before a mandatory one, hence this place. -->
  <recv request="BYE" optional="global" next="remote_bye"/>
{rejects}
  <recv response="200" rtd="true" timeout="{self.answer_timeout_ms}" ontimeout="no_answer">
    <action><log message="FINAL 200"/><log message="ANSWERED"/></action>
  </recv>
  <send><![CDATA[
ACK {uri} SIP/2.0
{common}{to_hdr}[peer_tag_param]
Call-ID: [call_id]
CSeq: {invite_cseq} ACK
{contact}
Max-Forwards: 70
Content-Length: 0
]]></send>
{steps}
  <label id="hangup"/>
  <send retrans="500"><![CDATA[
BYE {uri} SIP/2.0
{common}{to_hdr}[peer_tag_param]
Call-ID: [call_id]
CSeq: {bye_cseq} BYE
{contact}
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"><action><log message="LOCAL_BYE_OK"/></action></recv>
  <nop next="end"/>

  <label id="remote_bye"/>
  <nop><action><log message="REMOTE_BYE"/></action></nop>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
{contact}
Content-Length: 0
]]></send>
  <nop next="end"/>

  <label id="rejected"/>
  <send><![CDATA[
ACK {uri} SIP/2.0
[last_Via:]
{from_hdr}
[last_To:]
Call-ID: [call_id]
CSeq: {invite_cseq} ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop next="end"/>

  <label id="no_answer"/>
  <nop><action><log message="NO_ANSWER"/></action></nop>
  <send><![CDATA[
CANCEL {uri} SIP/2.0
[last_Via:]
{from_hdr}
{to_hdr}
Call-ID: [call_id]
CSeq: {invite_cseq} CANCEL
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" optional="true"/>
  <recv response="487"><action><log message="FINAL 487"/></action></recv>
  <send><![CDATA[
ACK {uri} SIP/2.0
[last_Via:]
{from_hdr}
[last_To:]
Call-ID: [call_id]
CSeq: {invite_cseq} ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop next="end"/>

  <label id="end"/>
  <nop><action><log message="END"/></action></nop>
</scenario>
"""

    def _info_dtmf(self, digit: str, duration_ms: int) -> str:
        self._cseq += 1
        uri = f"sip:{self.dialled}@[remote_ip]:[remote_port]"
        return f"""<send retrans="500"><![CDATA[
INFO {uri} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{self.caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{self.dialled}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {self._cseq} INFO
Contact: <sip:{self.caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={digit}
Duration={duration_ms}
]]></send>
  <recv response="200"/>"""

    def expected_seconds(self) -> float:
        return self.answer_timeout_ms / 1000 + sum(step.seconds for step in self._steps)

    # --- running -------------------------------------------------------------------------------

    async def run(
        self, *, max_seconds: float | None = None, keep_artifacts: bool = False, artifacts_root: Path = ARTIFACTS
    ) -> CallResult:
        """Run sipp for this call and parse what happened (never raises for a failed call)."""
        sipp = shutil.which("sipp")
        if sipp is None:
            raise SippError("sipp not found: apt-get install sip-tester")
        name = f"{time.strftime('%H%M%S')}-{os.getpid()}-{next(_sequence)}-{self.dialled}"
        folder = artifacts_root / re.sub(r"[^A-Za-z0-9_.+*#-]", "_", name)
        folder.mkdir(parents=True, exist_ok=True)
        scenario = folder / "scenario.xml"
        self.write_dtmf_pcaps(folder)
        scenario.write_text(self.scenario_xml(folder))
        limit = max_seconds if max_seconds is not None else self.expected_seconds() + 15
        command = [
            sipp,
            f"{self.host}:{self.port}",
            "-sf",
            str(scenario),
            "-m",
            "1",
            "-l",
            "1",
            "-i",
            self.local_ip,
            "-p",
            str(free_udp_port(self.local_ip)),
            "-mp",
            str(free_media_port()),
            "-nostdin",
            "-timeout",
            f"{int(limit) + 1}s",
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            str(folder / "messages.log"),
            "-trace_logs",
            "-log_file",
            str(folder / "events.log"),
            "-trace_err",
            "-error_file",
            str(folder / "errors.log"),
        ]
        shown = list(command)
        if self.auth is not None:
            command += ["-au", self.auth[0], "-ap", self.auth[1]]
            shown += ["-au", self.auth[0], "-ap", "****"]
        (folder / "command.txt").write_text(" ".join(shown) + "\n")
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=folder,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), limit + 10)
        except TimeoutError:
            process.kill()
            out, err = await process.communicate()
        elapsed = time.monotonic() - started
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        (folder / "stdout.txt").write_text(stdout)
        (folder / "stderr.txt").write_text(stderr)
        events = _read_events(folder / "events.log")
        finals = [int(e.split()[1]) for e in events if e.startswith("FINAL ")]
        result = CallResult(
            returncode=process.returncode if process.returncode is not None else -1,
            answered="ANSWERED" in events,
            final_status=finals[-1] if finals else None,
            remote_bye="REMOTE_BYE" in events,
            local_bye="LOCAL_BYE_OK" in events,
            events=events,
            stdout=stdout,
            stderr=stderr,
            artifacts=folder,
            elapsed=elapsed,
        )
        if result.ok and not keep_artifacts:
            shutil.rmtree(folder, ignore_errors=True)
        return result

    def run_sync(self, **kwargs: object) -> CallResult:
        """Blocking :meth:`run` for code without an event loop."""
        return asyncio.run(self.run(**kwargs))  # type: ignore[arg-type]


def _read_events(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]


def pcap_duration(path: Path) -> float:
    """Seconds between the first and last packet of a classic (libpcap) capture file."""
    data = path.read_bytes()
    if len(data) < 24:
        raise SippError(f"{path} is not a pcap file")
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}.get(magic)
    if endian is None:
        raise SippError(f"{path}: unsupported pcap format")
    offset, first, last = 24, None, 0.0
    while offset + 16 <= len(data):
        seconds, micros, included, _ = struct.unpack(f"{endian}IIII", data[offset : offset + 16])
        stamp = seconds + micros / 1e6
        first = stamp if first is None else first
        last = stamp
        offset += 16 + included
    return 0.0 if first is None else last - first


def write_dtmf_pcap(path: Path, event: int, duration_ms: int, *, seq: int, timestamp: int, ssrc: int) -> int:
    """One RFC 4733 digit as a pcap (Ethernet/IPv4/UDP/RTP, 20 ms packets, 3 end packets).

    sipp replays it from the call's media port to the media address in Asterisk's SDP. Returns
    the next free RTP sequence number.
    """
    return write_dtmf_burst_pcap(path, (event,), duration_ms, 0, seq=seq, timestamp=timestamp, ssrc=ssrc)


def _burst_slot_ms(duration_ms: int, gap_ms: int) -> int:
    """Milliseconds one digit of a burst takes: its 20 ms packets, the end packets' 20 ms, the gap."""
    return max(1, duration_ms // 20) * 20 + 20 + gap_ms


def write_dtmf_burst_pcap(
    path: Path, events: tuple[int, ...], duration_ms: int, gap_ms: int, *, seq: int, timestamp: int, ssrc: int
) -> int:
    """RFC 4733 digits one after the other in one pcap, as :func:`write_dtmf_pcap` writes one.

    Each digit is a new event with its own RTP timestamp, :func:`_burst_slot_ms` after the
    previous one in both RTP and pcap time. Returns the next free sequence number.
    """
    packets = []
    steps = max(1, duration_ms // 20)
    start = 0.0
    for index, event in enumerate(events):
        stamp = timestamp + index * 8 * _burst_slot_ms(duration_ms, gap_ms)  # RTP time = pcap time
        for n in range(steps + 3):
            end = n >= steps
            duration = min(n + 1, steps) * 160  # in 8 kHz samples
            header = struct.pack(
                "!BBHII",
                0x80,
                (0x80 if n == 0 else 0) | DTMF_PAYLOAD_TYPE,
                seq & 0xFFFF,
                stamp & 0xFFFFFFFF,
                ssrc,
            )
            seq += 1
            payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
            packets.append((start + (n * 0.02 if not end else steps * 0.02), header + payload))
        start += _burst_slot_ms(duration_ms, gap_ms) / 1000
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for offset, rtp in packets:
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        ip_header = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            0,
            0x4000,
            64,
            17,
            0,
            socket.inet_aton("127.0.0.1"),
            socket.inet_aton("127.0.0.1"),
        )
        ip_header = ip_header[:10] + struct.pack("!H", _ip_checksum(ip_header)) + ip_header[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + ip_header + udp
        seconds = 1_700_000_000 + int(offset)
        micros = round((offset % 1) * 1e6)
        out += struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return seq


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rig_slot() -> int:
    """The test rig's slot (0..9): ``UNICO_E2E_SLOT``, else the pytest-xdist worker's number (gw0,
    gw1 ...) plus ``UNICO_E2E_SLOT_BASE``. Ports and Asterisk instances are split by slot, so
    parallel workers never pick the same one."""
    explicit = os.environ.get("UNICO_E2E_SLOT")
    if explicit:
        return int(explicit)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return int(os.environ.get("UNICO_E2E_SLOT_BASE", "0")) + index


# sipp's ports stay out of the kernel's ephemeral range (32768-60999 on Debian: another process's
# port 0 could land on a port we chose, between our check and sipp's bind) and out of Asterisk's
# RTP range (20000-29999, asterisk-conf/rtp.conf); each slot has its own share.
_SIP_PORTS_PER_SLOT = 270  # 30000-32699 for slots 0..9
_MEDIA_PORTS_PER_SLOT = 450  # 61000-65499 for slots 0..9


def udp_ports_bound(host: str = "127.0.0.1") -> set[int]:
    """The UDP ports a socket is bound to on ``host`` or on every address (any address at all when
    ``host`` is 0.0.0.0), read from the kernel's socket tables.

    Ports are never probed by binding them: a probe's bind at the moment sipp binds the same port
    makes sipp exit with "Address already in use" (a CI run failed so)."""
    anywhere = host == "0.0.0.0"
    host_hex = socket.inet_aton(host)[::-1].hex().upper()  # /proc shows each word little-endian
    wanted = {host_hex, "00000000", "0" * 32, "0000000000000000FFFF0000" + host_hex}
    ports: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table, encoding="ascii") as rows:
                next(rows, None)  # the header
                for row in rows:
                    address, _, hex_port = row.split()[1].rpartition(":")
                    if anywhere or address in wanted:
                        ports.add(int(hex_port, 16))
        except FileNotFoundError:
            continue
    return ports


def udp_port_bound(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` is bound on ``host`` (see :func:`udp_ports_bound`)."""
    return port in udp_ports_bound(host)


def _bindable(host: str, ports: range) -> bool:
    return not udp_ports_bound(host).intersection(ports)


#: ports handed out by this process in the last seconds: a sipp started a moment ago may not have
#: bound its port yet, so the same port is not handed out again that soon
_handed: dict[int, float] = {}
_HANDED_FOR = 5.0


def _recently_handed(port: int) -> bool:
    now = time.monotonic()
    for old in [p for p, at in _handed.items() if now - at > _HANDED_FOR]:
        del _handed[old]
    return port in _handed


def _share(base: int, per_slot: int) -> range:
    """This process's ports: its slot's share when rigs may run side by side (parallel workers,
    an explicit slot), else all ten shares (a benchmark's hundred softphones need them)."""
    if os.environ.get("UNICO_E2E_SLOT") or os.environ.get("PYTEST_XDIST_WORKER"):
        first = base + per_slot * (rig_slot() % 10)
        return range(first, first + per_slot)
    return range(base, base + 10 * per_slot)


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free on ``host`` right now, from this process's share (see above)."""
    share = _share(30000, _SIP_PORTS_PER_SLOT)
    for _ in range(500):
        port = random.randrange(share.start, share.stop)
        if not _recently_handed(port) and _bindable(host, range(port, port + 1)):
            _handed[port] = time.monotonic()
            return port
    raise SippError("no free SIP port in this slot's range")


def free_media_port() -> int:
    """An even port with the next three free: sipp binds -mp and -mp+2 (video), RTCP uses +1."""
    share = _share(61000, _MEDIA_PORTS_PER_SLOT)
    for _ in range(500):
        base = random.randrange(share.start, share.stop - 4, 4)
        if not _recently_handed(base) and _bindable("0.0.0.0", range(base, base + 4)):
            _handed[base] = time.monotonic()
            return base
    raise SippError("no free media port range found")
