"""The complaints REST API for operators and back office, on the controller's admin server.

Same bearer admin token as the other ``/api`` routes for now (per-user tokens come with the
console, so every write names its author in ``by``). Bodies and query strings are validated with
pydantic; the store enforces the lifecycle (``contacts.complaint_rules``)::

    GET  /api/complaints                    ?status=&category=&owner=&customer=&overdue=true&text=&limit=
    GET  /api/complaints/{number}           the complaint, "overdue", and its "history"
    POST /api/complaints                    {"category", "by", "contact_id"?, "customer_id"?, "caller"?,
                                             "recording"?, "channel"? ("operator"), "description"?}
    POST /api/complaints/{number}/assign    {"owner", "by", "comment"?}
    POST /api/complaints/{number}/comment   {"text", "by"}
    POST /api/complaints/{number}/move      {"to", "by", "comment"?}

``POST /api/complaints`` answers 201 with the complaint; with the same ``contact_id`` and
``category`` again it answers 201 with the same complaint (a retried request makes no second one).
Errors are JSON ``{"error": "..."}``: 400 bad input (every invalid field named), 401 no or bad
token, 404 unknown complaint or action, 409 a move the lifecycle refuses (the message lists what
is allowed), 503 database unreachable.

Wiring: ``unico.web.make_app`` calls :func:`add_routes`. The store is made per request on the
controller's one engine (``controller.store.sessions``) with the deadlines of
``settings.complaint_deadlines``.

Example::

    curl -H "Authorization: Bearer $UNICO_ADMIN_TOKEN" \\
         'http://127.0.0.1:8780/api/complaints?overdue=true&category=payments'
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from sqlalchemy.exc import SQLAlchemyError

from contacts import (
    Channel,
    ComplaintError,
    ComplaintStatus,
    ComplaintStore,
    IllegalTransition,
    UnknownCategory,
    UnknownComplaint,
    UnknownCustomer,
    deadlines,
    normalise_number,
)
from contacts.complaints import MAX_SEARCH, MAX_TEXT
from unico.controller import Controller

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]
Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
_NUMBER = re.compile(r"[0-9]{6,16}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchQuery(_Model):
    status: ComplaintStatus | None = None
    category: str | None = Field(default=None, max_length=32)
    owner: str | None = Field(default=None, max_length=64)
    customer: str | None = Field(default=None, max_length=32)
    overdue: bool | None = None
    text: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=100, ge=1, le=MAX_SEARCH)


class OpenBody(_Model):
    category: str = Field(min_length=1, max_length=32)
    by: Author
    contact_id: str | None = Field(default=None, min_length=1, max_length=64)
    customer_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    caller: str | None = None
    recording: str | None = Field(default=None, min_length=1, max_length=255)
    channel: Channel = Channel.OPERATOR
    description: str | None = Field(default=None, max_length=MAX_TEXT)

    @field_validator("caller")
    @classmethod
    def _caller(cls, value: str | None) -> str | None:
        return None if value is None else normalise_number(value)


class AssignBody(_Model):
    owner: Author
    by: Author
    comment: Text | None = None


class CommentBody(_Model):
    text: Text
    by: Author


class MoveBody(_Model):
    to: ComplaintStatus
    by: Author
    comment: Text | None = None


def add_routes(app: web.Application) -> None:
    """Register the complaint routes (``make_app`` calls this)."""
    app.router.add_get("/api/complaints", search)
    app.router.add_get("/api/complaints/{number}", get)
    app.router.add_post("/api/complaints", open_complaint)
    app.router.add_post("/api/complaints/{number}/{action}", change)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# unico.web imports this module while it loads, so its names are looked up at request time.
def _controller(request: web.Request) -> Controller:
    from unico.web import CONTROLLER

    return request.app[CONTROLLER]


def _authorized(request: web.Request) -> bool:
    from unico.web import _authorized as admin_token_ok

    return admin_token_ok(request)


def _store(request: web.Request) -> ComplaintStore:
    controller = _controller(request)
    return ComplaintStore(controller.store.sessions, deadlines=deadlines(controller.settings.complaint_deadlines))


def _invalid(exc: ValidationError) -> web.Response:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return _error(400, "; ".join(problems))


def _api(handler: Handler) -> Handler:
    """Token check, and the error families mapped to status codes in one place."""

    async def wrapped(request: web.Request) -> web.Response:
        if not _authorized(request):
            log.warning("API %s refused: bad or missing token from %s", request.path, request.remote)
            return _error(401, "unauthorized: send 'Authorization: Bearer <admin token>'")
        try:
            return await handler(request)
        except ValidationError as exc:
            return _invalid(exc)
        except UnknownComplaint as exc:
            return _error(404, str(exc))
        except IllegalTransition as exc:
            return _error(409, str(exc))
        except (UnknownCategory, UnknownCustomer) as exc:
            return _error(400, str(exc))
        except ComplaintError as exc:
            return _error(400, str(exc))
        except (SQLAlchemyError, OSError) as exc:
            log.error("complaints API %s: database unavailable: %s", request.path, type(exc).__name__)
            return _error(503, "the complaints database is unavailable; try again")

    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadBody(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadBody("body must be a JSON object")
    return body


class _BadBody(ComplaintError):
    pass


def _number(request: web.Request) -> str:
    number = request.match_info["number"]
    if not _NUMBER.fullmatch(number):
        raise UnknownComplaint(number)
    return number


@_api
async def search(request: web.Request) -> web.Response:
    if len(set(request.query.keys())) != len(request.query):
        return _error(400, "give each query parameter at most once")
    query = SearchQuery.model_validate(dict(request.query))
    store = _store(request)
    now = store.now()
    found = await store.search(
        status=query.status,
        category=query.category,
        owner=query.owner,
        customer=query.customer,
        overdue=query.overdue,
        text=query.text,
        now=now,
        limit=query.limit,
    )
    return web.json_response([record.to_json_dict(now) for record in found])


@_api
async def get(request: web.Request) -> web.Response:
    number = _number(request)
    store = _store(request)
    record = await store.get(number)
    if record is None:
        raise UnknownComplaint(number)
    body = record.to_json_dict(store.now())
    body["history"] = [event.to_json_dict() for event in await store.history(number)]
    return web.json_response(body)


@_api
async def open_complaint(request: web.Request) -> web.Response:
    body = OpenBody.model_validate(await _body(request))
    store = _store(request)
    record = await store.open(
        contact_id=body.contact_id,
        customer_id=body.customer_id,
        caller=body.caller,
        category=body.category,
        recording=body.recording,
        channel=body.channel.value,
        description=body.description,
        by=body.by,
    )
    log.info("complaint %s (%s) opened by %s", record.number, record.category, body.by)
    return web.json_response(record.to_json_dict(store.now()), status=201)


@_api
async def change(request: web.Request) -> web.Response:
    number, action = _number(request), request.match_info["action"]
    if action not in ("assign", "comment", "move"):
        return _error(404, f"no action {action!r}; use assign, comment or move")
    raw = await _body(request)
    store = _store(request)
    if action == "assign":
        assign = AssignBody.model_validate(raw)
        record = await store.assign(number, assign.owner, assign.by, assign.comment)
    elif action == "comment":
        comment = CommentBody.model_validate(raw)
        record = await store.comment(number, comment.text, comment.by)
    else:
        move = MoveBody.model_validate(raw)
        record = await store.move(number, move.to, move.by, move.comment)
    log.info("complaint %s: %s by %s, now %s", number, action, raw.get("by"), record.status.value)
    return web.json_response(record.to_json_dict(store.now()))
