"""A fake ARI server (aiohttp) for **fault injection only**.

The real Asterisk 22 is exercised by the e2e suite. This fake exists for what a real Asterisk
cannot do on demand: scripted error statuses, slow answers, a keep-alive socket closed under a
request, and every way an event websocket can die (clean close frame, TCP reset, half-open
socket that stops answering pings, handshake refused with 401/503).

Example::

    async with FakeAri() as fake:
        fake.script("DELETE", "/channels/c1", status=404, json={"message": "Channel not found"})
        rest = AriRest(fake.base_url, fake.user, fake.password)
        ...
        await fake.wait_for_socket()
        await fake.send_event(stasis_start("c1"))
        fake.drop_socket()
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

__all__ = [
    "FakeAri",
    "FakeSleep",
    "RecordedRequest",
    "channel_json",
    "event",
    "eventually",
]


async def eventually(condition: Callable[[], bool], *, within: float = 3.0, interval: float = 0.005) -> None:
    """Poll ``condition`` until it holds; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


class FakeSleep:
    """Injectable ``sleep`` + ``clock``: records delays and advances a fake clock instantly.

    Once the fake clock passes ``park_after`` the sleep parks (until :meth:`release` or
    cancellation), so a reconnect loop can be observed over a bounded stretch of fake time.
    """

    def __init__(self, park_after: float | None = None) -> None:
        self.delays: list[float] = []
        self.now = 0.0
        self.park_after = park_after
        self.parked = False
        self._released = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        if self.park_after is not None and self.now >= self.park_after:
            self.parked = True
            await self._released.wait()
            self.parked = False
        await asyncio.sleep(0)

    def release(self) -> None:
        """Stop parking: the parked sleep returns and later ones are instant again."""
        self.park_after = None
        self._released.set()

    def clock(self) -> float:
        return self.now


@dataclass
class RecordedRequest:
    method: str
    raw_path: str  # still percent-encoded, e.g. /ari/deviceStates/PJSIP%2F1001
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any

    def param(self, name: str) -> str | None:
        values = self.params(name)
        return values[0] if values else None

    def params(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]


@dataclass
class _Scripted:
    status: int
    body: Any
    delay: float
    disconnect: bool


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    request: web.Request
    half_open: bool = False
    pings: int = 0


@dataclass
class FakeAri:
    user: str = "unico"
    password: str = "fake-Pa55-w0rd"
    #: HTTP status to refuse websocket handshakes with (None: accept)
    refuse: int | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    ws_attempts: int = 0
    ws_accepted: int = 0
    ws_queries: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._scripts: dict[tuple[str, str], deque[_Scripted]] = defaultdict(deque)
        self._sockets: list[_Socket] = []
        self._stopping = asyncio.Event()
        self._server: TestServer | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self._server = TestServer(app)
        await self._server.start_server(shutdown_timeout=0.5)

    async def close(self) -> None:
        self._stopping.set()
        for sock in list(self._sockets):
            transport = sock.request.transport
            if transport is not None:
                transport.abort()
        if self._server is not None:
            await self._server.close()

    async def __aenter__(self) -> FakeAri:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/"))

    @property
    def auth_header(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"

    # --- REST -----------------------------------------------------------------------------------

    def script(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: Any = None,
        delay: float = 0.0,
        disconnect: bool = False,
        times: int = 1,
    ) -> None:
        """Queue ``times`` answers for ``method path`` (path below /ari, percent-encoded).

        ``disconnect``: close the TCP connection instead of answering (a keep-alive race).
        Unscripted requests get 204 No Content.
        """
        for _ in range(times):
            self._scripts[(method, path)].append(_Scripted(status, json, delay, disconnect))

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.raw_path == "/ari" + path]

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            body = await request.json()
        raw_path = request.rel_url.raw_path
        self.requests.append(
            RecordedRequest(
                method=request.method,
                raw_path=raw_path,
                query=list(request.query.items()),
                headers=dict(request.headers),
                body=body,
            )
        )
        if request.headers.get("Authorization") != self.auth_header:
            return web.json_response({"message": "Authentication required"}, status=401)
        queue = self._scripts.get((request.method, raw_path.removeprefix("/ari")))
        if not queue:
            return web.Response(status=204)
        answer = queue.popleft()
        if answer.delay:
            try:
                async with asyncio.timeout(answer.delay):
                    await self._stopping.wait()
            except TimeoutError:
                pass
        if answer.disconnect:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=204)  # never reaches the client
        if answer.body is None:
            return web.Response(status=answer.status)
        return web.json_response(answer.body, status=answer.status)

    # --- event websocket ----------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self.ws_attempts += 1
        self.ws_queries.append(dict(request.query))
        if request.headers.get("Authorization") != self.auth_header:
            return web.json_response({"message": "Authentication required"}, status=401)
        if self.refuse is not None:
            return web.json_response({"message": "refused by test"}, status=self.refuse)
        # autoping=False: the fake answers pings itself, so it can stop doing so (half-open).
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        sock = _Socket(ws, request)
        self._sockets.append(sock)
        self.ws_accepted += 1
        try:
            async for msg in ws:
                if msg.type is WSMsgType.PING:
                    sock.pings += 1
                    if not sock.half_open:
                        await ws.pong(msg.data)
        finally:
            self._sockets.remove(sock)
        return ws

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    async def wait_for_socket(self, count: int = 1, within: float = 3.0) -> None:
        """Wait until ``count`` handshakes in total have been accepted and one is open."""
        await eventually(lambda: self.ws_accepted >= count and bool(self._sockets), within=within)

    def _current(self) -> _Socket:
        assert self._sockets, "no open event socket"
        return self._sockets[-1]

    async def send_event(self, payload: dict[str, Any]) -> None:
        await self._current().ws.send_json(payload)

    async def send_raw(self, text: str) -> None:
        await self._current().ws.send_str(text)

    async def close_socket(self, code: int = 1000) -> None:
        """A clean close frame, as after ``ari shutdown websocket session``."""
        await self._current().ws.close(code=code)

    def drop_socket(self) -> None:
        """An abrupt TCP drop: no close frame."""
        transport = self._current().request.transport
        assert transport is not None
        transport.abort()

    def go_half_open(self) -> None:
        """Keep the TCP connection but stop answering pings (peer frozen, NAT entry gone)."""
        self._current().half_open = True


# --- event payload builders (shape of Asterisk 22 events.json) ---------------------------------


def channel_json(channel_id: str, **overrides: Any) -> dict[str, Any]:
    chan: dict[str, Any] = {
        "id": channel_id,
        "name": f"PJSIP/trunk-{channel_id}",
        "state": "Ring",
        "caller": {"name": "Mario Rossi", "number": "0612345678"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-trunk",
            "exten": "100",
            "priority": 2,
            "app_name": "Stasis",
            "app_data": "unico,inbound,100",
        },
        "creationtime": "2026-01-01T10:00:00.000+0100",
        "language": "it",
    }
    chan.update(overrides)
    return chan


def event(event_type: str, **fields: Any) -> dict[str, Any]:
    """``event("ChannelDtmfReceived", channel=channel_json("c1"), digit="5")``."""
    return {
        "type": event_type,
        "application": "unico",
        "timestamp": "2026-01-01T10:00:01.000+0100",
        **fields,
    }
