"""The end-to-end rig: the real Asterisk 22 ``test`` instance, the real controller process, sipp.

Ports differ from ``make run``'s so a running development stack is never disturbed. Secrets are
generated per test session and handed to the controller through its environment.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from contacts import ContactRecord, ContactStore
from tests.sipp import rig_slot
from tests.softphone import Mode, Softphone
from unico import pbx
from unico.pbx.operators import ensure_operator_passwords
from unico.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


#: slot ``n`` (0..9) gives a rig its own Asterisk instance (``test``, ``test<n>``) and ports (every
#: port + 100 x n), so two rigs on one machine (parallel workers, a second run) never share one.
SLOT = rig_slot()
INSTANCE = "test" if SLOT == 0 else f"test{SLOT}"
ARI_PORT = 18088 + 100 * SLOT
SIP_PORT = 15060 + 100 * SLOT
AMI_PORT = 15038 + 100 * SLOT
WEB_PORT = 18780 + 100 * SLOT


#: the session's controller processes (conftest's ``controller`` fixture): tests that need
#: Asterisk without one (tests/e2e/test_asterisk.py) stop them; the next ``rig`` starts them again
SESSION_CONTROLLERS: list[Controller] = []

_caller_numbers = itertools.count(1)


def unique_caller(prefix: str = "39") -> str:
    """A caller number no other call of this test session uses (one counter for every test file,
    so two files' numbers can never collide and records never mix between tests)."""
    return f"{prefix}{os.getpid() % 100000:05d}{next(_caller_numbers):04d}"


def rig_settings(state_dir: Path) -> Settings:
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
        redis_prefix=f"unico-test-{secrets.token_hex(4)}:",
    )


async def wait_for(
    condition: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await condition()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}; last value: {last!r}")


class Controller:
    """``unico run`` as a child process, configured like an admin would, through UNICO_* variables."""

    def __init__(
        self, settings: Settings, config_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.config_dir = config_dir
        self.log_path = log_path
        #: more UNICO_* settings than the rig's own (a fault test's Redis URL, lease settings)
        self.extra_env = dict(extra_env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("UNICO_")}
        env.update(
            UNICO_HOME=str(ROOT),
            UNICO_STATE_DIR=str(s.state_dir),
            UNICO_CONFIG_DIR=str(self.config_dir),
            UNICO_ASTERISK_INSTANCE=s.asterisk_instance,
            UNICO_ARI_URL=s.ari_url,
            UNICO_ARI_PASSWORD=s.ari_password.get_secret_value(),
            UNICO_AMI_PORT=str(s.ami_port),
            UNICO_AMI_SECRET=s.ami_secret.get_secret_value(),
            UNICO_SIP_PORT=str(s.sip_port),
            UNICO_WEB_PORT=str(s.web_port),
            UNICO_ADMIN_TOKEN=s.admin_token.get_secret_value(),
            UNICO_DATABASE_URL=s.db_url,
            UNICO_REDIS_PREFIX=s.redis_prefix,
            UNICO_ARI_APP=s.ari_app,
            UNICO_CONTROLLER_ID=s.node_id,
            UNICO_REDIS_URL=s.redis_url,
            UNICO_LOG_LEVEL="DEBUG",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "controller already running"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "unico"), "run"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def health(self) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._get_json, "/health")

    def _get_json(self, path: str) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.settings.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                body: dict[str, Any] = json.load(response)
                return body
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
            return body
        except OSError:
            return None

    async def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        seen: list[dict[str, Any] | None] = [None]

        async def ready() -> dict[str, Any] | None:
            if not self.running:
                raise AssertionError(f"controller exited:\n{self.log_text()[-4000:]}")
            body = seen[0] = await self.health()
            return body if body and body.get("ready") else None

        try:
            result: dict[str, Any] = await wait_for(ready, timeout=timeout, what="controller ready")
        except AssertionError as exc:
            last = seen[0]
            role = last.get("role") if last else "no answer on its web port"
            raise AssertionError(f"{exc}; role {role!r}\n{self.log_text()[-2000:]}") from None
        return result

    async def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """Call the controller's REST API with the admin token; returns (status, JSON body)."""

        def send() -> tuple[int, Any]:
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.settings.web_port}{path}",
                method=method,
                data=data,
                headers={
                    "Authorization": f"Bearer {token or self.settings.admin_token.get_secret_value()}",
                    "Content-Type": "application/json",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as exc:
                return exc.code, json.load(exc)

        return await asyncio.to_thread(send)

    async def agent(self, agent_id: str) -> dict[str, Any]:
        status, body = await self.api("GET", f"/api/agents/{agent_id}")
        assert status == 200, body
        result: dict[str, Any] = body
        return result

    async def wait_agent(
        self, agent_id: str, state: str, reason: str | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        async def matches() -> dict[str, Any] | None:
            agent = await self.agent(agent_id)
            ok = agent["state"] == state and (reason is None or agent["reason"] == reason)
            return agent if ok else None

        result: dict[str, Any] = await wait_for(
            matches, timeout=timeout, what=f"operator {agent_id} {state} {reason or ''}"
        )
        return result

    async def reload(self, token: str | None = None) -> tuple[int, dict[str, Any]]:
        def post() -> tuple[int, dict[str, Any]]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.settings.web_port}/admin/reload",
                method="POST",
                headers={"Authorization": f"Bearer {token or self.settings.admin_token.get_secret_value()}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as exc:
                return exc.code, json.load(exc)

        return await asyncio.to_thread(post)


class Operators:
    """Softphones for the test's operators; all logged out and unregistered afterwards."""

    def __init__(self, rig: Controller) -> None:
        self.rig = rig
        self.phones: dict[str, Softphone] = {}

    async def online(
        self,
        op_id: str,
        mode: Mode = "answer",
        *,
        ring_ms: int = 0,
        talk_ms: int | None = None,
        login: bool = True,
    ) -> Softphone:
        """Register ``op_id``'s softphone, start it answering in ``mode`` and log them in (ready)."""
        settings = self.rig.settings
        password = ensure_operator_passwords(settings.state_dir, [op_id])[op_id]
        phone = Softphone(op_id, password, port=settings.sip_port)
        self.phones[op_id] = phone
        await phone.register()
        await phone.start(mode, ring_ms=ring_ms, talk_ms=talk_ms)
        await self.rig.wait_agent(op_id, "logged_out")  # the registration reached the ACD
        if login:
            status, body = await self.rig.api("POST", f"/api/agents/{op_id}/login")
            assert status == 200 and body["state"] == "ready", body
        return phone

    async def close(self) -> None:
        """Log every operator out and stop every softphone, even when one of them fails (a sipp
        left running would hold its ports and keep answering into later tests)."""
        problems: list[BaseException] = []
        for op_id, phone in self.phones.items():
            try:
                await self.rig.api("POST", f"/api/agents/{op_id}/logout")
            except Exception as exc:  # noqa: BLE001 - the controller may be down: stop the phone anyway
                problems.append(exc)
            try:
                await phone.close()
            except Exception as exc:  # noqa: BLE001 - reported below, after every phone stopped
                problems.append(exc)
                await phone.stop()
        if problems:
            raise problems[0]


class Records:
    """Reads the controller's contact records from the same database, as ``unico contacts`` does."""

    def __init__(self, store: ContactStore) -> None:
        self.store = store

    async def finished_for(self, caller: str, *, timeout: float = 30.0) -> ContactRecord:
        async def find() -> ContactRecord | None:
            for record in await self.store.recent(200):
                if record.caller == caller and record.ended_at is not None:
                    return record
            return None

        record: ContactRecord = await wait_for(find, timeout=timeout, what=f"closed contact for caller {caller}")
        return record

    async def all_for(self, caller: str) -> list[ContactRecord]:
        return [r for r in await self.store.recent(500) if r.caller == caller]


def path_of(record: ContactRecord) -> list[tuple[str, str | None, str | None]]:
    """The IVR path as (node, digits, note) for inputs and (node, None, kind) for visits."""
    result: list[tuple[str, str | None, str | None]] = []
    for step in record.ivr_path:
        if step["kind"] == "input":
            result.append((str(step["node"]), step.get("digits"), step.get("note")))
        else:
            result.append((str(step["node"]), None, str(step["kind"])))
    return result


def nodes_visited(record: ContactRecord) -> list[str]:
    skipped = ("input", "result", "fallback", "recording", "end")
    return [str(s["node"]) for s in record.ivr_path if s["kind"] not in skipped]


def inputs(record: ContactRecord) -> list[tuple[str, str | None, str | None]]:
    return [(str(s["node"]), s.get("digits"), s.get("note")) for s in record.ivr_path if s["kind"] == "input"]


def copy_config(target: Path, extra: Path | None = None, extra_skills: Path | None = None) -> Path:
    """The shipped dialplan and skills, plus the tests' own short flows, in a folder we may break."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT / "dialplan", target / "dialplan")
    shutil.copytree(ROOT / "skills", target / "skills")
    if extra is not None:
        shutil.copy(extra, target / "dialplan" / extra.name)
    if extra_skills is not None:
        shutil.copy(extra_skills, target / "skills" / extra_skills.name)
    return target


def ari_json(settings: Settings, path: str) -> Any:
    return pbx.ari_get(settings, path)
