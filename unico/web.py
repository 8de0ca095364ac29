"""The controller's admin HTTP server: health, config reload and the ACD's operator API.

``GET /health`` needs no credentials (it shows counters, never caller data) and answers 503 while
the ARI websocket is down, so a load balancer or a test can wait for readiness.
``POST /admin/reload`` needs ``Authorization: Bearer <admin token>`` (from the secrets file); it
answers 200 with the new config version, or 422 with every error (file:line: message) while the
old config keeps serving calls.

The ACD API (same bearer token for now; per-user tokens and roles come with the console)::

    GET  /api/agents                      every operator: roster data and live state
    GET  /api/agents/{id}
    POST /api/agents/{id}/login|logout|ready
    POST /api/agents/{id}/pause           {"reason": "break|lunch|training|meeting|backoffice"}
    POST /api/agents/{id}/force           {"state": "ready|not_ready|logged_out", "reason": ...}
    GET  /api/queues                      per queue: tier, calls waiting (priority, waited seconds)
    POST /api/calls/{id}/transfer         {"queue": "enterprise"} or {"operator": "op1005"}

Workforce planning (same token, no ACD needed; body and answer in ``wfm.api`` and docs/wfm.md)::

    POST /api/plan                        {"history": [...]} or {"forecast": [...]}, options

Errors are JSON ``{"error": "..."}``: 400 bad input, 401 no or bad token, 404 unknown operator or
call, 409 not possible in the operator's current state, 503 no ACD (Redis not configured); for the
plan also 413 body too large and 422 no plan meets the requirement (``problems`` lists why).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from acd.agents import AgentState, Event, Force, IllegalTransition, Login, Logout, NotReadyReason, Pause, Ready
from ivr.config import IvrConfig
from unico.acd_service import AcdService, TransferRequest, UnknownAgent
from unico.api_complaints import add_routes as add_complaint_routes
from unico.controller import Controller

log = logging.getLogger(__name__)
CONTROLLER = web.AppKey("controller", Controller)


def make_app(controller: Controller) -> web.Application:
    app = web.Application()
    app[CONTROLLER] = controller
    app.router.add_get("/health", health)
    app.router.add_post("/admin/reload", reload)
    app.router.add_get("/api/agents", list_agents)
    app.router.add_get("/api/agents/{agent_id}", get_agent)
    app.router.add_post("/api/agents/{agent_id}/{action}", agent_action)
    app.router.add_get("/api/queues", list_queues)
    app.router.add_post("/api/calls/{call_id}/transfer", transfer)
    app.router.add_post("/api/plan", plan)
    add_complaint_routes(app)
    return app


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _authorized(request: web.Request) -> bool:
    """``Authorization: Bearer <admin token>``, compared in constant time; nothing else passes."""
    expected = request.app[CONTROLLER].settings.admin_token.get_secret_value()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    return scheme == "Bearer" and bool(given) and hmac.compare_digest(given.encode(), expected.encode())


Handler = Callable[[web.Request, AcdService], Awaitable[web.Response]]


def _acd_api(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        if not _authorized(request):
            log.warning("API %s refused: bad or missing token from %s", request.path, request.remote)
            return _error(401, "unauthorized: send 'Authorization: Bearer <admin token>'")
        acd = request.app[CONTROLLER].acd
        if acd is None:
            return _error(503, "the ACD is not running (no Redis configured)")
        return await handler(request, acd)

    return wrapped


def _admin_api(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The bearer-token check of ``_acd_api`` for routes that do not need the ACD."""

    async def wrapped(request: web.Request) -> web.Response:
        if not _authorized(request):
            log.warning("API %s refused: bad or missing token from %s", request.path, request.remote)
            return _error(401, "unauthorized: send 'Authorization: Bearer <admin token>'")
        return await handler(request)

    return wrapped


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad_request(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object")
    return body


async def _agent_json(acd: AcdService, agent_id: str) -> dict[str, Any]:
    spec = acd.config.operators[agent_id]
    agent = await acd.agent(agent_id)
    return {
        "id": agent_id,
        "name": spec.name,
        "site": spec.site,
        "tiers": list(spec.tiers),
        "skills": dict(spec.skills),
        "state": agent.state.value,
        "reason": agent.reason.value if agent.reason is not None else None,
        "since": agent.since,
        "registered": agent.registered,
        "call_id": agent.call_id,
    }


@_acd_api
async def list_agents(request: web.Request, acd: AcdService) -> web.Response:
    return web.json_response([await _agent_json(acd, agent_id) for agent_id in sorted(acd.config.operators)])


@_acd_api
async def get_agent(request: web.Request, acd: AcdService) -> web.Response:
    agent_id = request.match_info["agent_id"]
    if agent_id not in acd.config.operators:
        return _error(404, f"no operator {agent_id!r}")
    return web.json_response(await _agent_json(acd, agent_id))


def _reason(body: dict[str, Any], default: NotReadyReason | None) -> NotReadyReason:
    value = body.get("reason")
    if value is None and default is not None:
        return default
    allowed = ", ".join(r.value for r in NotReadyReason)
    try:
        return NotReadyReason(str(value))
    except ValueError:
        raise _bad_request(f"reason must be one of: {allowed}") from None


@_acd_api
async def agent_action(request: web.Request, acd: AcdService) -> web.Response:
    agent_id, action = request.match_info["agent_id"], request.match_info["action"]
    body = await _json_body(request)
    event: Event
    if action == "login":
        event = Login()
    elif action == "logout":
        event = Logout()
    elif action == "ready":
        event = Ready()
    elif action == "pause":
        event = Pause(_reason(body, NotReadyReason.BREAK))
    elif action == "force":
        try:
            state = AgentState(str(body.get("state")))
        except ValueError:
            return _error(400, "state must be one of: ready, not_ready, logged_out")
        event = Force(state, _reason(body, NotReadyReason.SUPERVISOR))
    else:
        return _error(404, f"no action {action!r}; use login, logout, ready, pause or force")
    try:
        await acd.agent_event(agent_id, event, by="api")
    except UnknownAgent:
        return _error(404, f"no operator {agent_id!r}")
    except IllegalTransition as exc:
        return _error(409, str(exc))
    return web.json_response(await _agent_json(acd, agent_id))


@_acd_api
async def list_queues(request: web.Request, acd: AcdService) -> web.Response:
    now = acd.clock()
    result = []
    for name, spec in sorted(acd.config.queues.items()):
        waiting = await acd.live.waiting(name)
        result.append(
            {
                "name": name,
                "title": spec.name,
                "tier": spec.tier,
                "waiting": [
                    {"call_id": c.call_id, "priority": c.priority, "waited": round(now - c.enqueued_at, 1)}
                    for c in waiting
                ],
            }
        )
    return web.json_response(result)


@_acd_api
async def transfer(request: web.Request, acd: AcdService) -> web.Response:
    call_id = request.match_info["call_id"]
    body = await _json_body(request)
    queue, operator = body.get("queue"), body.get("operator")
    if (queue is None) == (operator is None) or not isinstance(queue or operator, str):
        return _error(400, 'give exactly one of {"queue": "<name>"} or {"operator": "<id>"}')
    if queue is not None and queue not in acd.config.queues:
        return _error(400, f"no queue {queue!r}")
    if operator is not None and operator not in acd.config.operators:
        return _error(400, f"no operator {operator!r}")
    if not await acd.send(call_id, TransferRequest(call_id, queue, operator, by="api")):
        return _error(404, f"no call {call_id!r} in progress")
    return web.json_response({"ok": True, "call_id": call_id, "queue": queue, "operator": operator}, status=202)


#: a plan's history may be weeks of 15-minute rows, more than aiohttp's 1 MiB default body limit
PLAN_BODY_LIMIT = 32 * 1024 * 1024


@_admin_api
async def plan(request: web.Request) -> web.Response:
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > PLAN_BODY_LIMIT:
            return _error(413, f"body larger than {PLAN_BODY_LIMIT // (1024 * 1024)} MiB; send fewer weeks of history")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(400, f"body is not JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    # the MILPs take seconds: off the event loop (HiGHS releases the GIL while it works)
    status, answer = await asyncio.to_thread(_plan_answer, body, request.app[CONTROLLER].config)
    return web.json_response(answer, status=status)


def _plan_answer(body: dict[str, Any], config: IvrConfig) -> tuple[int, dict[str, Any]]:
    # Imported here, on the worker thread: numpy, scipy and matplotlib (1.4 s, 100 MB) stay out of
    # the controller's start-up until somebody asks for a plan.
    from wfm.api import plan_json
    from wfm.errors import InfeasiblePlan, PlanInputError
    from wfm.plan import PlanSetup

    try:
        return 200, plan_json(body, PlanSetup.from_config(config))
    except PlanInputError as exc:
        return 400, {"error": str(exc), "problems": exc.problems}
    except InfeasiblePlan as exc:
        return 422, {"error": str(exc), "problems": exc.problems}


async def health(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    body = controller.health()
    return web.json_response(body, status=200 if body["ready"] else 503)


async def reload(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    if not _authorized(request):
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
