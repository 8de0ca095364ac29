"""Health, who am I, configuration reload, API users, and the workforce plan.

``GET /health`` needs no token: it shows counters, never caller data, and answers 503 while the
ARI websocket is down, so a load balancer or a test can wait for readiness. A reload answers 200
with the new config version, or 422 with every error (file:line: message) while the old config
keeps serving calls. ``POST /admin/reload`` is the old name of ``POST /api/config/reload``.

Users (admin only): creating one or rotating a token answers the token once, in ``token``; only
its hash is stored (:mod:`contacts.users`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from pydantic import Field

from contacts.users import Role, UserStore
from ivr.config import IvrConfig
from unico.api.auth import ADMINS, ANY_ROLE, SUPERVISORS, Principal, audit
from unico.api.context import USERS, controller
from unico.api.errors import ApiError
from unico.api.routing import ApiModel, Route, body

#: a plan's history may be weeks of 15-minute rows, more than the 1 MiB of other bodies
PLAN_BODY_LIMIT = 32 * 1024 * 1024


async def health(request: web.Request) -> web.StreamResponse:
    answer = controller(request).health()
    return web.json_response(answer, status=200 if answer["ready"] else 503)


async def me(request: web.Request, principal: Principal) -> web.StreamResponse:
    return web.json_response({"name": principal.name, "role": principal.role.value, "operator": principal.operator})


async def reload(request: web.Request, principal: Principal) -> web.StreamResponse:
    result = await controller(request).reload()
    detail = {"ok": result.ok, "version": result.version, "errors": len(result.errors)}
    await audit(request.app, principal, "config.reload", result.version, detail)
    answer = {"ok": result.ok, "version": result.version, "errors": result.errors}
    return web.json_response(answer, status=200 if result.ok else 422)


# --- users ---------------------------------------------------------------------------------------


class UserBody(ApiModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    role: Role
    operator: str | None = Field(default=None, min_length=1, max_length=64, description="for role operator")


def _users(request: web.Request) -> UserStore:
    users = request.app.get(USERS)
    if users is None:
        raise ApiError(503, "the user database is unavailable; try again")
    return users


async def list_users(request: web.Request, principal: Principal) -> web.StreamResponse:
    return web.json_response([user.to_json_dict() for user in await _users(request).list()])


async def create_user(request: web.Request, principal: Principal) -> web.StreamResponse:
    given = body(request, UserBody)
    user, token = await _users(request).create(given.name, given.role, operator=given.operator, by=principal.name)
    return web.json_response({**user.to_json_dict(), "token": token}, status=201)


async def disable_user(request: web.Request, principal: Principal) -> web.StreamResponse:
    user = await _users(request).disable(request.match_info["name"], by=principal.name)
    return web.json_response(user.to_json_dict())


async def rotate_user(request: web.Request, principal: Principal) -> web.StreamResponse:
    user, token = await _users(request).rotate(request.match_info["name"], by=principal.name)
    return web.json_response({**user.to_json_dict(), "token": token})


# --- workforce plan ------------------------------------------------------------------------------


async def plan(request: web.Request, principal: Principal) -> web.StreamResponse:
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > PLAN_BODY_LIMIT:
            raise ApiError(413, f"body larger than {PLAN_BODY_LIMIT // (1024 * 1024)} MiB; send fewer weeks of history")
        chunks.append(chunk)
    try:
        given = json.loads(b"".join(chunks) or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from None
    if not isinstance(given, dict):
        raise ApiError(400, "body must be a JSON object")
    # the MILPs take seconds: off the event loop (HiGHS releases the GIL while it works)
    status, answer = await asyncio.to_thread(_plan_answer, given, controller(request).config)
    return web.json_response(answer, status=status)


def _plan_answer(given: dict[str, Any], config: IvrConfig) -> tuple[int, dict[str, Any]]:
    # Imported here, on the worker thread: numpy, scipy and matplotlib (1.4 s, 100 MB) stay out of
    # the controller's start-up until somebody asks for a plan.
    from wfm.api import plan_json
    from wfm.errors import InfeasiblePlan, PlanInputError
    from wfm.plan import PlanSetup

    try:
        return 200, plan_json(given, PlanSetup.from_config(config))
    except PlanInputError as exc:
        return 400, {"error": str(exc), "problems": exc.problems}
    except InfeasiblePlan as exc:
        return 422, {"error": str(exc), "problems": exc.problems}


_PLAN_BODY = {
    "type": "object",
    "description": 'history or forecast rows and options; see docs/wfm.md ({"history": [...]} or {"forecast": [...]})',
}
_RELOAD = "ok, version and errors; 422 with every error while the old config keeps serving"
_USER = "the user (name, role, operator, created_at, disabled_at)"

ROUTES = [
    Route(
        "GET",
        "/health",
        health,
        summary="Readiness and counters (no token)",
        roles=None,
        response="counters; 503 while ARI is down",
        tag="admin",
        errors=(503,),
    ),
    Route(
        "GET",
        "/api/me",
        me,
        summary="Who the token belongs to",
        roles=ANY_ROLE,
        response="{name, role, operator}",
        tag="admin",
    ),
    Route(
        "POST",
        "/api/config/reload",
        reload,
        summary="Reload dialplan/ and skills/",
        roles=ADMINS,
        response=_RELOAD,
        tag="admin",
        errors=(422,),
    ),
    Route(
        "POST",
        "/admin/reload",
        reload,
        summary="Reload dialplan/ and skills/ (old name of /api/config/reload)",
        roles=ADMINS,
        response=_RELOAD,
        tag="admin",
        errors=(422,),
    ),
    Route(
        "GET", "/api/users", list_users, summary="Every API user", roles=ADMINS, response="list of users", tag="users"
    ),
    Route(
        "POST",
        "/api/users",
        create_user,
        summary="Create a user; the answer holds their token, shown only this once",
        roles=ADMINS,
        body=UserBody,
        status=201,
        response=f"{_USER} and its token",
        tag="users",
        errors=(409, 503),
    ),
    Route(
        "POST",
        "/api/users/{name}/disable",
        disable_user,
        summary="Disable a user (their token stops working within 30 s)",
        roles=ADMINS,
        response=_USER,
        tag="users",
        errors=(503,),
    ),
    Route(
        "POST",
        "/api/users/{name}/rotate",
        rotate_user,
        summary="Give a user a new token (shown only this once); the old one stops working",
        roles=ADMINS,
        response=f"{_USER} and its new token",
        tag="users",
        errors=(409, 503),
    ),
    Route(
        "POST",
        "/api/plan",
        plan,
        summary="Workforce plan: forecast, Erlang staffing, shifts and roster (docs/wfm.md)",
        roles=SUPERVISORS,
        body_schema=_PLAN_BODY,
        response="the plan",
        tag="planning",
        errors=(413, 422),
    ),
]
