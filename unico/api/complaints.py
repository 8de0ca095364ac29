"""Complaints for operators and back office: search, read, open, assign, comment, move.

Operators read, open (for the caller on the line) and comment; assigning and moving through the
lifecycle is for supervisors and admins. The store enforces the lifecycle
(``contacts.complaint_rules``) and keeps each complaint's own history; every change is also
audited as ``complaint.<action>``.

The author of a change is the authenticated user. Only the settings' admin token, shared by
integrations, may name another author in ``by`` (the back office system that relays a letter).

``POST /api/complaints`` answers 201 with the complaint; with the same ``contact_id`` and
``category`` again it answers 201 with the same complaint (a retried request makes no second
one). A complaint number that is not 6 to 16 digits is simply not found (404).

Example::

    curl -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8780/api/complaints?overdue=true&category=payments'
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

from aiohttp import web
from pydantic import Field, StringConstraints, field_validator

from contacts import Channel, ComplaintRecord, ComplaintStatus, UnknownComplaint, normalise_number
from contacts.complaints import MAX_SEARCH, MAX_TEXT
from unico.api.auth import ADMIN, ANY_ROLE, SUPERVISORS, Principal, audit
from unico.api.context import complaints
from unico.api.routing import ApiModel, Route, body, query

log = logging.getLogger(__name__)

Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
_NUMBER = re.compile(r"[0-9]{6,16}")
_BY = "author; honoured only with the settings' admin token (otherwise the user is the author)"


class SearchQuery(ApiModel):
    status: ComplaintStatus | None = None
    category: str | None = Field(default=None, max_length=32)
    owner: str | None = Field(default=None, max_length=64)
    customer: str | None = Field(default=None, max_length=32)
    overdue: bool | None = None
    text: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=100, ge=1, le=MAX_SEARCH)


class OpenBody(ApiModel):
    category: str = Field(min_length=1, max_length=32)
    by: Author | None = Field(default=None, description=_BY)
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


class AssignBody(ApiModel):
    owner: Author
    by: Author | None = Field(default=None, description=_BY)
    comment: Text | None = None


class CommentBody(ApiModel):
    text: Text
    by: Author | None = Field(default=None, description=_BY)


class MoveBody(ApiModel):
    to: ComplaintStatus
    by: Author | None = Field(default=None, description=_BY)
    comment: Text | None = None


def _author(principal: Principal, by: str | None) -> str:
    if principal == ADMIN and by:
        return by
    return principal.name


def _number(request: web.Request) -> str:
    number = request.match_info["number"]
    if not _NUMBER.fullmatch(number):
        raise UnknownComplaint(number)
    return number


async def search(request: web.Request, principal: Principal) -> web.StreamResponse:
    given = query(request, SearchQuery)
    store = complaints(request)
    now = store.now()
    found = await store.search(
        status=given.status,
        category=given.category,
        owner=given.owner,
        customer=given.customer,
        overdue=given.overdue,
        text=given.text,
        now=now,
        limit=given.limit,
    )
    return web.json_response([record.to_json_dict(now) for record in found])


async def get(request: web.Request, principal: Principal) -> web.StreamResponse:
    number = _number(request)
    store = complaints(request)
    record = await store.get(number)
    if record is None:
        raise UnknownComplaint(number)
    answer = record.to_json_dict(store.now())
    answer["history"] = [event.to_json_dict() for event in await store.history(number)]
    return web.json_response(answer)


async def open_complaint(request: web.Request, principal: Principal) -> web.StreamResponse:
    given = body(request, OpenBody)
    store = complaints(request)
    author = _author(principal, given.by)
    record = await store.open(
        contact_id=given.contact_id,
        customer_id=given.customer_id,
        caller=given.caller,
        category=given.category,
        recording=given.recording,
        channel=given.channel.value,
        description=given.description,
        by=author,
    )
    log.info("complaint %s (%s) opened by %s", record.number, record.category, author)
    detail = {"category": record.category, "contact_id": given.contact_id, "by": author}
    await audit(request.app, principal, "complaint.open", record.number, detail)
    return web.json_response(record.to_json_dict(store.now()), status=201)


async def assign(request: web.Request, principal: Principal) -> web.StreamResponse:
    number, given = _number(request), body(request, AssignBody)
    author = _author(principal, given.by)
    record = await complaints(request).assign(number, given.owner, author, given.comment)
    return await _changed(request, principal, "assign", number, author, {"owner": given.owner}, record)


async def comment(request: web.Request, principal: Principal) -> web.StreamResponse:
    number, given = _number(request), body(request, CommentBody)
    author = _author(principal, given.by)
    record = await complaints(request).comment(number, given.text, author)
    return await _changed(request, principal, "comment", number, author, {}, record)


async def move(request: web.Request, principal: Principal) -> web.StreamResponse:
    number, given = _number(request), body(request, MoveBody)
    author = _author(principal, given.by)
    record = await complaints(request).move(number, given.to, author, given.comment)
    return await _changed(request, principal, "move", number, author, {"to": given.to.value}, record)


async def _changed(
    request: web.Request,
    principal: Principal,
    action: str,
    number: str,
    author: str,
    detail: dict[str, str],
    record: ComplaintRecord,
) -> web.StreamResponse:
    log.info("complaint %s: %s by %s, now %s", number, action, author, record.status.value)
    await audit(request.app, principal, f"complaint.{action}", number, {**detail, "by": author})
    return web.json_response(record.to_json_dict(complaints(request).now()))


_ONE = "/api/complaints/{number}"
_COMPLAINT = "the complaint, with 'overdue'"

ROUTES = [
    Route(
        "GET",
        "/api/complaints",
        search,
        summary="Search complaints, newest first",
        roles=ANY_ROLE,
        query=SearchQuery,
        response="list of complaints",
        tag="complaints",
        errors=(503,),
    ),
    Route(
        "GET",
        _ONE,
        get,
        summary="One complaint with its history",
        roles=ANY_ROLE,
        response="the complaint, 'overdue' and its 'history'",
        tag="complaints",
        errors=(503,),
    ),
    Route(
        "POST",
        "/api/complaints",
        open_complaint,
        summary="Open a complaint (idempotent per contact_id and category)",
        roles=ANY_ROLE,
        body=OpenBody,
        status=201,
        response=_COMPLAINT,
        tag="complaints",
        errors=(503,),
    ),
    Route(
        "POST",
        f"{_ONE}/assign",
        assign,
        summary="Give the complaint an owner (supervisors)",
        roles=SUPERVISORS,
        body=AssignBody,
        response=_COMPLAINT,
        tag="complaints",
        errors=(409, 503),
    ),
    Route(
        "POST",
        f"{_ONE}/comment",
        comment,
        summary="Add a note to the complaint's history",
        roles=ANY_ROLE,
        body=CommentBody,
        response=_COMPLAINT,
        tag="complaints",
        errors=(503,),
    ),
    Route(
        "POST",
        f"{_ONE}/move",
        move,
        summary="Move the complaint through its lifecycle (supervisors)",
        roles=SUPERVISORS,
        body=MoveBody,
        response=_COMPLAINT,
        tag="complaints",
        errors=(409, 503),
    ),
]
