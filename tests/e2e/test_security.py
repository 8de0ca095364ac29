"""Hostile input and security defaults on the real rig (issue 6, rows 9 and 10).

Real Asterisk 22, the real controller process, sipp callers and softphones, as in
reference/reliability.md sections 1 and 5 (F11, F12) and test-matrix rows 16-18 and 23. Every
test that takes ``rig`` ends with its leak check (no channels or bridges in Asterisk, no calls in
Redis, no operator ringing or busy, every contact record closed, ``handler_errors`` 0).

Attacks come from 127.0.0.2: on Linux all of 127.0.0.0/8 reaches the loopback interface, so sipp
can bind it without an alias, and it is neither the carrier's address nor the operators' network
(both 127.0.0.1/32 in the rig, ``UNICO_CARRIER_NETWORKS`` and ``UNICO_OPERATOR_NETWORKS``).

Shown elsewhere, not repeated here:

- fuzzing (hypothesis) of the ARI event parser, of the IVR engine with digit floods, junk digits
  and over-long strings, and of the YAML loader: tests/unit/test_fuzz.py; of every API route:
  tests/unit/test_api_fuzz.py;
- malformed API requests (bad JSON, too large, wrong method, missing or bad token, wrong role):
  tests/unit/test_api_auth.py; bad YAML pushed to the running controller: tests/e2e/test_reload.py;
  alias bombs, huge files and deep nesting: tests/unit/test_security_yaml.py;
- API tokens stored as SHA-256 only: tests/unit/test_users_db.py and test_api_auth.py
  (``test_given_users_when_stored_then_the_database_holds_only_hashes``);
- no default or literal passwords, secrets masked in ``unico settings``, the generated ACLs and
  AMI rights: tests/unit/test_security.py;
- Asterisk's sockets on loopback only (from /proc): tests/e2e/test_asterisk.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import itertools
import re
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.config import load_config
from tests.e2e.rig import (
    AMI_PORT,
    ARI_PORT,
    WEB_PORT,
    Controller,
    Records,
    inputs,
    nodes_visited,
    unique_caller,
    wait_for,
)
from tests.sipp import Call
from tests.softphone import RegistrationError, Softphone
from unico import pbx
from unico.pbx.config import AMI_READ, AMI_WRITE
from unico.pbx.operators import ensure_operator_passwords
from unico.settings import Settings

ATTACKER = "127.0.0.2"
#: AMI privilege classes that must never be granted (reliability.md section 1: Originate can run
#: System(); Command is the whole CLI; config rewrites files)
DANGEROUS_AMI = {"system", "command", "originate", "config", "all"}
_FIELD = re.compile(r'(\w+)="([^"]*)"')


# --- helpers ---------------------------------------------------------------------------------------


def caller_id() -> str:
    return unique_caller("39")


def call(rig: Controller, dialled: str, caller: str, **kwargs: Any) -> Call:
    return Call(dialled, caller=caller, port=rig.settings.sip_port, **kwargs)


def operator_password(settings: Settings, op_id: str) -> str:
    return ensure_operator_passwords(settings.state_dir, [op_id])[op_id].get_secret_value()


class AsteriskLog:
    """One of the instance's log files, read from where it stood when the test began."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.path = pbx.instance_dir(settings) / "log" / name
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def new_text(self) -> str:
        if not self.path.exists():
            return ""
        with self.path.open("rb") as handle:
            handle.seek(self.start)
            return handle.read().decode(errors="replace")

    def security_events(self) -> list[dict[str, str]]:
        """res_security_log lines as dicts: SecurityEvent, AccountID, RemoteAddress, ..."""
        return [dict(_FIELD.findall(line)) for line in self.new_text().splitlines() if "SecurityEvent=" in line]

    async def wait_event(self, what: str, **wanted: str) -> dict[str, str]:
        """Wait for a new security event whose fields match ``wanted`` (a value ending in '*'
        matches as a prefix)."""

        def matches(event: dict[str, str]) -> bool:
            for key, value in wanted.items():
                have = event.get(key, "")
                if not (have.startswith(value[:-1]) if value.endswith("*") else have == value):
                    return False
            return True

        async def found() -> dict[str, str] | None:
            return next((e for e in self.security_events() if matches(e)), None)

        event: dict[str, str] = await wait_for(
            found, timeout=5, what=f"{what} in security.log; new events: {self.security_events()}"
        )
        return event


def calls_processed(settings: Settings) -> int:
    """Asterisk's count of channels that ever entered the dialplan (``core show calls``)."""
    text = pbx.cli(settings, "core show calls")
    match = re.search(r"(\d+) calls? processed", text)
    assert match, text
    return int(match[1])


def cli_text(settings: Settings, command: str) -> str:
    """A CLI command's output without terminal colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", pbx.cli(settings, command))


def non_loopback_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
        except OSError:
            return None
        address: str = sock.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def ari_status_from(settings: Settings, source: str) -> int:
    """The HTTP status of an ARI request with the right credentials, sent from ``source``."""
    secret = settings.ari_password.get_secret_value()
    token = base64.b64encode(f"{settings.ari_user}:{secret}".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", ARI_PORT, timeout=3, source_address=(source, 0))
    try:
        connection.request("GET", "/ari/asterisk/ping", headers={"Authorization": f"Basic {token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def tcp_refused(host: str, port: int) -> bool:
    """True when nothing accepts TCP connections on host:port (refused, or no route at all)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except OSError:
        return True


@dataclass
class Ami:
    """A bare AMI session (``Key: Value`` lines, a blank line ends a message) keeping every event.

    Only the tests use AMI, to watch the channels Asterisk creates and to probe the rights of
    the generated user; the controller itself sends no AMI action.
    """

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    events: list[dict[str, str]] = field(default_factory=list)
    _pending: dict[str, asyncio.Future[dict[str, str]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, settings: Settings, source: str = "127.0.0.1") -> Ami:
        connecting = asyncio.open_connection("127.0.0.1", settings.ami_port, local_addr=(source, 0))
        reader, writer = await asyncio.wait_for(connecting, 5)
        banner = await asyncio.wait_for(reader.readline(), 5)
        assert banner.startswith(b"Asterisk Call Manager"), banner
        ami = cls(reader, writer)
        ami._task = asyncio.create_task(ami._read())
        return ami

    async def login(self, user: str, secret: str) -> dict[str, str]:
        return await self.action("Login", Username=user, Secret=secret, Events="call")

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        action_id = f"sec-{next(self._ids)}"
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        lines = [f"Action: {name}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in fields.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        return await asyncio.wait_for(future, 5)

    async def _read(self) -> None:
        message: dict[str, str] = {}
        while line := await self.reader.readline():
            text = line.decode(errors="replace").rstrip("\r\n")
            if text:
                key, _, value = text.partition(":")
                message.setdefault(key.strip(), value.strip())
                continue
            if "Event" in message:
                self.events.append(message)
            elif (future := self._pending.pop(message.get("ActionID", ""), None)) and not future.done():
                future.set_result(message)
            message = {}

    def of(self, event: str) -> list[dict[str, str]]:
        return [e for e in self.events if e.get("Event") == event]

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            self.writer.close()
            await self.writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@pytest.fixture
async def ami(rig: Controller) -> AsyncIterator[Ami]:
    """An AMI session logged in as the generated user, receiving call events."""
    settings = rig.settings
    session = await Ami.connect(settings)
    try:
        reply = await session.login(settings.ami_user, settings.ami_secret.get_secret_value())
        assert reply.get("Response") == "Success", reply
        yield session
    finally:
        await session.close()


# --- DTMF abuse (F11, matrix row 18) ----------------------------------------------------------------


async def test_given_main_menu_when_caller_floods_hundreds_of_digits_then_visit_bound_ends_call_and_others_served(
    rig: Controller, records: Records
) -> None:
    flooder, bystander = caller_id(), caller_id()
    max_visits = load_config(rig.config_dir / "dialplan", rig.config_dir / "skills").settings.max_node_visits
    # "9" in the main menu is a valid choice (English) that leads back to the main menu: every
    # digit costs two node visits and a stop + start of the menu prompt through ARI.
    flood = call(rig, "803160", flooder).pause(300).dtmf_burst("9" * 300, duration_ms=20, gap_ms=0)
    normal = call(rig, "7001", bystander).pause(1500).dtmf("1").expect_bye(15_000)

    flooded, served = await asyncio.gather(flood.expect_bye(10_000).run(), normal.run())

    assert flooded.answered and flooded.remote_bye, flooded.explain()  # Asterisk hung up: the IVR ended it
    record = await records.finished_for(flooder)
    assert len(await records.all_for(flooder)) == 1
    # the engine's bound (max_node_visits) ended the call: the path stops at it, whatever was sent
    assert record.ivr_path[-1]["kind"] == "loop" and record.outcome == "error", record.ivr_path[-3:]
    visits = [s for s in record.ivr_path if s["kind"] not in ("input", "result", "fallback", "recording", "end")]
    assert len(visits) <= max_visits + 1, len(visits)  # the visit bound, plus the "loop" step itself
    taken = [digits for _, digits, note in inputs(record) if note in ("choice", "skip")]
    assert len(taken) >= max_visits // 2, len(taken)  # the flood did reach the controller
    assert set(taken) == {"9"}
    # a caller in another menu at the same time was served exactly as usual
    assert served.remote_bye, served.explain()
    other = await records.finished_for(bystander)
    assert inputs(other) == [("t_menu", "1", "choice")]
    assert other.outcome == "contained"
    health = await rig.health()
    assert health is not None and health["ready"] and health["handler_errors"] == 0, health


async def test_given_collect_node_when_100_digits_arrive_at_once_then_max_length_taken_and_the_rest_ignored(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    # t_collect (tests/e2e/flows.yaml): 4-6 digits of [1-5], then the code is said back
    flood = call(rig, "7002", caller).pause(500).dtmf_burst("5" * 100, duration_ms=20, gap_ms=0)

    result = await flood.expect_bye(15_000).run()

    assert result.answered and result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    assert inputs(record) == [("t_collect", "555555", "valid")]
    assert record.data == {"code": "555555"}
    assert nodes_visited(record) == ["t_collect", "t_say", "t_done"]
    assert record.outcome == "contained"
    assert len(await records.all_for(caller)) == 1


# --- SIP from the wrong place or to the wrong number (F12, matrix rows 16-17) ------------------------


async def test_given_unknown_source_address_when_inviting_then_challenged_and_nothing_reaches_dialplan(
    rig: Controller, records: Records
) -> None:
    settings = rig.settings
    security = AsteriskLog(settings, "security.log")
    before = calls_processed(settings)
    stranger = caller_id()

    plain = await call(rig, "803160", stranger, local_ip=ATTACKER, answer_timeout_ms=3000).hangup().run()
    # the trunk has no password: a From user "carrier" must not make 127.0.0.2 the carrier
    spoofed = await call(rig, "803160", "carrier", local_ip=ATTACKER, answer_timeout_ms=3000).hangup().run()

    for result in (plain, spoofed):
        # PJSIP's artificial endpoint challenges whatever it cannot identify, so the attacker
        # cannot tell an unknown account from a wrong password; without credentials it ends there
        assert not result.answered and result.final_status == 401, result.explain()
    assert calls_processed(settings) == before  # no channel ever entered the dialplan
    await security.wait_event("FailedACL for the spoofed trunk", SecurityEvent="FailedACL", AccountID="carrier")
    await security.wait_event(
        "the stranger's challenge", SecurityEvent="ChallengeSent", RemoteAddress=f"IPV4/UDP/{ATTACKER}/*"
    )
    assert await records.all_for(stranger) == []
    assert await records.all_for("carrier") == []


async def test_given_numbers_outside_the_plan_when_dialled_then_no_outbound_leg_and_a_clear_rejection(
    rig: Controller, records: Records, ami: Ami
) -> None:
    settings = rig.settings
    messages = AsteriskLog(settings, "messages.log")
    unknown = {"0039061234567": caller_id(), "+390612345678": caller_id()}  # international: not ours
    refused = {  # 404 before any answer
        "*41": caller_id(),  # a feature code from the carrier: [from-carrier] has none
        "500&PJSIP/carrier/0039061234567": caller_id(),  # dial-string injection
        "3&Local/0039061234567%40from-carrier/n": caller_id(),  # '@' escaped, as it must be in a URI
        "1,Dial(PJSIP/carrier/0039061234567)": caller_id(),  # a second Stasis() argument
        "+39&Local/0039061234567": caller_id(),
    }
    op_id = "op1001"
    auth = (op_id, operator_password(settings, op_id))
    from_operator = ["0039061234567", "*41&PJSIP/carrier/0039061234567"]  # softphone calling out: 404

    results = await asyncio.gather(
        *(call(rig, number, who).expect_bye(20_000).run() for number, who in unknown.items()),
        *(call(rig, number, who).run() for number, who in refused.items()),
        *(call(rig, number, op_id, auth=auth).run() for number in from_operator),
    )

    answered, rejected = results[: len(unknown)], results[len(unknown) :]
    for result in answered:  # the unknown-number treatment: "number not in service", then hang-up
        assert result.answered and result.remote_bye, result.explain()
    for result in rejected:
        assert not result.answered and result.final_status == 404, result.explain()
    for number, who in unknown.items():
        record = await records.finished_for(who)
        assert (record.dialled, record.outcome) == (number, "unknown_number")
    for who in refused.values():
        assert await records.all_for(who) == []  # nothing reached the controller
    # Nothing dialled out: no Dial ever began, and the only channels Asterisk created were the
    # callers' own (one per call that got as far as the dialplan), never a second leg.
    assert ami.of("DialBegin") == [], ami.of("DialBegin")
    created = [e["Channel"] for e in ami.of("Newchannel")]
    assert created, "no Newchannel events: is the AMI user missing the 'call' read class?"
    assert all(name.startswith(("PJSIP/carrier-", f"PJSIP/{op_id}-")) for name in created), created
    assert len(created) <= len(unknown) + len(refused) + len(from_operator), created
    injections = sum(1 for number in [*refused, *from_operator] if not number.lstrip("+*").isdigit())
    refusals = [line for line in messages.new_text().splitlines() if "unico-refused non-numeric" in line]
    assert len(refusals) == injections, refusals
    assert not any("0039061234567" in line for line in refusals)  # the crafted string is not echoed


# --- passwords and ACLs on the operators' endpoints (F12) --------------------------------------------


async def test_given_wrong_password_when_registering_or_calling_then_refused_and_a_security_event_names_it(
    rig: Controller,
) -> None:
    settings = rig.settings
    security = AsteriskLog(settings, "security.log")
    guess = "not-" + secrets.token_urlsafe(18)

    with pytest.raises(RegistrationError) as refused:
        await Softphone("op1002", guess, port=settings.sip_port).register()
    dialled = await call(rig, "*41", "op1003", auth=("op1003", guess)).run()

    assert refused.value.status == 401, refused.value
    assert not dialled.answered and dialled.final_status == 401, dialled.explain()
    for account in ("op1002", "op1003"):
        event = await security.wait_event(
            f"failed authentication of {account}", SecurityEvent="ChallengeResponseFailed", AccountID=account
        )
        assert event["Service"] == "PJSIP" and event["RemoteAddress"].startswith("IPV4/UDP/127.0.0.1/"), event
    assert (await rig.agent("op1003"))["state"] == "logged_out"  # the feature code did nothing
    assert guess not in security.new_text()


async def test_given_right_password_from_outside_operator_networks_when_registering_then_refused_by_acl(
    rig: Controller,
) -> None:
    settings = rig.settings
    security = AsteriskLog(settings, "security.log")
    password = operator_password(settings, "op1001")
    outsider = Softphone("op1001", password, port=settings.sip_port, local_ip=ATTACKER)

    with pytest.raises(RegistrationError) as refused:
        await outsider.register()

    assert refused.value.status == 401, refused.value
    event = await security.wait_event("the ACL refusal", SecurityEvent="FailedACL", AccountID="op1001")
    assert event["RemoteAddress"].startswith(f"IPV4/UDP/{ATTACKER}/"), event
    endpoint = await asyncio.to_thread(pbx.ari_get, settings, "/endpoints/PJSIP/op1001")
    assert endpoint["state"] == "offline", endpoint
    assert outsider.contact not in cli_text(settings, "pjsip show contacts")
    # the same password from the permitted network works: it was the address that was refused
    async with Softphone("op1001", password, port=settings.sip_port) as insider:
        await insider.register(expires=60)
        assert insider.registered
    await rig.wait_agent("op1001", "logged_out")


# --- security defaults (matrix row 23) ----------------------------------------------------------------


async def test_given_running_rig_when_bindings_read_and_probed_then_ari_ami_and_web_answer_on_loopback_only(
    rig: Controller,
) -> None:
    settings = rig.settings
    security = AsteriskLog(settings, "security.log")

    http_status = cli_text(settings, "http show status")
    manager = cli_text(settings, "manager show settings")
    ari_local = await asyncio.to_thread(ari_status_from, settings, "127.0.0.1")
    ari_other = await asyncio.to_thread(ari_status_from, settings, ATTACKER)
    ami_other = await Ami.connect(settings, source=ATTACKER)
    try:
        login = await ami_other.login(settings.ami_user, settings.ami_secret.get_secret_value())
    finally:
        await ami_other.close()

    assert f"Bound to 127.0.0.1:{ARI_PORT}" in http_status, http_status
    assert re.search(rf"TCP Bindaddress:\s+127\.0\.0\.1:{AMI_PORT}\b", manager), manager
    assert re.search(r"Web Manager \(AMI/HTTP\):\s+No", manager), manager
    # right credentials from another loopback address: the users' own ACLs refuse them
    assert (ari_local, ari_other) == (200, 403)
    assert login.get("Response") == "Error", login
    await security.wait_event("AMI's ACL refusal", Service="AMI", SecurityEvent="FailedACL")
    for port in (ARI_PORT, AMI_PORT, WEB_PORT):
        assert not tcp_refused("127.0.0.1", port), f"nothing on 127.0.0.1:{port}"
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to probe from")
    for port in (ARI_PORT, AMI_PORT, WEB_PORT):
        assert tcp_refused(address, port), f"{address}:{port} accepts connections"


async def test_given_generated_ami_user_when_asking_for_originate_or_command_then_permission_denied(
    rig: Controller, ami: Ami
) -> None:
    settings = rig.settings
    security = AsteriskLog(settings, "security.log")

    ping = await ami.action("Ping")
    originate = await ami.action(
        "Originate", Channel="Local/803160@from-carrier", Application="System", Data="touch /tmp/pwned"
    )
    command = await ami.action("Command", Command="core show version")
    getvar = await ami.action("Getvar", Variable="UNICO_APP")  # call/reporting write: not granted either
    intruder = await Ami.connect(settings)
    try:
        wrong = await intruder.login(settings.ami_user, "not-" + secrets.token_urlsafe(12))
    finally:
        await intruder.close()

    assert ping.get("Response") == "Success", ping
    for reply in (originate, command, getvar):
        assert reply.get("Response") == "Error" and reply.get("Message") == "Permission denied", reply
    assert wrong.get("Response") == "Error", wrong
    await security.wait_event("the AMI login failure", Service="AMI", AccountID=settings.ami_user)
    user = cli_text(settings, f"manager show user {settings.ami_user}")
    read = re.search(r"read perm:\s*(\S+)", user)
    write = re.search(r"write perm:\s*(\S+)", user)
    assert read and write, user
    assert set(read[1].split(",")) == set(AMI_READ.split(",")), user
    assert set(write[1].split(",")) == set(AMI_WRITE.split(",")), user
    assert not (set(read[1].split(",")) | set(write[1].split(","))) & DANGEROUS_AMI, user
    assert not Path("/tmp/pwned").exists()


async def read_channel_variables(settings: Settings, names: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    """(status, body) of ``GET /channels/{id}/variable`` for each name, on a throwaway Local
    channel in a throwaway Stasis app (the controller never sees either)."""
    secret = settings.ari_password.get_secret_value()
    token = base64.b64encode(f"{settings.ari_user}:{secret}".encode()).decode()
    base = f"{settings.ari_url}/ari"
    app = f"security-probe-{secrets.token_hex(4)}"
    results: dict[str, tuple[int, dict[str, Any]]] = {}
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as http,
        http.ws_connect(base.replace("http", "ws", 1) + f"/events?app={app}"),
    ):
        params = {"endpoint": "Local/probe@security-probe", "app": app}
        async with http.post(f"{base}/channels/create", params=params) as response:
            channel = await response.json()
            assert response.status == 200, channel
        try:
            for name in names:
                url = f"{base}/channels/{channel['id']}/variable"
                async with http.get(url, params={"variable": name}) as response:
                    results[name] = (response.status, await response.json())
        finally:
            async with http.delete(f"{base}/channels/{channel['id']}") as response:
                assert response.status in (204, 404), await response.text()
    return results


async def test_given_live_dangerously_off_when_ari_reads_a_file_through_a_dialplan_function_then_blocked(
    asterisk: Settings,
) -> None:
    settings = asterisk
    messages = AsteriskLog(settings, "messages.log")
    # FILE() (func_env) is the classic privilege escalation: loaded only for this test
    pbx.cli(settings, "module load func_env.so")
    try:
        read = await read_channel_variables(settings, ["FILE(/etc/hostname)", "CHANNEL(name)"])
    finally:
        pbx.cli(settings, "module unload func_env.so")

    dangerous, harmless = read["FILE(/etc/hostname)"], read["CHANNEL(name)"]
    assert harmless[0] == 200 and harmless[1]["value"].startswith("Local/probe@security-probe"), harmless
    assert dangerous[0] == 500 and "value" not in dangerous[1], dangerous

    async def blocked() -> bool:
        return "Dangerous function FILE read blocked" in messages.new_text()

    async def no_channels() -> bool:
        return not await asyncio.to_thread(pbx.ari_get, settings, "/channels")

    await wait_for(blocked, timeout=5, what="Asterisk's 'Dangerous function FILE read blocked' error")
    await wait_for(no_channels, timeout=5, what="the probe's Local channels gone")


# --- last: nothing secret was logged during the session ----------------------------------------------


async def test_given_the_whole_session_when_logs_are_read_then_no_secret_appears_in_them(rig: Controller) -> None:
    settings = rig.settings
    operators = ensure_operator_passwords(settings.state_dir, ["op1001", "op1002", "op1003"])
    secrets_ = {
        "UNICO_ARI_PASSWORD": settings.ari_password.get_secret_value(),
        "UNICO_AMI_SECRET": settings.ami_secret.get_secret_value(),
        "UNICO_ADMIN_TOKEN": settings.admin_token.get_secret_value(),
        "ARI basic auth": base64.b64encode(
            f"{settings.ari_user}:{settings.ari_password.get_secret_value()}".encode()
        ).decode(),
        **{f"{op_id} SIP password": value.get_secret_value() for op_id, value in operators.items()},
    }
    log_dir = pbx.instance_dir(settings) / "log"
    logs = {"controller": rig.log_text()} | {
        f"asterisk {path.name}": path.read_text(errors="replace") for path in log_dir.iterdir() if path.is_file()
    }

    assert len(logs["controller"]) > 1000, "the controller logged (almost) nothing: wrong file?"
    leaks = [(what, log) for what, value in secrets_.items() for log, text in logs.items() if value in text]
    assert leaks == [], leaks
    # the controller logs at DEBUG in the rig: still no Authorization header or api_key in it
    assert not re.search(r"Authorization|api_key=", logs["controller"]), "credentials in the controller log"
