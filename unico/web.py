"""The controller's admin HTTP server: health/readiness and config reload (loopback by default).

``GET /health`` needs no credentials (it shows counters, never caller data) and answers 503 while
the ARI websocket is down, so a load balancer or a test can wait for readiness.
``POST /admin/reload`` needs ``Authorization: Bearer <admin token>`` (from the secrets file); it
answers 200 with the new config version, or 422 with every error (file:line: message) while the
old config keeps serving calls.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from unico.controller import Controller

log = logging.getLogger(__name__)
CONTROLLER = web.AppKey("controller", Controller)


def make_app(controller: Controller) -> web.Application:
    app = web.Application()
    app[CONTROLLER] = controller
    app.router.add_get("/health", health)
    app.router.add_post("/admin/reload", reload)
    return app


async def health(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    body = controller.health()
    return web.json_response(body, status=200 if body["ready"] else 503)


async def reload(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    expected = controller.settings.admin_token.get_secret_value()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning("reload refused: bad or missing admin token from %s", request.remote)
        return web.json_response({"error": "unauthorized: send 'Authorization: Bearer <admin token>'"}, status=401)
    result = await controller.reload()
    status = 200 if result.ok else 422
    return web.json_response({"ok": result.ok, "version": result.version, "errors": result.errors}, status=status)


async def start_site(controller: Controller, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(make_app(controller), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
