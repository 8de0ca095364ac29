"""End-to-end: the project's own Asterisk 22 instance ``test``, real SIP calls with sipp, no mocks.

The first run downloads the Debian root (~500 MB, about a minute; then cached in ~/.cache/unico).
The ``pbx`` fixture is self-contained so it can move to tests/conftest.py as it is.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.rig import AMI_PORT, ARI_PORT, SESSION_CONTROLLERS, SIP_PORT
from tests.sipp import Call
from unico import pbx
from unico.settings import Settings

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


# --- fixtures (self-contained: settings for the "test" instance, install + start, stop) -----------


@pytest.fixture(autouse=True)
def no_controller() -> None:
    """Asterisk alone: the session's controller, if a test before started it, is stopped (the
    next test's ``rig`` starts it again)."""
    for process in SESSION_CONTROLLERS:
        if process.running:
            assert process.stop() == 0, process.log_text()[-2000:]


@pytest.fixture
def pbx_settings(asterisk: Settings) -> Iterator[Settings]:
    """The session's ``test`` instance (see conftest), running again after every test here."""
    yield asterisk
    if not pbx.is_running(asterisk):
        pbx.start(asterisk)


# --- helpers ---------------------------------------------------------------------------------------


def http_status(url: str, user: str, password: str) -> int:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def full_log(settings: Settings) -> str:
    path = pbx.instance_dir(settings) / "log" / "full.log"
    return path.read_text(errors="replace") if path.exists() else ""


def asterisk_sockets(pid: int) -> list[tuple[str, str, int, str]]:
    """(proto, local address, local port, state) of every inet socket the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    sockets = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            address, port = fields[1].split(":")
            sockets.append((proto, _decode_address(address), int(port, 16), fields[3]))
    return sockets


def _decode_address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
    return ":".join(b.hex() for b in words)


def ari_auth_header(settings: Settings) -> dict[str, str]:
    secret = settings.ari_password.get_secret_value()
    token = base64.b64encode(f"{settings.ari_user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --- tests -----------------------------------------------------------------------------------------


def test_given_test_instance_started_when_asking_status_then_asterisk_22_runs(
    pbx_settings: Settings,
) -> None:
    text = pbx.status(pbx_settings)

    assert text.startswith("running"), text
    assert "Asterisk 22." in text, text
    assert pbx.is_running(pbx_settings)
    info = pbx.ari_get(pbx_settings, "/asterisk/info")
    assert info["system"]["version"].startswith("22."), info


def test_given_running_instance_when_starting_again_with_same_config_then_it_is_not_restarted(
    pbx_settings: Settings,
) -> None:
    pid = pbx.instance_dir(pbx_settings) / "run" / "asterisk.pid"
    before = pid.read_text()

    pbx.start(pbx_settings)

    assert pid.read_text() == before
    assert pbx.is_running(pbx_settings)


def test_given_generated_credentials_when_calling_ari_then_accepted_and_wrong_password_gets_401(
    pbx_settings: Settings,
) -> None:
    url = f"{pbx_settings.ari_url}/ari/asterisk/info"
    good = pbx_settings.ari_password.get_secret_value()

    assert http_status(url, pbx_settings.ari_user, good) == 200
    assert http_status(url, pbx_settings.ari_user, good + "x") == 401
    assert http_status(url, "nobody", good) == 401


def test_given_running_instance_when_writing_config_then_secrets_only_in_mode_0600_files(
    pbx_settings: Settings,
) -> None:
    generated = pbx.instance_dir(pbx_settings) / "etc" / "generated"
    secret = pbx_settings.ari_password.get_secret_value()

    holders = [p for p in generated.parent.rglob("*") if p.is_file() and secret in p.read_text()]

    assert [p.name for p in holders] == ["ari.conf"]
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in generated.iterdir())
    repo_conf = REPO / "asterisk-conf"
    assert not any(secret in p.read_text() for p in repo_conf.iterdir())


def test_given_running_instance_when_listing_its_sockets_then_ari_ami_sip_are_on_loopback_only(
    pbx_settings: Settings,
) -> None:
    pid_text = (pbx.instance_dir(pbx_settings) / "run" / "asterisk.pid").read_text()

    sockets = asterisk_sockets(int(pid_text))

    listening = {(proto, addr, port) for proto, addr, port, state in sockets if state == "0A"}
    assert listening == {("tcp", "127.0.0.1", ARI_PORT), ("tcp", "127.0.0.1", AMI_PORT)}, sockets
    sip = [(proto, addr) for proto, addr, port, _ in sockets if port == SIP_PORT]
    assert sip == [("udp", "127.0.0.1")], sockets
    # Besides SIP, Asterisk holds only pjlib's DNS resolver sockets (one IPv4, one IPv6, random
    # ports, replies matched by query id) and RTP ports of calls in progress (none here).
    others = [s for s in sockets if s[0].startswith("udp") and s[2] != SIP_PORT]
    assert len(others) <= 2, sockets


def test_given_no_controller_when_calling_803160_then_fallback_answers_apologises_and_hangs_up(
    pbx_settings: Settings,
) -> None:
    # no controller holds the app (the autouse fixture stopped any); Asterisk may still list the
    # app (inactive) if one ran before: the fallback NOTICE below shows Stasis() failed
    caller = f"39{secrets.randbelow(10**8):08d}"
    line = "unico-fallback inbound 803160"

    def notices() -> list[str]:  # the Log() NOTICE itself, not the verbose "Executing ..." trace
        return [x for x in full_log(pbx_settings).splitlines() if "NOTICE" in x and x.endswith(line)]

    before = len(notices())

    result = asyncio.run(Call("803160", caller=caller, port=pbx_settings.sip_port).expect_bye(30_000).run())

    assert result.answered and result.final_status == 200, result.explain()
    assert result.remote_bye and not result.local_bye, result.explain()
    # Italian then English "I'm sorry. All circuits are busy now. Please try again later."
    assert 8 < result.elapsed < 25, result.explain()
    # logged once for this call, without the caller's number (no caller numbers in plain logs)
    wait_until(lambda: len(notices()) == before + 1, 5, f"one more {line!r} NOTICE in full.log")
    assert caller not in notices()[-1]


def test_given_unknown_dialled_string_when_calling_then_rejected_with_404(
    pbx_settings: Settings,
) -> None:
    result = asyncio.run(Call("nonexistent", port=pbx_settings.sip_port).run())

    assert not result.answered and result.final_status == 404, result.explain()


async def test_given_app_connected_when_caller_sends_info_and_rfc4733_dtmf_then_ari_gets_both(
    pbx_settings: Settings,
) -> None:
    digits: dict[str, list[str]] = {}
    base = f"{pbx_settings.ari_url}/ari"
    async with aiohttp.ClientSession(headers=ari_auth_header(pbx_settings)) as http:
        ws_url = base.replace("http", "ws", 1) + f"/events?app={pbx_settings.ari_app}"
        async with http.ws_connect(ws_url) as ws:

            async def listen() -> None:
                async for message in ws:
                    event = json.loads(message.data)
                    channel = event.get("channel", {})
                    caller = channel.get("caller", {}).get("number", "")
                    if event["type"] == "StasisStart":
                        digits[caller] = []
                        await http.post(f"{base}/channels/{channel['id']}/answer")
                    elif event["type"] == "ChannelDtmfReceived":
                        digits[caller].append(event["digit"])

            listener = asyncio.create_task(listen())
            port = pbx_settings.sip_port
            info, rtp = await asyncio.gather(
                Call("803160", caller="1001", port=port).pause(200).dtmf("1*#9", mode="info").pause(400).hangup().run(),
                Call("803160", caller="1002", port=port)
                .pause(200)
                .dtmf("1190#*", mode="rfc2833")
                .pause(400)
                .hangup()
                .run(),
            )
            listener.cancel()

    assert info.answered and info.local_bye, info.explain()
    assert rtp.answered and rtp.local_bye, rtp.explain()
    assert "".join(digits.get("1001", [])) == "1*#9"
    assert "".join(digits.get("1002", [])) == "1190#*"


def test_given_rendered_prompts_when_syncing_twice_then_only_changed_files_are_copied(
    pbx_settings: Settings, tmp_path: Path
) -> None:
    wav = tmp_path / "it" / "welcome.wav"
    wav.parent.mkdir()
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(wav), "trim", "0", "0.2"], check=True)

    first = pbx.sync_prompts(pbx_settings, tmp_path)
    second = pbx.sync_prompts(pbx_settings, tmp_path)

    target = pbx.instance_dir(pbx_settings) / "sounds" / "it" / "welcome.wav"
    assert (first, second) == (1, 0)
    assert target.read_bytes() == wav.read_bytes()


def test_given_running_instance_when_stopped_then_status_reports_not_running(
    pbx_settings: Settings,
) -> None:
    pbx.stop(pbx_settings)
    pbx.stop(pbx_settings)  # idempotent

    assert not pbx.is_running(pbx_settings)
    assert pbx.status(pbx_settings).startswith("not running")
    with pytest.raises(pbx.PbxNotRunning):
        pbx.cli(pbx_settings, "core show version")


def test_given_roster_when_instance_started_then_every_operator_endpoint_has_digest_auth(
    pbx_settings: Settings,
) -> None:
    from ivr.config import load_config
    from unico.pbx.operators import ensure_operator_passwords

    config = load_config(REPO / "dialplan", REPO / "skills")
    endpoints = pbx.cli(pbx_settings, "pjsip show endpoints")
    for operator in config.operators:
        assert f"Endpoint:  {operator}" in endpoints, endpoints
        auth = pbx.cli(pbx_settings, f"pjsip show auth {operator}")
        assert f"username          : {operator}" in auth.replace("\t", " ") or operator in auth, auth
    passwords = ensure_operator_passwords(pbx_settings.state_dir, list(config.operators))
    generated = (pbx.instance_dir(pbx_settings) / "etc" / "generated" / "pjsip_operators.conf").read_text()
    assert all(p.get_secret_value() in generated for p in passwords.values())
    assert not any(p.get_secret_value() in endpoints for p in passwords.values())
