"""The console's socket and snapshot route on a real aiohttp server, real Redis and a SQLite file:
the token handshake (first message only, never the URL), what each role receives, push latency,
and a slow client dropped without holding up the others.

The controller is a stand-in with the attributes the console reads (``settings``, ``config``,
``acd``, ``store``); tokens are real users of ``contacts.users`` plus the settings' admin token.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError

from acd.agents import Agent, AgentState
from acd.live import LiveState
from acd.queues import QueueSpec
from acd.roster import OperatorSpec
from acd.routing import WaitingCall
from contacts import ContactStore, upgrade
from contacts.users import UserStore
from ivr.config import IvrConfig
from ivr.hours import Calendar, CalendarSpec
from ivr.schema import DialplanSettings
from unico.api.context import CONTROLLER, USERS
from unico.console import add_routes
from unico.console import http as console_http
from unico.console.live import Client, LiveHub, Watch
from unico.console.snapshot import CallDetails
from unico.console.today import TodayCache

REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


def small_config() -> IvrConfig:
    queue = QueueSpec.model_validate({"name": "General", "tier": "general", "calendar": "always"})
    roster = {
        op: OperatorSpec.model_validate({"name": f"Op {op}", "site": "roma", "tiers": ["general"], "skills": {}})
        for op in ("op1", "op2")
    }
    return IvrConfig(
        settings=DialplanSettings(),
        numbers={},
        nodes={},
        prompts={},
        calendars={"always": Calendar.from_spec(CalendarSpec(hours={"mon-sun": "00:00-24:00"}, holidays=None))},
        queues={"general": queue},
        version="test",
        operators=roster,
    )


@dataclass
class Rig:
    client: TestClient[Any, Any]
    live: LiveState
    tokens: dict[str, str]

    async def socket(self, first: dict[str, Any] | None, path: str = "/ws/live") -> aiohttp.ClientWebSocketResponse:
        ws = await self.client.ws_connect(path)
        if first is not None:
            await ws.send_str(json.dumps(first))
        return ws


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await redis.ping()
    except RedisConnectionError:
        await redis.aclose()
        pytest.fail("no Redis on 127.0.0.1:6379: `make test` starts it (scripts/bootstrap.sh)")
    live = LiveState(redis, f"test:console:{uuid.uuid4().hex}:")
    url = f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"
    await upgrade(url)
    store = ContactStore(url)
    await store.open()
    users = UserStore(store.sessions)
    tokens = {"admin": ADMIN_TOKEN}
    for name, role, operator in (("sup", "supervisor", None), ("anna", "operator", "op1"), ("bea", "operator", "op2")):
        _, tokens[name] = await users.create(name, role, operator=operator, by="test")
    config = small_config()
    controller = SimpleNamespace(
        settings=SimpleNamespace(admin_token=SecretStr(ADMIN_TOKEN)),
        config=config,
        acd=SimpleNamespace(redis=redis, live=live),
        store=store,
    )
    app = web.Application()
    app[CONTROLLER] = controller  # type: ignore[assignment]
    app[USERS] = users
    add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Rig(client, live, tokens)
    finally:
        await client.close()
        await live.wipe()
        await redis.aclose()
        await store.close()


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> int | None:
    """Read until the server closes; the close code."""
    while True:
        message = await ws.receive(timeout=timeout)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return ws.close_code


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        assert message.type is aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        if data["type"] == kind:
            return data


async def test_given_no_token_or_a_bad_one_when_socket_opens_then_closed_with_4401(rig: Rig) -> None:
    assert await closed_with(await rig.socket({"view": "wallboard"})) == 4401
    assert await closed_with(await rig.socket({"token": "nobody-has-this-token"})) == 4401
    ws = await rig.socket(None)
    await ws.send_str("not json")
    assert await closed_with(ws) == 4401


async def test_given_token_in_the_url_then_refused_even_if_valid(rig: Rig) -> None:
    ws = await rig.socket({"token": rig.tokens["sup"]}, path=f"/ws/live?token={rig.tokens['sup']}")
    assert await closed_with(ws) == 4401


async def test_given_silent_client_then_closed_after_the_handshake_timeout(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_http, "HANDSHAKE_TIMEOUT", 0.2)
    assert await closed_with(await rig.socket(None)) == 4401


async def test_given_operator_when_asking_for_wallboard_or_another_operator_then_4403(rig: Rig) -> None:
    token = rig.tokens["anna"]
    assert await closed_with(await rig.socket({"token": token, "view": "wallboard"})) == 4403
    assert await closed_with(await rig.socket({"token": token, "view": "operator", "operator": "op2"})) == 4403


async def test_given_supervisor_following_unknown_operator_then_4404(rig: Rig) -> None:
    ws = await rig.socket({"token": rig.tokens["sup"], "view": "operator", "operator": "op9"})
    assert await closed_with(ws) == 4404


async def test_given_operator_then_only_their_own_agent_and_a_screen_pop_when_a_call_rings(rig: Rig) -> None:
    ws = await rig.socket({"token": rig.tokens["anna"]})
    hello = await next_of(ws, "hello")
    assert (hello["role"], hello["operator"], hello["wallboard"]) == ("operator", "op1", False)
    assert [q["name"] for q in hello["queues"]] == ["general"]
    assert "break" in hello["pause_reasons"] and "supervisor" not in hello["pause_reasons"]
    first = await next_of(ws, "agent")
    assert (first["id"], first["state"]) == ("op1", "logged_out")

    await rig.live.set_agent(Agent(id="op2", state=AgentState.READY, since=1.0, registered=True))
    await rig.live.set_agent(Agent(id="op1", state=AgentState.READY, since=2.0, registered=True))
    ready = await next_of(ws, "agent")
    assert (ready["id"], ready["state"]) == ("op1", "ready")
    await rig.live.set_agent(Agent(id="op1", state=AgentState.RINGING, since=3.0, registered=True, call_id="c-7"))
    ringing = await next_of(ws, "agent")
    assert (ringing["state"], ringing["call_id"]) == ("ringing", "c-7")
    pop = await next_of(ws, "screenpop")
    assert (pop["call_id"], pop["state"], pop["operator"]) == ("c-7", "ringing", "op1")
    await rig.live.set_agent(Agent(id="op2", state=AgentState.NOT_READY, since=4.0, registered=True))
    await asyncio.sleep(0.4)  # what a leak would need to arrive: two debounce periods and more
    await ws.send_str('{"type":"ping"}')
    # everything up to the pong: nothing about op2, no wallboard
    while True:
        message = json.loads((await ws.receive(timeout=2)).data)
        if message["type"] == "pong":
            break
        assert message["type"] in ("agent", "screenpop") and message.get("id", "op1") == "op1", message
    await ws.close()


async def test_given_supervisor_then_wallboard_at_once_and_again_within_a_second_of_a_change(rig: Rig) -> None:
    ws = await rig.socket({"token": rig.tokens["sup"]})
    hello = await next_of(ws, "hello")
    assert (hello["role"], hello["wallboard"]) == ("supervisor", True)
    board = await next_of(ws, "wallboard")
    (general,) = board["queues"]
    assert general["waiting"] == 0 and general["operators"]["logged_out"] == 2

    started = time.monotonic()
    await rig.live.add_call(
        WaitingCall(
            call_id="c-1",
            queue="general",
            priority=0,
            enqueued_at=time.time() - 4,
            requirements={},
            tier="general",
        )
    )
    board = await next_of(ws, "wallboard")
    elapsed = time.monotonic() - started
    (general,) = board["queues"]
    assert general["waiting"] == 1 and general["longest_wait"] >= 4
    assert elapsed < 1.0, f"pushed after {elapsed:.2f} s"
    await rig.live.remove_call("c-1")
    await ws.close()


async def test_given_admin_token_then_wallboard_by_default_and_may_follow_an_operator(rig: Rig) -> None:
    ws = await rig.socket({"token": ADMIN_TOKEN})
    assert (await next_of(ws, "hello"))["role"] == "admin"
    assert (await next_of(ws, "wallboard"))["type"] == "wallboard"
    await ws.close()
    ws = await rig.socket({"token": ADMIN_TOKEN, "view": "operator", "operator": "op2"})
    hello = await next_of(ws, "hello")
    assert (hello["operator"], hello["wallboard"]) == ("op2", False)
    assert (await next_of(ws, "agent"))["id"] == "op2"
    await ws.close()


async def test_wallboard_json_needs_a_supervisor_or_admin(rig: Rig) -> None:
    assert (await rig.client.get("/api/wallboard")).status == 401
    operator = await rig.client.get("/api/wallboard", headers={"Authorization": f"Bearer {rig.tokens['anna']}"})
    assert operator.status == 403
    answer = await rig.client.get("/api/wallboard", headers={"Authorization": f"Bearer {rig.tokens['sup']}"})
    assert answer.status == 200
    body = await answer.json()
    assert body["type"] == "wallboard" and body["queues"][0]["name"] == "general"
    assert body["areas"] == [{"name": "always", "state": "open", "next_change": None, "note": None}]


async def test_pages_and_their_files_load_without_credentials_with_a_strict_policy(rig: Rig) -> None:
    for path in ("/wallboard", "/operator"):
        page = await rig.client.get(path)
        assert page.status == 200 and page.content_type == "text/html"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        text = await page.text()
        assert "/console/static/console.css" in text and "<script>" not in text, "no inline script"
    for name in ("console.js", "wallboard.js", "floor.js", "operator.js", "console.css"):
        assert (await rig.client.get(f"/console/static/{name}")).status == 200
    assert (await rig.client.get("/console/static/")).status in (403, 404), "no directory listing"


class StuckSocket:
    """A websocket whose peer never reads: every send waits forever."""

    closed = False

    async def send_str(self, data: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int = 1000, message: bytes = b"") -> bool:
        self.closed = True
        return True


class FastSocket:
    closed = False

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_str(self, data: str) -> None:
        self.sent.append(data)


async def test_given_a_client_that_cannot_keep_up_then_dropped_and_the_others_served_meanwhile() -> None:
    async def no_counts(now: object) -> dict[str, Any]:
        return {}

    hub = LiveHub(
        redis=None,  # type: ignore[arg-type]
        live=None,  # type: ignore[arg-type]
        config=small_config,
        today=TodayCache(no_counts),
        send_timeout=0.2,
    )
    stuck, fast = StuckSocket(), FastSocket()
    slow_client = Client(stuck, Watch(wallboard=True, operator=None))  # type: ignore[arg-type]
    fast_client = Client(fast, Watch(wallboard=True, operator=None))  # type: ignore[arg-type]
    hub.clients |= {slow_client, fast_client}
    started = time.monotonic()
    sent = await asyncio.gather(hub._send(slow_client, {"type": "x"}), hub._send(fast_client, {"type": "x"}))
    assert sent == [False, True]
    assert fast.sent == ['{"type": "x"}']
    assert time.monotonic() - started < 1.0
    assert hub.clients == {fast_client} and hub.dropped == 1
    await hub.close()
    assert stuck.closed


async def test_given_a_cancel_turned_into_an_error_below_when_the_hub_stops_then_its_pump_ends_anyway(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLAlchemy can raise an error of its own when a cancel lands inside a session, and the pump
    survives errors (a database blip); it must still end when the hub stops, not run on."""
    entered = asyncio.Event()

    async def counts_eating_the_cancel(now: object) -> dict[str, Any]:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("can't operate on closed transaction") from None
        return {}

    hub = LiveHub(
        redis=None,  # type: ignore[arg-type]
        live=rig.live,
        config=small_config,
        today=TodayCache(counts_eating_the_cancel),
        refresh=60.0,
    )
    board = FastSocket()
    hub.clients.add(Client(board, Watch(wallboard=True, operator=None)))  # type: ignore[arg-type]
    pump = asyncio.create_task(hub._pump(), name="console-pump")
    hub._tasks = [pump]
    hub.note("queue:general")
    await asyncio.wait_for(entered.wait(), 3.0)
    await hub._stop()
    assert pump.done() and pump.cancelled(), "the pump ran on after the hub stopped"
    assert "did not stop" not in caplog.text
    assert len(board.sent) == 1, "the rebuild under way still went out, with the last counts"


# --- the supervisors' panel ("floor") -------------------------------------------------------------


async def test_given_a_conversation_then_the_supervisor_gets_the_floor_with_the_caller_masked_and_operators_never(
    rig: Rig, tmp_path: Path
) -> None:
    store = ContactStore(f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}")
    await store.open()
    try:
        started = await store.start_contact(
            contact_id="c-9",
            channel_id="c-9",
            caller="+393331234567",
            dialled="803160",
            language="it",
            started_at=datetime.now(UTC),
        )
        assert started and await store.update_contact("c-9", queue="general")
    finally:
        await store.close()
    now = time.time()
    await rig.live.set_agent(Agent(id="op1", state=AgentState.ON_CALL, since=now - 30, registered=True, call_id="c-9"))

    sup = await rig.socket({"token": rig.tokens["sup"]})
    board = await next_of(sup, "wallboard")
    floor = board["floor"]
    (talk,) = floor["talking"]
    assert (talk["call_id"], talk["operator"], talk["queue"], talk["caller"]) == (
        "c-9",
        "op1",
        "general",
        "+39 333 ***4567",
    )
    assert talk["talking"] >= 30
    assert [(op["id"], op["state"], op["call_id"]) for op in floor["operators"]] == [
        ("op1", "on_call", "c-9"),
        ("op2", "logged_out", None),
    ]
    assert floor["supervisors"] == []

    # an operator's socket: their own state, never the floor, never another operator
    anna = await rig.socket({"token": rig.tokens["anna"]})
    await next_of(anna, "agent")
    await rig.live.set_agent(Agent(id="op2", state=AgentState.READY, since=now, registered=True))
    assert [op["state"] for op in (await next_of(sup, "wallboard"))["floor"]["operators"]] == ["on_call", "ready"]
    await anna.send_str('{"type":"ping"}')
    while True:
        raw = (await anna.receive(timeout=2)).data
        message = json.loads(raw)
        if message["type"] == "pong":
            break
        assert "floor" not in message and "op2" not in raw and "4567" not in raw, message
    answer = await rig.client.get("/api/wallboard", headers={"Authorization": f"Bearer {rig.tokens['sup']}"})
    assert (await answer.json())["floor"]["talking"][0]["call_id"] == "c-9"
    for ws in (sup, anna):
        await ws.close()


async def test_given_wallboard_clients_with_and_without_the_floor_then_only_the_first_get_it_and_details_read_once(
    rig: Rig,
) -> None:
    async def no_counts(now: object) -> dict[str, Any]:
        return {}

    asked: list[set[str]] = []

    async def details(ids: Any) -> dict[str, CallDetails]:
        asked.append(set(ids))
        return {"c-1": CallDetails(queue="general", caller="+393331234567")}

    hub = LiveHub(redis=None, live=rig.live, config=small_config, today=TodayCache(no_counts), details=details)  # type: ignore[arg-type]
    with_floor, without = FastSocket(), FastSocket()
    hub.clients |= {
        Client(with_floor, Watch(wallboard=True, operator=None, floor=True)),  # type: ignore[arg-type]
        Client(without, Watch(wallboard=True, operator=None)),  # type: ignore[arg-type]
    }
    await rig.live.set_agent(
        Agent(id="op1", state=AgentState.RINGING, since=time.time(), registered=True, call_id="c-1")
    )
    for _ in range(2):
        hub.note("agent:op1")
        await hub.flush()
    assert asked == [{"c-1"}], "a call's contact row is read once while the same operator holds it"
    assert all("floor" not in json.loads(sent) for sent in without.sent) and len(without.sent) == 2
    floors = [json.loads(sent)["floor"] for sent in with_floor.sent]
    assert floors[-1]["operators"][0]["queue"] == "general"

    # answered by another operator after a transfer: read again
    await rig.live.set_agent(Agent(id="op1", state=AgentState.READY, since=time.time(), registered=True))
    await rig.live.set_agent(
        Agent(id="op2", state=AgentState.ON_CALL, since=time.time(), registered=True, call_id="c-1")
    )
    hub.note("agent:op2")
    await hub.flush()
    assert asked == [{"c-1"}, {"c-1"}]
    (talk,) = json.loads(with_floor.sent[-1])["floor"]["talking"]
    assert (talk["operator"], talk["caller"]) == ("op2", "+39 333 ***4567")
    await hub.close()
