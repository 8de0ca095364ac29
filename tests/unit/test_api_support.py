"""The REST API's test bench (no tests here): the app on aiohttp's test server, a real SQLite
database, a real ACD on the test Redis, and a stand-in controller with only what the routes read.

Principals every bench has (``Bench.tokens``)::

    admin   the settings' admin token (built-in principal, role admin)
    sup     a supervisor user
    op1     operator user of op1001
    op2     operator user of op1002

Example::

    async with open_bench(tmp_path) as bench:
        status, body = await bench.call("GET", "/api/me", as_="op1")
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select

from acd.agents import Agent, AgentState
from contacts import ContactStore, upgrade
from contacts.models import AuditEntry
from contacts.users import Role, UserStore
from ivr.config import IvrConfig, load_config
from unico.acd_service import AcdService, CallMessage
from unico.api import USERS, make_app
from unico.controller import Controller, ReloadResult

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_TOKEN = "test-admin-token-0123456789"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
_CONFIG: list[IvrConfig] = []


def config() -> IvrConfig:
    if not _CONFIG:
        _CONFIG.append(load_config(ROOT / "dialplan", ROOT / "skills"))
    return _CONFIG[0]


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


class FakeSupervision:
    """``controller.supervision``: records requests; unknown calls raise LookupError."""

    def __init__(self) -> None:
        self.calls: set[str] = set()
        self.requests: list[tuple[str, str, str]] = []

    async def monitor(self, call_id: str, supervisor: str, mode: str) -> dict[str, Any]:
        if call_id not in self.calls:
            raise LookupError(f"no conversation {call_id!r} to monitor")
        if not supervisor.startswith("sup"):
            raise ValueError(f"{supervisor!r} is not a supervisor")
        self.requests.append((call_id, supervisor, mode))
        return {"leg": f"{call_id}-mon1"}


@dataclass
class Bench:
    client: TestClient[web.Request, web.Application]
    store: ContactStore
    users: UserStore
    controller: Any
    acd: AcdService | None
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)
    #: messages the ACD delivered to calls of this process
    inbox: list[CallMessage] = field(default_factory=list)
    local_calls: set[str] = field(default_factory=set)

    async def call(
        self,
        method: str,
        path: str,
        *,
        as_: str | None = "admin",
        body: Any = None,
        data: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request as the principal ``as_`` (None: no Authorization header); (status, body)."""
        sent = dict(headers or {})
        if as_ is not None:
            sent["Authorization"] = f"Bearer {self.tokens[as_]}"
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        response = await self.client.request(method, path, json=body, data=data, headers=sent)
        if response.content_type == "application/json":
            return response.status, json.loads(await response.text())
        return response.status, await response.read()

    async def audit(self) -> list[tuple[str, str, str | None, dict[str, Any]]]:
        async with self.store.sessions() as session:
            rows = await session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.subject, AuditEntry.detail).order_by(
                    AuditEntry.id
                )
            )
            return [(r.actor, r.action, r.subject, r.detail) for r in rows]

    # --- live state ----------------------------------------------------------------------------

    def deliver(self, call_id: str, message: CallMessage) -> bool:
        if call_id not in self.local_calls:
            return False
        self.inbox.append(message)
        return True

    async def enqueue(self, call_id: str, queue: str, *, waited: float = 0.0) -> None:
        assert self.acd is not None
        spec = self.acd.config.queues[queue]
        now = self.clock()
        call = self.acd.waiting_call(call_id, spec, queue, priority=0, enqueued_at=now - waited, waited=waited)
        self.local_calls.add(call_id)
        await self.acd.live.add_call(call)

    async def talking(self, agent_id: str, call_id: str, state: AgentState = AgentState.ON_CALL) -> None:
        """``agent_id`` holds ``call_id`` (ringing or talking), owned by this process."""
        assert self.acd is not None
        agent = Agent(id=agent_id, state=state, since=self.clock(), call_id=call_id, registered=True)
        await self.acd.live.set_agent(agent)
        await self.acd.live.set_owner(call_id, self.acd.controller_id)
        self.local_calls.add(call_id)

    # --- records -------------------------------------------------------------------------------

    async def contact(
        self,
        contact_id: str,
        *,
        caller: str | None = "+393331234567",
        operator: str | None = None,
        queue: str | None = "general",
        started_at: datetime = NOW,
        ended: bool = True,
        outcome: str = "answered",
    ) -> None:
        await self.store.start_contact(
            contact_id=contact_id,
            channel_id=contact_id,
            caller=caller,
            dialled="800100100",
            language="it",
            started_at=started_at,
        )
        await self.store.update_contact(
            contact_id,
            queue=queue,
            operator=operator,
            queued_at=started_at + timedelta(seconds=30),
            answered_at=started_at + timedelta(seconds=42) if operator else None,
        )
        if ended:
            await self.store.finish_contact(
                contact_id=contact_id,
                ended_at=started_at + timedelta(minutes=5),
                outcome=outcome,
                ivr_path=[],
                data={},
                language="it",
            )


@asynccontextmanager
async def open_bench(
    tmp_path: Path, *, with_acd: bool = True, supervision: bool = True, console: bool = False
) -> AsyncIterator[Bench]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state' / 'unico.db'}"
    await upgrade(url)
    redis: aioredis.Redis | None = None
    async with ContactStore(url) as store:
        clock = Clock()
        holder: dict[str, Bench] = {}

        async def reload() -> ReloadResult:
            return ReloadResult(ok=True, version="v2", errors=[])

        settings = SimpleNamespace(admin_token=SecretStr(ADMIN_TOKEN), complaint_deadlines={}, timezone="Europe/Rome")
        controller = SimpleNamespace(
            settings=settings,
            store=store,
            config=config(),
            acd=None,
            reload=reload,
            health=lambda: {"ready": True, "calls": 0},
        )
        if supervision:
            controller.supervision = FakeSupervision()
        acd = None
        if with_acd:
            redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
            acd = AcdService(
                redis=redis,
                prefix=f"test:api:{uuid.uuid4().hex}:",
                controller_id="ctl-api",
                config=config,
                deliver=lambda call_id, message: holder["bench"].deliver(call_id, message),
                clock=clock,
                sweep_interval=3600,
            )
            await acd.start()
            controller.acd = acd
        app = make_app(cast(Controller, controller), console=console)
        client = TestClient(TestServer(app))
        await client.start_server()
        users = app[USERS]
        bench = Bench(client=client, store=store, users=users, controller=controller, acd=acd, clock=clock)
        holder["bench"] = bench
        bench.tokens["admin"] = ADMIN_TOKEN
        for name, role, operator in (
            ("sup", Role.SUPERVISOR, None),
            ("op1", Role.OPERATOR, "op1001"),
            ("op2", Role.OPERATOR, "op1002"),
        ):
            _, bench.tokens[name] = await users.create(name, role, operator=operator, by="test")
        try:
            yield bench
        finally:
            await client.close()
            if acd is not None and redis is not None:
                await acd.close()
                await acd.live.wipe()
                await redis.aclose()
