"""An ARI proxy the tests can break: REST and the events websocket between a controller and the
real Asterisk, cut (TCP reset), frozen (half-open: the connection stays, no byte and no pong passes)
or closed cleanly (a websocket close frame, code 1000), while the process and Asterisk live on.

Every REST request passing through is logged (method and path), so a test can check that nothing
was sent twice across a reconnect.

Example::

    async with AriProxy("http://127.0.0.1:18088") as proxy:
        settings = settings.model_copy(update={"ari_url": proxy.url})
        proxy.cut()          # every connection reset, new ones refused until restore()
        proxy.freeze()       # connections stay open, nothing passes (half-open)
        await proxy.close_sockets()  # a clean close frame to every event socket
        proxy.restore()
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

import aiohttp
from aiohttp import WSMsgType, web


class AriProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.url = ""
        self.mode = "pass"  # pass | cut | frozen
        self.requests: list[tuple[str, str]] = []
        self.sockets_opened = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._thaw = asyncio.Event()
        self._thaw.set()

    async def __aenter__(self) -> AriProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # --- faults ---------------------------------------------------------------------------------

    def cut(self) -> None:
        """Reset every event socket at the TCP level and refuse what comes next (until restore)."""
        self.mode = "cut"
        for ws in list(self._sockets):
            transport = ws._req.transport if ws._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()
        self._sockets.clear()

    def freeze(self) -> None:
        """Half-open: connections stay up, nothing passes either way (pings go unanswered)."""
        self.mode = "frozen"
        self._thaw.clear()

    async def close_sockets(self, code: int = 1000) -> None:
        """A clean close frame to every event socket (what Asterisk sends when it shuts down)."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=b"proxy closing")

    def restore(self) -> None:
        self.mode = "pass"
        self._thaw.set()

    # --- relay ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "cut":
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        await self._thaw.wait()
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        self.requests.append((request.method, request.path))
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            headers=headers,
            data=await request.read() if request.can_read_body else None,
        ) as upstream:
            body = await upstream.read()
            await self._thaw.wait()
            return web.Response(
                status=upstream.status, body=body, headers={"Content-Type": upstream.headers.get("Content-Type", "")}
            )

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        auth = {"Authorization": request.headers.get("Authorization", "")}
        try:
            upstream = await self._session.ws_connect(self.target + request.path_qs, headers=auth, autoping=False)
        except aiohttp.WSServerHandshakeError as exc:
            raise web.HTTPException(reason=exc.message) from None
        client = web.WebSocketResponse(autoping=False)
        await client.prepare(request)
        self._sockets.add(client)
        self.sockets_opened += 1

        async def down() -> None:  # Asterisk -> controller
            async for message in upstream:
                await self._thaw.wait()
                if client.closed:
                    break
                if message.type is WSMsgType.TEXT:
                    await client.send_str(message.data)
                elif message.type is WSMsgType.PING:
                    await client.ping(message.data)
                elif message.type is WSMsgType.PONG:
                    await client.pong(message.data)

        async def up() -> None:  # controller -> Asterisk (pings of its heartbeat, mostly)
            async for message in client:
                if self.mode == "frozen":
                    continue  # swallowed: a half-open connection
                if message.type is WSMsgType.TEXT:
                    await upstream.send_str(message.data)
                elif message.type is WSMsgType.PING:
                    await upstream.ping(message.data)
                elif message.type is WSMsgType.PONG:
                    await upstream.pong(message.data)

        tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._sockets.discard(client)
            with contextlib.suppress(Exception):
                await upstream.close()
            with contextlib.suppress(Exception):
                await client.close()
        return client
