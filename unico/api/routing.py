"""The route table: one list of :class:`Route` registers the handlers *and* writes the OpenAPI
document (:mod:`unico.api.openapi`), so the two cannot drift.

A route names its method, path, roles (``None``: no token needed), and the pydantic models of its
JSON body and query string. :func:`register` wraps each handler so that, before it runs, the
token and role are checked (:func:`unico.api.auth.requires`) and the body and query are parsed
and validated; the handler reads them with :func:`body` and :func:`query`. Errors raised anywhere
below become JSON answers here (:func:`unico.api.errors.translate`); an unexpected exception is
logged and answers 500 without details. :func:`json_errors` gives requests that match no route
(404, 405, 413 from aiohttp itself) the same ``{"error": ...}`` shape.

Example::

    ROUTES = [
        Route("POST", "/api/agents/{agent_id}/pause", pause, summary="Pause an operator",
              roles=ANY_ROLE, body=PauseBody, response="the operator's new state"),
    ]

    async def pause(request: web.Request, principal: Principal) -> web.StreamResponse:
        reason = body(request, PauseBody).reason
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from contacts.users import Role
from unico.api.auth import Handler, Principal, RequestHandler, requires
from unico.api.errors import ApiError, error_response, translate

log = logging.getLogger(__name__)

PublicHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
BODY = web.RequestKey("body", BaseModel)
QUERY = web.RequestKey("query", BaseModel)
#: JSON bodies above this answer 413 (the plan reads its own, larger body)
BODY_LIMIT = 1024 * 1024


class ApiModel(BaseModel):
    """Base of every request model: unknown fields are an error, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler | PublicHandler
    summary: str = field(kw_only=True)
    #: who may call it; None: public (no token)
    roles: tuple[Role, ...] | None = field(kw_only=True)
    body: type[BaseModel] | None = field(default=None, kw_only=True)
    query: type[BaseModel] | None = field(default=None, kw_only=True)
    #: what a success answers, in words (the document's response description)
    response: str = field(default="OK", kw_only=True)
    status: int = field(default=200, kw_only=True)
    #: error statuses beyond the ones every such route has (400, 401, 403, 404)
    errors: tuple[int, ...] = field(default=(), kw_only=True)
    tag: str = field(default="", kw_only=True)
    description: str = field(default="", kw_only=True)
    #: a JSON schema for a body the handler validates itself (the plan)
    body_schema: Mapping[str, Any] | None = field(default=None, kw_only=True)
    #: media types of a success; the first is the default
    produces: tuple[str, ...] = field(default=("application/json",), kw_only=True)


ROUTES: web.AppKey[tuple[Route, ...]] = web.AppKey("routes")


def register(app: web.Application, routes: Sequence[Route]) -> None:
    """Add every route to ``app`` (and remember the table for :func:`json_errors`' messages)."""
    for route in routes:
        app.router.add_route(route.method, route.path, _wrap(route), name=operation_id(route))
    app[ROUTES] = tuple(routes)


def operation_id(route: Route) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", route.path.replace("{", "by_").replace("}", "")).strip("_")
    return f"{route.method.lower()}_{words}"


def _wrap(route: Route) -> RequestHandler:
    async def parsed(request: web.Request, principal: Principal | None) -> web.StreamResponse:
        try:
            if route.query is not None:
                request[QUERY] = _parse_query(request, route.query)
            if route.body is not None:
                request[BODY] = route.body.model_validate(await read_json(request))
            if principal is None:
                return await cast(PublicHandler, route.handler)(request)
            return await cast(Handler, route.handler)(request, principal)
        except web.HTTPException:
            raise
        except Exception as exc:
            error = translate(exc, f"{request.method} {request.path}")
            if error is None:
                log.exception("API %s %s failed", request.method, request.path)
                return error_response(500, "internal error; the controller's log has the details")
            return error.response()

    if route.roles is None:

        async def public(request: web.Request) -> web.StreamResponse:
            return await parsed(request, None)

        return public

    return requires(*route.roles)(parsed)


def body(request: web.Request, model: type[M]) -> M:
    """The request's body, already validated against its route's ``body`` model."""
    value = request[BODY]
    assert isinstance(value, model), f"route body is {type(value).__name__}, handler wants {model.__name__}"
    return value


def query(request: web.Request, model: type[M]) -> M:
    """The request's query string, already validated against its route's ``query`` model."""
    value = request[QUERY]
    assert isinstance(value, model), f"route query is {type(value).__name__}, handler wants {model.__name__}"
    return value


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if len(set(request.query.keys())) != len(request.query):
        raise ApiError(400, "give each query parameter at most once")
    return model.model_validate(dict(request.query))


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``. 400 for anything else, 413 if too big."""
    too_big = ApiError(413, f"body larger than {BODY_LIMIT // 1024} KiB")
    if request.content_length is not None and request.content_length > BODY_LIMIT:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > BODY_LIMIT:
            raise too_big
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "body must be a JSON object")
    return value


# --- requests that match no route ----------------------------------------------------------------

_API_PREFIXES = ("/api/", "/admin/", "/health")


@web.middleware
async def json_errors(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
    """aiohttp's own 404/405/413 answers on API paths as ``{"error": ...}`` (the console's pages
    keep theirs); an unknown action names the ones that exist."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith(_API_PREFIXES) or exc.status < 400 or exc.content_type == "application/json":
            raise
        if exc.status == 404:
            return error_response(404, _not_found(request))
        if exc.status == 405:
            response = error_response(405, f"{request.method} is not allowed on {request.path}")
            allow = exc.headers.get("Allow")
            if allow:
                response.headers["Allow"] = allow
            return response
        return error_response(exc.status, exc.reason)


def _not_found(request: web.Request) -> str:
    segments = request.path.rstrip("/").split("/")
    actions = []
    for route in request.app.get(ROUTES, ()):
        template = route.path.split("/")
        if route.method != request.method or len(template) != len(segments) or template[-1].startswith("{"):
            continue
        if not any(t.startswith("{") for t in template[:-1]):
            continue  # an action is something done to one thing: /api/agents/{agent_id}/pause
        if all(t.startswith("{") or t == s for t, s in zip(template[:-1], segments[:-1], strict=True)):
            actions.append(template[-1])
    if actions:
        choices = ", ".join(actions[:-1]) + (" or " if len(actions) > 1 else "") + actions[-1]
        return f"no action {segments[-1]!r}; use {choices}"
    return f"no route {request.method} {request.path}; the routes are in GET /api/openapi.json"
