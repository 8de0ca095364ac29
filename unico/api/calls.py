"""Calls: the live ones from Redis, and what operators and supervisors do to them.

A call's id is the caller's channel id, which is also its contact row's id (see
:mod:`unico.api.agents`). Live states, from ``acd.live``::

    waiting   in a queue's line (``call:<id>`` status waiting)
    ringing   claimed: an operator's softphone rings (the agent's ``call_id``, state ringing)
    talking   the agent holding it is on_call (or in wrap-up right after)

Changes are messages to the process that owns the caller's channel (``AcdService.send``): a
transfer (``queue`` or ``operator``) and a move of a waiting call to another queue are both a
``TransferRequest``; the owner answers the caller, so the API answers 202. Monitoring goes to the
controller's ``supervision`` service when it has one. The wrap-up is written on the contact row.
Operators reach only the calls they are on (or, for the wrap-up, the contacts they answered or
talked on before transferring them).
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, model_validator

from acd.agents import Agent, AgentState
from unico.acd_service import AcdService, TransferRequest
from unico.api import lookups
from unico.api.auth import ANY_ROLE, SUPERVISORS, Principal, audit, forbidden
from unico.api.context import acd, contact_store, controller, sessions
from unico.api.errors import ApiError
from unico.api.routing import ApiModel, Route, body


class TransferBody(ApiModel):
    queue: str | None = Field(default=None, min_length=1, max_length=64, description="a queue of skills/queues.yaml")
    operator: str | None = Field(default=None, min_length=1, max_length=64, description="an operator id")

    @model_validator(mode="after")
    def _exactly_one(self) -> TransferBody:
        if (self.queue is None) == (self.operator is None):
            raise ValueError('give exactly one of {"queue": "<name>"} or {"operator": "<id>"}')
        return self


class QueueMoveBody(ApiModel):
    queue: str = Field(min_length=1, max_length=64, description="the queue the waiting call moves to")


class WrapupBody(ApiModel):
    code: str = Field(min_length=1, max_length=64, description="the wrap-up code")
    disposition: str | None = Field(default=None, min_length=1, max_length=64)
    resolved: bool | None = Field(default=None, description="resolved during the call (kept in the audit log)")


class MonitorBody(ApiModel):
    mode: Literal["listen", "whisper", "barge"]
    supervisor: str = Field(min_length=1, max_length=64, description="the supervisor's softphone id")


async def _holders(service: AcdService) -> list[Agent]:
    """Agents holding a call (ringing, talking, wrap-up with a call id), one Redis round trip."""
    agents = await service.live.agents(service.config.operators)
    return [agent for agent in agents.values() if agent.call_id]


def _held(agent: Agent) -> dict[str, Any]:
    return {"agent": agent.id, "call_id": agent.call_id, "since": agent.since}


async def list_calls(request: web.Request, principal: Principal) -> web.StreamResponse:
    service = acd(request)
    now = service.clock()
    holders = [agent for agent in await _holders(service) if principal.can_act_for(agent.id)]
    waiting = []
    if principal.supervises:
        waiting = [
            {"call_id": c.call_id, "queue": c.queue, "priority": c.priority, "waited": round(now - c.enqueued_at, 1)}
            for c in await service.live.snapshot_waiting(service.config.queues)
        ]
    return web.json_response(
        {
            "waiting": waiting,
            "ringing": [_held(a) for a in holders if a.state is AgentState.RINGING],
            "talking": [_held(a) for a in holders if a.state is not AgentState.RINGING],
        }
    )


async def list_queues(request: web.Request, principal: Principal) -> web.StreamResponse:
    service = acd(request)
    now = service.clock()
    result = []
    for name, spec in sorted(service.config.queues.items()):
        waiting = await service.live.waiting(name)
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


async def _live_call(service: AcdService, call_id: str) -> tuple[dict[str, Any], Agent | None]:
    """The call's live view and the agent holding it; 404 when Redis knows no such call."""
    now = service.clock()
    waiting = await service.live.get_call(call_id)
    holder = next((a for a in await _holders(service) if a.call_id == call_id), None)
    if waiting is None and holder is None:
        raise ApiError(404, f"no call {call_id!r} in progress")
    view: dict[str, Any] = {"call_id": call_id, "state": "talking", "queue": None, "agent": None}
    if waiting is not None:
        view.update(queue=waiting.queue, priority=waiting.priority, waited=round(now - waiting.enqueued_at, 1))
        view["state"] = "waiting" if await service.live.call_status(call_id) == "waiting" else "ringing"
    if holder is not None:
        view["agent"] = holder.id
        view["since"] = holder.since
        if holder.state is AgentState.RINGING:
            view["state"] = "ringing"
    return view, holder


async def get_call(request: web.Request, principal: Principal) -> web.StreamResponse:
    view, holder = await _live_call(acd(request), request.match_info["call_id"])
    if not principal.supervises and (holder is None or not principal.can_act_for(holder.id)):
        return forbidden("operators see only the calls they are on")
    return web.json_response(view)


async def _own_call(service: AcdService, principal: Principal, call_id: str) -> bool:
    if principal.supervises:
        return True
    if principal.operator is None or principal.operator not in service.config.operators:
        return False
    return (await service.agent(principal.operator)).call_id == call_id


async def transfer(request: web.Request, principal: Principal) -> web.StreamResponse:
    service, call_id = acd(request), request.match_info["call_id"]
    given = body(request, TransferBody)
    if given.queue is not None and given.queue not in service.config.queues:
        raise ApiError(400, f"no queue {given.queue!r}")
    if given.operator is not None and given.operator not in service.config.operators:
        raise ApiError(400, f"no operator {given.operator!r}")
    if not await _own_call(service, principal, call_id):
        return forbidden("operators transfer only a call they are on")
    message = TransferRequest(call_id, given.queue, given.operator, by=principal.name)
    if not await service.send(call_id, message):
        raise ApiError(404, f"no call {call_id!r} in progress")
    await audit(request.app, principal, "call.transfer", call_id, {"queue": given.queue, "operator": given.operator})
    answer = {"ok": True, "call_id": call_id, "queue": given.queue, "operator": given.operator}
    return web.json_response(answer, status=202)


async def move(request: web.Request, principal: Principal) -> web.StreamResponse:
    service, call_id = acd(request), request.match_info["call_id"]
    queue = body(request, QueueMoveBody).queue
    if queue not in service.config.queues:
        raise ApiError(400, f"no queue {queue!r}")
    status = await service.live.call_status(call_id)
    if status is None and await service.live.owner(call_id) is None:
        raise ApiError(404, f"no waiting call {call_id!r}")
    if status != "waiting":
        raise ApiError(409, f"call {call_id!r} is no longer waiting (an operator is being rung or talking)")
    current = await service.live.get_call(call_id)
    if current is not None and current.queue == queue:
        raise ApiError(409, f"call {call_id!r} is already waiting in {queue!r}")
    if not await service.send(call_id, TransferRequest(call_id, queue=queue, by=principal.name)):
        raise ApiError(404, f"no waiting call {call_id!r}")
    before = current.queue if current is not None else None
    await audit(request.app, principal, "call.move", call_id, {"from": before, "queue": queue})
    return web.json_response({"ok": True, "call_id": call_id, "queue": queue}, status=202)


async def wrapup(request: web.Request, principal: Principal) -> web.StreamResponse:
    call_id = request.match_info["call_id"]
    given = body(request, WrapupBody)
    store = contact_store(request)
    contact = await store.get(call_id)
    if contact is None:
        raise ApiError(404, f"no contact {call_id!r}")
    if not principal.supervises and not await _talked_on(request, principal, contact.operator, call_id):
        return forbidden("operators wrap up only the contacts they answered")
    if not await store.set_wrapup(call_id, given.code, given.disposition):
        raise ApiError(404, f"no contact {call_id!r}")
    detail = {"code": given.code, "disposition": given.disposition, "resolved": given.resolved}
    await audit(request.app, principal, "call.wrapup", call_id, detail)
    return web.json_response({"ok": True, "call_id": call_id, **detail})


async def _talked_on(request: web.Request, principal: Principal, operator: str | None, call_id: str) -> bool:
    """The operator answered the contact, holds the call now, or talked on it before a transfer."""
    mine = principal.operator
    if mine is None:
        return False
    if operator == mine:
        return True
    service = controller(request).acd
    if service is not None and mine in service.config.operators and (await service.agent(mine)).call_id == call_id:
        return True
    return await lookups.operator_talked(sessions(request), mine, call_id)


async def monitor(request: web.Request, principal: Principal) -> web.StreamResponse:
    call_id = request.match_info["call_id"]
    given = body(request, MonitorBody)
    supervision = getattr(controller(request), "supervision", None)
    if supervision is None:
        raise ApiError(503, "supervision not available")
    try:
        result = supervision.monitor(call_id, given.supervisor, given.mode)
        if inspect.isawaitable(result):
            result = await result
    except LookupError as exc:
        raise ApiError(404, str(exc) or f"no call {call_id!r} in progress") from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    detail = {"mode": given.mode, "supervisor": given.supervisor}
    await audit(request.app, principal, "call.monitor", call_id, detail)
    answer: dict[str, Any] = {"ok": True, "call_id": call_id, **detail}
    if isinstance(result, dict):
        answer.update({k: v for k, v in result.items() if k not in answer})
    return web.json_response(answer, status=202)


_CALL = "/api/calls/{call_id}"

ROUTES = [
    Route(
        "GET",
        "/api/calls",
        list_calls,
        summary="Live calls: waiting (supervisors), ringing and talking (an operator: only their own)",
        roles=ANY_ROLE,
        response="{waiting: [{call_id, queue, priority, waited}], ringing: [...], talking: [{agent, call_id, since}]}",
        tag="calls",
        errors=(503,),
    ),
    Route(
        "GET",
        "/api/queues",
        list_queues,
        summary="Every queue: tier and the calls waiting (priority, waited seconds)",
        roles=ANY_ROLE,
        response="list of queues",
        tag="calls",
        errors=(503,),
    ),
    Route(
        "GET",
        _CALL,
        get_call,
        summary="One live call",
        roles=ANY_ROLE,
        response="call_id, state (waiting, ringing, talking), queue, priority, waited, agent",
        tag="calls",
        errors=(503,),
    ),
    Route(
        "POST",
        f"{_CALL}/transfer",
        transfer,
        summary="Blind transfer to a queue or an operator (an operator: only a call they are on)",
        roles=ANY_ROLE,
        body=TransferBody,
        status=202,
        response="accepted; the call's owner carries it out",
        tag="calls",
        errors=(503,),
    ),
    Route(
        "POST",
        f"{_CALL}/move",
        move,
        summary="Move a waiting call to another queue (it keeps its place in time)",
        roles=SUPERVISORS,
        body=QueueMoveBody,
        status=202,
        response="accepted; the call's owner carries it out",
        tag="calls",
        errors=(409, 503),
    ),
    Route(
        "POST",
        f"{_CALL}/wrapup",
        wrapup,
        summary="Wrap-up code and disposition of a contact, open or closed",
        roles=ANY_ROLE,
        body=WrapupBody,
        response="the stored wrap-up",
        tag="calls",
        errors=(503,),
    ),
    Route(
        "POST",
        f"{_CALL}/monitor",
        monitor,
        summary="Listen to, whisper to or barge into a call from a supervisor's softphone",
        roles=SUPERVISORS,
        body=MonitorBody,
        status=202,
        response="accepted; the supervisor's softphone is rung",
        tag="calls",
        errors=(503,),
    ),
]
