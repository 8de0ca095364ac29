"""Operators: their roster data and live state, the actions that change it, and the screen pop.

Operators see and change only themselves (``Principal.can_act_for``) and never ``force``;
supervisors and admins act for anyone. Every change is audited as ``agent.<action>``.

The screen pop is what an operator's screen shows for the call they are offered or talking to:
the call's id is the agent's ``call_id`` in Redis, which is also the caller's channel id and the
id of the contact row (``IvrCall.contact_id = channel_id``), so one ``ContactStore.get`` finds
the caller, the queue and the customer the IVR recognised.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, field_validator
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from acd.agents import Agent, AgentState, Event, Force, Login, Logout, NotReadyReason, Pause, Ready
from contacts import ComplaintRecord, ContactRecord, CustomerRecord, CustomerStore, mask_number
from unico.acd_service import AcdService
from unico.api import lookups
from unico.api.auth import ANY_ROLE, SUPERVISORS, Principal, audit, forbidden
from unico.api.context import CONTROLLER, acd, app_sessions
from unico.api.errors import ApiError
from unico.api.routing import ApiModel, Route, body

log = logging.getLogger(__name__)

#: the pauses an operator chooses; the others (ring_no_answer, unregistered, supervisor) are the
#: system's and the supervisors' (``force``)
PAUSE_REASONS = (
    NotReadyReason.BREAK,
    NotReadyReason.LUNCH,
    NotReadyReason.TRAINING,
    NotReadyReason.MEETING,
    NotReadyReason.BACKOFFICE,
)
FORCE_STATES = (AgentState.READY, AgentState.NOT_READY, AgentState.LOGGED_OUT)
SCREENPOP_CONTACTS = 5


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> object:
    if value not in allowed:
        raise ValueError(f"{name} must be one of: {', '.join(allowed)}")
    return value


class PauseBody(ApiModel):
    reason: Literal["break", "lunch", "training", "meeting", "backoffice"] = Field(
        default="break", description="why the operator pauses"
    )

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: object) -> object:
        return _one_of("reason", value, tuple(r.value for r in PAUSE_REASONS))


class ForceBody(ApiModel):
    state: Literal["ready", "not_ready", "logged_out"]
    reason: NotReadyReason = Field(default=NotReadyReason.SUPERVISOR, description="for not_ready")

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: object) -> object:
        return _one_of("state", value, tuple(s.value for s in FORCE_STATES))

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: object) -> object:
        return _one_of("reason", value, tuple(r.value for r in NotReadyReason))


async def agent_json(service: AcdService, agent_id: str) -> dict[str, Any]:
    spec = service.config.operators[agent_id]
    agent = await service.agent(agent_id)
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


def _known(service: AcdService, agent_id: str) -> None:
    if agent_id not in service.config.operators:
        raise ApiError(404, f"no operator {agent_id!r}")


async def list_agents(request: web.Request, principal: Principal) -> web.StreamResponse:
    service = acd(request)
    ids = [agent_id for agent_id in sorted(service.config.operators) if principal.can_act_for(agent_id)]
    return web.json_response([await agent_json(service, agent_id) for agent_id in ids])


async def get_agent(request: web.Request, principal: Principal) -> web.StreamResponse:
    service, agent_id = acd(request), request.match_info["agent_id"]
    _known(service, agent_id)
    if not principal.can_act_for(agent_id):
        return forbidden("operators see only themselves")
    return web.json_response(await agent_json(service, agent_id))


async def _act(request: web.Request, principal: Principal, event: Event, detail: dict[str, Any]) -> web.Response:
    service, agent_id = acd(request), request.match_info["agent_id"]
    _known(service, agent_id)
    if not principal.can_act_for(agent_id):
        return forbidden("operators change only their own state")
    await service.agent_event(agent_id, event, by=principal.name)
    answer = await agent_json(service, agent_id)
    await audit(request.app, principal, f"agent.{event.kind.value}", agent_id, {**detail, "state": answer["state"]})
    return web.json_response(answer)


async def login(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _act(request, principal, Login(), {})


async def logout(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _act(request, principal, Logout(), {})


async def ready(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _act(request, principal, Ready(), {})


async def pause(request: web.Request, principal: Principal) -> web.StreamResponse:
    reason = NotReadyReason(body(request, PauseBody).reason)
    return await _act(request, principal, Pause(reason), {"reason": reason.value})


async def force(request: web.Request, principal: Principal) -> web.StreamResponse:
    given = body(request, ForceBody)
    event = Force(AgentState(given.state), given.reason)
    return await _act(request, principal, event, {"forced": given.state, "reason": given.reason.value})


# --- screen pop ----------------------------------------------------------------------------------


def customer_profile(customer: CustomerRecord) -> dict[str, Any]:
    """What an operator's screen shows of a customer (no numbers, no consents)."""
    return {
        "id": customer.id,
        "name": customer.name,
        "segment": customer.segment,
        "language": customer.language,
        "products": list(customer.products),
    }


def contact_line(record: ContactRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "started_at": record.started_at.isoformat(),
        "queue": record.queue,
        "operator": record.operator,
        "outcome": record.outcome,
        "disposition": record.disposition,
        "wrapup_code": record.wrapup_code,
    }


async def screenpop(request: web.Request, principal: Principal) -> web.StreamResponse:
    service, agent_id = acd(request), request.match_info["agent_id"]
    _known(service, agent_id)
    if not principal.can_act_for(agent_id):
        return forbidden("operators see only their own calls")
    agent = await service.agent(agent_id)
    if agent.call_id is None:
        return web.json_response({"call_id": None, "state": agent.state.value})
    return web.json_response(await screenpop_body(request.app, agent, mask=not principal.supervises))


async def screenpop_for(app: web.Application, agent_id: str, call_id: str) -> dict[str, Any] | None:
    """The console's socket pushes this (``unico.console.add_routes(screenpop=...)``): the caller
    is masked, as the socket may be an operator's. None when the operator no longer has the call."""
    service = app[CONTROLLER].acd
    if service is None or agent_id not in service.config.operators:
        return None
    try:
        agent = await service.agent(agent_id)
        if agent.call_id != call_id:
            return None
        return await screenpop_body(app, agent, mask=True)
    except (ApiError, SQLAlchemyError, OSError, RedisError) as exc:
        log.warning("screen pop of %s for %s failed: %s", call_id, agent_id, type(exc).__name__)
        return None


async def screenpop_body(app: web.Application, agent: Agent, *, mask: bool) -> dict[str, Any]:
    """The screen pop of the call ``agent`` holds (see the module docstring)."""
    controller = app[CONTROLLER]
    service, call_id = controller.acd, agent.call_id
    assert service is not None and call_id is not None
    db = app_sessions(app)
    if db is None:
        raise ApiError(503, "the database is unavailable; try again")
    contact = await controller.store.get(call_id)
    waiting = await service.live.get_call(call_id)
    if waiting is not None:
        queue: str | None = waiting.queue
        waited: float | None = round(service.clock() - waiting.enqueued_at, 1)
    else:
        queue = contact.queue if contact is not None else None
        waited = _waited(contact)
    answer: dict[str, Any] = {
        "call_id": call_id,
        "state": agent.state.value,
        "queue": queue,
        "waited": waited,
        "caller": None,
        "customer": None,
        "last_contacts": [],
        "open_complaints": [],
    }
    if contact is None:
        return answer
    caller = contact.caller
    answer["caller"] = mask_number(caller) if mask else caller
    store = CustomerStore(db)
    customer = await store.get(contact.customer_id) if contact.customer_id else await store.lookup(caller)
    phones = customer.phones if customer is not None else tuple(p for p in (caller,) if p)
    customer_id = customer.id if customer is not None else None
    recent = await lookups.recent_contacts(
        db, customer_id=customer_id, phones=phones, exclude=call_id, limit=SCREENPOP_CONTACTS
    )
    complaints = await lookups.open_complaints(db, customer_id=customer_id, phones=phones)
    answer["customer"] = customer_profile(customer) if customer is not None else None
    answer["last_contacts"] = [contact_line(record) for record in recent]
    answer["open_complaints"] = [complaint_line(c) for c in complaints]
    return answer


def complaint_line(complaint: ComplaintRecord) -> dict[str, Any]:
    return {
        "number": complaint.number,
        "category": complaint.category,
        "status": complaint.status.value,
        "due_on": complaint.due_on.isoformat(),
    }


def _waited(contact: ContactRecord | None) -> float | None:
    if contact is None or contact.queued_at is None or contact.answered_at is None:
        return None
    return round((contact.answered_at - contact.queued_at).total_seconds(), 1)


_AGENT = "/api/agents/{agent_id}"
_STATE = "the operator's roster data and new live state"

ROUTES = [
    Route(
        "GET",
        "/api/agents",
        list_agents,
        summary="Every operator: roster data and live state (an operator: only themselves)",
        roles=ANY_ROLE,
        response="list of operators",
        tag="agents",
        errors=(503,),
    ),
    Route(
        "GET", _AGENT, get_agent, summary="One operator", roles=ANY_ROLE, response=_STATE, tag="agents", errors=(503,)
    ),
    Route(
        "POST",
        f"{_AGENT}/login",
        login,
        summary="Log in",
        roles=ANY_ROLE,
        response=_STATE,
        tag="agents",
        errors=(409, 503),
    ),
    Route(
        "POST",
        f"{_AGENT}/logout",
        logout,
        summary="Log out",
        roles=ANY_ROLE,
        response=_STATE,
        tag="agents",
        errors=(409, 503),
    ),
    Route(
        "POST",
        f"{_AGENT}/ready",
        ready,
        summary="Become ready for calls",
        roles=ANY_ROLE,
        response=_STATE,
        tag="agents",
        errors=(409, 503),
    ),
    Route(
        "POST",
        f"{_AGENT}/pause",
        pause,
        summary="Pause with a reason",
        roles=ANY_ROLE,
        body=PauseBody,
        response=_STATE,
        tag="agents",
        errors=(409, 503),
    ),
    Route(
        "POST",
        f"{_AGENT}/force",
        force,
        summary="Force a state (supervisors)",
        roles=SUPERVISORS,
        body=ForceBody,
        response=_STATE,
        tag="agents",
        errors=(409, 503),
    ),
    Route(
        "GET",
        f"{_AGENT}/screenpop",
        screenpop,
        summary="The call the operator is offered or talking to, with the caller's customer and history",
        roles=ANY_ROLE,
        response="call_id, state, queue, waited, caller, customer, last_contacts, open_complaints; "
        "call_id null when there is no call",
        tag="agents",
        errors=(503,),
    ),
]
