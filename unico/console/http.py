"""The console's routes on the controller's web server: two pages, their files, a snapshot, a socket.

::

    GET /wallboard            the supervisors' wallboard (HTML; the page asks for a token)
    GET /operator             the operator page (HTML; the page asks for a token)
    GET /console/static/...   the pages' scripts and style (served here: no CDN, no build step)
    GET /api/wallboard        the wallboard snapshot as JSON, with the floor (supervisor or admin)
    GET /ws/live              websocket of live updates (see below)

Pages load without credentials (they hold no data); the data comes through the API and the socket
with the user's bearer token, which the page keeps in ``sessionStorage`` (gone with the tab).

The socket: a browser cannot set an ``Authorization`` header on a websocket, and a token in the
URL ends up in logs and history, so the **first message** carries it::

    -> {"token": "...", "view": "wallboard"}                      supervisor, admin
    -> {"token": "...", "view": "operator"}                       an operator: their own state
    -> {"token": "...", "view": "operator", "operator": "op1001"} a supervisor or admin following one
    <- {"type": "hello", "user", "role", "operator", "queues": [...], "pause_reasons": [...]}
    <- {"type": "wallboard", ..., "floor"}   on every change (debounced ~100 ms) and every 5 s;
                                         "floor" (operators, conversations, waiting calls) is
                                         the supervisors' panel: only supervisors and admins
    <- {"type": "agent", "id", "state", "reason", "call_id", ...}   when the operator's state changes
    <- {"type": "screenpop", "call_id", "state", "screenpop": {...} | null}   ringing, then answered
    -> {"type": "ping"}   <- {"type": "pong"}      (the server also pings every 20 s)

Close codes: 4401 no token, a bad one, or none within 10 s; 4403 the view is not for this role;
4404 unknown operator; 4408 the client could not keep up; 1011 no ACD on this controller.

Wiring: ``unico.web.make_app`` calls :func:`add_routes` (``unico.console.add_routes``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy.exc import SQLAlchemyError

from unico.api.agents import PAUSE_REASONS
from unico.api.auth import SUPERVISORS, Principal, Role, principal_for_token, requires
from unico.api.context import CONTROLLER
from unico.console.live import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_UNAUTHORIZED,
    LiveHub,
    ScreenPop,
    Watch,
)
from unico.console.snapshot import QueueCounts
from unico.console.today import TodayCache, call_details, today_counts

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
#: seconds a new socket has to send its token
HANDSHAKE_TIMEOUT = 10.0
#: only our own files, no inline script or style, no framing (the pages show customer data)
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

Authenticate = Callable[[web.Application, str], Awaitable[Principal | None]]


class Console:
    """The console's per-app state: the hub, made when the first socket needs it."""

    def __init__(self, authenticate: Authenticate, screenpop: ScreenPop | None) -> None:
        self.authenticate = authenticate
        self.screenpop = screenpop
        self.hub: LiveHub | None = None

    def hub_for(self, app: web.Application) -> LiveHub | None:
        """The hub on the controller's Redis and database; None when the controller has no ACD."""
        if self.hub is None:
            controller = app[CONTROLLER]
            acd = controller.acd
            if acd is None:
                return None

            async def counts(now: datetime) -> dict[str, QueueCounts]:
                # the queues of the config in force at each read: a reload applies
                return await today_counts(controller.store.sessions, controller.config.queues, now)

            self.hub = LiveHub(
                redis=acd.redis,
                live=acd.live,
                config=lambda: controller.config,
                today=TodayCache(counts),
                screenpop=self.screenpop,
                details=lambda ids: call_details(controller.store.sessions, ids),
            )
        return self.hub

    async def close(self, app: web.Application) -> None:
        if self.hub is not None:
            await self.hub.close()


CONSOLE = web.AppKey("console", Console)


def add_routes(
    app: web.Application, *, authenticate: Authenticate = principal_for_token, screenpop: ScreenPop | None = None
) -> None:
    """Add the pages, the snapshot and the socket to ``app`` (which holds the controller).

    ``authenticate(app, token)`` maps a bearer token to a principal (tests hand in their own);
    ``screenpop(operator, call_id)`` fills the socket's screen pops (without it the page reads
    ``GET /api/agents/{id}/screenpop`` itself).

    Example::

        app = web.Application()
        app[CONTROLLER] = controller
        add_routes(app)
    """
    console = Console(authenticate, screenpop)
    app[CONSOLE] = console
    app.on_shutdown.append(console.close)
    app.router.add_get("/wallboard", _page("wallboard.html"))
    app.router.add_get("/operator", _page("operator.html"))
    app.router.add_static("/console/static", STATIC, show_index=False, follow_symlinks=False)
    app.router.add_get("/api/wallboard", wallboard_json)
    app.router.add_get("/ws/live", live_socket)


def _page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = STATIC / name

    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "Content-Security-Policy": _CSP,
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    return page


@requires(*SUPERVISORS)
async def wallboard_json(request: web.Request, principal: Principal) -> web.Response:
    hub = request.app[CONSOLE].hub_for(request.app)
    if hub is None:
        return web.json_response({"error": "the ACD is not running (no Redis configured)"}, status=503)
    return web.json_response(await hub.wallboard(floor=True))


async def _close(ws: web.WebSocketResponse, code: int, why: str) -> web.WebSocketResponse:
    await ws.close(code=code, message=why.encode()[:120])
    return ws


def _first_message(data: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(data)
    except (TypeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


async def live_socket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=16 * 1024)
    await ws.prepare(request)
    if "token" in request.query:
        return await _close(ws, CLOSE_UNAUTHORIZED, "never put a token in the URL: send it as the first message")
    try:
        first = await ws.receive(timeout=HANDSHAKE_TIMEOUT)
    except TimeoutError:
        return await _close(ws, CLOSE_UNAUTHORIZED, 'send {"token": "..."} first')
    body = _first_message(first.data) if first.type is WSMsgType.TEXT else None
    token = body.get("token") if body is not None else None
    if not isinstance(token, str) or not token:
        return await _close(ws, CLOSE_UNAUTHORIZED, 'the first message must be {"token": "..."}')
    console = request.app[CONSOLE]
    try:
        principal = await console.authenticate(request.app, token)
    except (SQLAlchemyError, OSError) as exc:
        log.error("console: user database unavailable: %s", type(exc).__name__)
        return await _close(ws, 1011, "the user database is unavailable; try again")
    if principal is None:
        log.warning("console: live socket refused: bad token from %s", request.remote)
        return await _close(ws, CLOSE_UNAUTHORIZED, "unknown or disabled token")
    assert body is not None
    watch, refusal = _watch(principal, body, request.app[CONTROLLER].config.operators)
    if watch is None:
        code, why = refusal
        return await _close(ws, code, why)
    hub = console.hub_for(request.app)
    if hub is None:
        return await _close(ws, 1011, "the ACD is not running (no Redis configured)")
    config = request.app[CONTROLLER].config
    hello = {
        "type": "hello",
        "user": principal.name,
        "role": principal.role.value,
        "operator": watch.operator,
        "wallboard": watch.wallboard,
        "queues": [
            {"name": name, "title": spec.name, "tier": spec.tier} for name, spec in sorted(config.queues.items())
        ],
        "pause_reasons": [reason.value for reason in PAUSE_REASONS],
    }
    log.info("console: %s (%s) follows %s", principal.name, principal.role, watch)
    try:
        await hub.serve(ws, watch, hello)
    finally:
        if not ws.closed:
            await ws.close()
    return ws


def _watch(principal: Principal, body: dict[str, Any], operators: dict[str, Any]) -> tuple[Watch | None, Any]:
    """What the principal may follow with this first message, or (None, (close code, reason))."""
    view = body.get("view") or ("operator" if principal.role is Role.OPERATOR else "wallboard")
    supervising = principal.supervises
    if view == "wallboard":
        if not supervising:
            return None, (CLOSE_FORBIDDEN, "the wallboard is for supervisors and admins")
        return Watch(wallboard=True, operator=None, floor=True), None
    if view != "operator":
        return None, (CLOSE_FORBIDDEN, f"unknown view {view!r}: wallboard or operator")
    asked = body.get("operator")
    if principal.role is Role.OPERATOR:
        if principal.operator is None:
            return None, (CLOSE_FORBIDDEN, "this user is not linked to an operator")
        if asked not in (None, principal.operator):
            return None, (CLOSE_FORBIDDEN, "an operator follows only their own state")
        operator = principal.operator
    elif isinstance(asked, str) and asked:
        operator = asked
    elif principal.operator is not None:
        operator = principal.operator
    else:
        return None, (CLOSE_NOT_FOUND, 'name the operator to follow: {"operator": "op1001"}')
    if operator not in operators:
        return None, (CLOSE_NOT_FOUND, f"no operator {operator!r}")
    return Watch(wallboard=False, operator=operator), None


__all__ = ["CONSOLE", "Console", "add_routes"]
