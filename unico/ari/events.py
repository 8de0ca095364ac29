"""The ARI event websocket, kept alive by a supervised reconnect loop.

Theory of operation
-------------------
One task owns the socket: connect ``GET /ari/events?app=<app>&subscribeAll=false`` (Basic auth
header, never ``api_key``), emit :class:`Connected`, then read frames and hand each parsed event
to a **synchronous** ``on_event`` callback (normally :meth:`Dispatcher.dispatch`), so the reader
can never be stalled by a handler. Asterisk drops a client that does not read within
``websocket_write_timeout`` (ari.md §3 "Slow consumer").

Every way of losing the socket ends in the same place: emit :class:`Disconnected`, sleep a
backoff delay, reconnect. That covers a close frame, a TCP reset, a half-open socket (aiohttp's
``heartbeat`` pings every ``heartbeat`` s and gives up when no pong comes within half of it;
Asterisk answers pings in ``res_http_websocket.c``), and a refused handshake (401, 503 ...).

Backoff is exponential with *full jitter*: ``uniform(0, min(cap, base * 2**attempt))``, never
below ``floor`` so that even an unlucky random draw cannot make a busy loop. ``attempt`` resets
once a connection stayed up ``stable_after`` seconds. The random source, the sleep and the clock
are injectable for tests.

While the socket is down Asterisk *discards* our app's events and keeps channels parked in
Stasis (ari.md §3): a ``Connected(reconnect=True)`` means "reconcile now" (list channels and
bridges, compare with our state).

Example::

    stream = AriEventStream(url, "unico", password, app="unico", on_event=dispatcher.dispatch)
    stream.start()
    async with asyncio.timeout(10):
        await stream.wait_connected()
    ...
    await stream.close()
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from .errors import AriBadArgument
from .models import ApplicationReplaced, Connected, Disconnected, Event, parse_event
from .rest import basic_auth_header, normalize_base_url

__all__ = ["AriEventStream", "Backoff"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class Backoff:
    """Reconnect delays: exponential with full jitter, capped, with a floor.

    >>> Backoff(base=0.5, cap=15.0).delay(attempt=3, rand=1.0)
    4.0
    """

    base: float = 0.5
    cap: float = 15.0
    floor: float = 0.1
    #: a connection that lasted this long (seconds) resets the attempt counter
    stable_after: float = 10.0

    def delay(self, attempt: int, rand: float) -> float:
        """Delay before reconnect number ``attempt`` (0-based); ``rand`` is uniform in [0, 1)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 30))
        return max(self.floor, rand * ceiling)


class AriEventStream:
    """Supervised ARI event websocket. ``on_event`` must not block: it is called inline."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        app: str | Sequence[str],
        on_event: Callable[[Event], None],
        heartbeat: float = 5.0,
        connect_timeout: float = 5.0,
        backoff: Backoff | None = None,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        apps = [app] if isinstance(app, str) else list(app)
        if not apps or not all(apps):
            raise AriBadArgument("app must name at least one Stasis application")
        self._url = normalize_base_url(base_url) / "events"
        self._params = {"app": ",".join(apps), "subscribeAll": "false"}
        self._apps = tuple(apps)
        self._auth_header = basic_auth_header(user, password)
        self._on_event = on_event
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff()
        self._rng = rng
        self._sleep = sleep
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._ever_connected = False
        self._replaced = False
        self.reconnects = 0
        """Successful connects after the first one."""
        self.connect_attempts = 0
        """Every handshake tried, successful or not."""
        self.events_received = 0
        #: events received by type (the health page: what Asterisk sends, so what could be filtered)
        self.events_by_type: collections.Counter[str] = collections.Counter()
        self.last_disconnect_reason = ""
        self.last_delay = 0.0

    def __repr__(self) -> str:
        return f"AriEventStream(url={str(self._url)!r}, app={self._params['app']!r})"

    @property
    def connected(self) -> bool:
        """True while the socket is open (for ``/ready``)."""
        return self._connected.is_set()

    @property
    def replaced(self) -> bool:
        """True after ``ApplicationReplaced``: the socket is open but receives nothing."""
        return self._replaced

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> asyncio.Task[None]:
        """Start the supervisor task (idempotent). Returns immediately."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"ari-events:{self._params['app']}")
        return self._task

    async def close(self) -> None:
        """Stop reconnecting, close the socket, and wait for the supervisor task to end."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def wait_connected(self) -> None:
        """Wait until the socket is open (bound it with ``asyncio.timeout``)."""
        await self._connected.wait()

    async def __aenter__(self) -> AriEventStream:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- supervisor -------------------------------------------------------------------------

    async def _run(self) -> None:
        session = aiohttp.ClientSession(
            headers={"Authorization": self._auth_header},
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self._connect_timeout, sock_connect=self._connect_timeout
            ),
        )
        attempt = 0
        try:
            while True:
                try:
                    ws, reason = await self._connect(session)
                    if ws is not None:
                        opened_at = self._clock()
                        reason = await self._serve(ws)
                        if self._clock() - opened_at >= self._backoff.stable_after:
                            attempt = 0
                except Exception as exc:
                    # A bug here must not end supervision: a listener that dies silently is
                    # the classic ARI failure (ari.md §3). Log it, back off, reconnect.
                    log.exception("ARI event stream: unexpected error")
                    reason = f"unexpected error: {type(exc).__name__}"
                self.last_disconnect_reason = reason
                self.last_delay = self._backoff.delay(attempt, self._rng())
                attempt += 1
                log.warning(
                    "ARI event socket down (%s); reconnect attempt %d in %.2f s",
                    reason,
                    attempt,
                    self.last_delay,
                )
                await self._sleep(self.last_delay)
        finally:
            await session.close()

    async def _connect(self, session: aiohttp.ClientSession) -> tuple[aiohttp.ClientWebSocketResponse | None, str]:
        self.connect_attempts += 1
        try:
            async with asyncio.timeout(self._connect_timeout):
                ws = await session.ws_connect(
                    self._url,
                    params=self._params,
                    heartbeat=self._heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=min(2.0, self._connect_timeout)),
                )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                log.error(
                    "ARI refused the event socket with HTTP %d: check the ARI user and password",
                    exc.status,
                )
            return None, f"handshake refused: HTTP {exc.status}"
        except TimeoutError:
            return None, f"connect timeout after {self._connect_timeout:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return None, f"connect failed: {type(exc).__name__}: {exc}"
        return ws, ""

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Own one open socket until it is lost; returns why."""
        reconnect = self._ever_connected
        if reconnect:
            self.reconnects += 1
        self._ever_connected = True
        self._replaced = False
        self._connected.set()
        log.info("ARI event socket connected (apps=%s, reconnect=%s)", self._apps, reconnect)
        self._emit(Connected(reconnect=reconnect))
        reason = "closed by us"  # unless _read returns or fails: we were cancelled
        try:
            reason = await self._read(ws)
        except Exception as exc:
            reason = f"unexpected error: {type(exc).__name__}"
            raise
        finally:
            self._connected.clear()
            await ws.close()
            if reason == "closed by us":
                log.info("ARI event socket closed (shutting down)")
            else:
                log.warning("ARI event socket lost: %s", reason)
            self._emit(Disconnected(reason=reason))
        return reason

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                self._on_text(msg.data)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                log.warning("ignoring a binary frame on the ARI event socket")
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                return f"close frame from Asterisk (code {ws.close_code})"
            elif msg.type is aiohttp.WSMsgType.ERROR:
                exc = ws.exception() or msg.data
                if isinstance(exc, aiohttp.ServerTimeoutError):
                    return f"heartbeat timeout ({exc})"
                return f"socket error: {type(exc).__name__}: {exc}"
            else:  # CLOSING / CLOSED: the peer went away without a close handshake
                return "connection lost"

    def _on_text(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            log.warning("ARI event frame is not JSON (%d chars), ignored", len(text))
            return
        self.events_received += 1
        event = parse_event(data)
        self.events_by_type[str(data.get("type")) if isinstance(data, dict) else "?"] += 1
        if isinstance(event, ApplicationReplaced):
            self._replaced = True
            log.error(
                "ApplicationReplaced: another websocket took ARI app %r; this controller no "
                "longer receives its events. Is a second controller running?",
                event.application,
            )
        self._emit(event)

    def _emit(self, event: Event) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("on_event callback failed for %s", type(event).__name__)
