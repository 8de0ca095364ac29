"""Contact history and customers: the records of past (and current) calls, and who called.

Operators see only the contacts they answered, and a customer only if they are talking to them or
served them before; the raw caller number is never shown to an operator (``mask_number``).
Supervisors and admins see everything.

Times in the query string are ISO 8601: a date (``2026-03-02``) is midnight, and a time without an
offset is wall-clock time, both in the controller's time zone (``UNICO_TIMEZONE``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field

from contacts import ContactRecord, mask_number
from contacts.customers import is_customer_id
from unico.api import lookups
from unico.api.agents import complaint_line, contact_line, customer_profile
from unico.api.auth import ANY_ROLE, Principal, forbidden
from unico.api.context import acd, contact_store, controller, customers, sessions
from unico.api.errors import ApiError
from unico.api.routing import ApiModel, Route, query

MAX_CONTACTS = 500
CUSTOMER_CONTACTS = 20


def to_utc(value: date | datetime, zone: str) -> datetime:
    """A query's date or time as aware UTC (see the module docstring)."""
    tz = ZoneInfo(zone)
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=tz)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def zone_of(request: web.Request) -> str:
    return str(getattr(controller(request).settings, "timezone", "UTC"))


class ContactsQuery(ApiModel):
    start: datetime | None = Field(default=None, alias="from", description="started at or after (ISO 8601)")
    end: datetime | None = Field(default=None, alias="to", description="started before (ISO 8601)")
    queue: str | None = Field(default=None, min_length=1, max_length=64)
    operator: str | None = Field(default=None, min_length=1, max_length=64)
    customer: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$", description="a customer id")
    outcome: str | None = Field(default=None, min_length=1, max_length=32)
    limit: int = Field(default=50, ge=1, le=MAX_CONTACTS)


def contact_json(record: ContactRecord, principal: Principal) -> dict[str, Any]:
    body = record.to_json_dict()
    if not principal.supervises:
        body["caller"] = mask_number(record.caller)
    return body


async def list_contacts(request: web.Request, principal: Principal) -> web.StreamResponse:
    given = query(request, ContactsQuery)
    zone = zone_of(request)
    start = to_utc(given.start, zone) if given.start is not None else None
    end = to_utc(given.end, zone) if given.end is not None else None
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "to must be after from")
    operator = given.operator
    if not principal.supervises:
        if operator is not None and operator != principal.operator:
            return forbidden("operators see only the contacts they answered")
        operator = principal.operator or ""
    customer = None
    if given.customer is not None:
        record = await customers(request).get(given.customer)
        if record is None:
            return web.json_response([])
        customer = (record.id, record.phones)
    where = lookups.ContactFilter(
        start=start,
        end=end,
        queue=given.queue,
        operator=operator,
        customer=customer,
        outcome=given.outcome,
        limit=given.limit,
    )
    found = await lookups.search_contacts(sessions(request), where)
    return web.json_response([contact_json(record, principal) for record in found])


async def get_contact(request: web.Request, principal: Principal) -> web.StreamResponse:
    contact_id = request.match_info["contact_id"]
    record = await contact_store(request).get(contact_id)
    if record is None:
        raise ApiError(404, f"no contact {contact_id!r}")
    if not principal.supervises and (record.operator is None or record.operator != principal.operator):
        return forbidden("operators see only the contacts they answered")
    return web.json_response(contact_json(record, principal))


async def _operator_may_see(
    request: web.Request, principal: Principal, customer_id: str, phones: tuple[str, ...]
) -> bool:
    """The operator is on a call of this customer now, or answered one before."""
    if principal.operator is None:
        return False
    if await lookups.operator_served(sessions(request), principal.operator, customer_id, phones):
        return True
    service = controller(request).acd
    if service is None or principal.operator not in service.config.operators:
        return False
    call_id = (await acd(request).agent(principal.operator)).call_id
    if call_id is None:
        return False
    contact = await contact_store(request).get(call_id)
    if contact is None:
        return False
    if contact.customer_id == customer_id:
        return True
    found = await customers(request).lookup(contact.caller) if contact.caller else None
    return found is not None and found.id == customer_id


async def get_customer(request: web.Request, principal: Principal) -> web.StreamResponse:
    customer_id = request.match_info["customer_id"]
    customer = await customers(request).get(customer_id) if is_customer_id(customer_id) else None
    if customer is None:
        raise ApiError(404, f"no customer {customer_id!r}")
    if not principal.supervises and not await _operator_may_see(request, principal, customer.id, customer.phones):
        return forbidden("operators see only the customers of calls they are on or had")
    db = sessions(request)
    recent = await lookups.recent_contacts(db, customer_id=customer.id, phones=customer.phones, limit=CUSTOMER_CONTACTS)
    complaints = await lookups.open_complaints(db, customer_id=customer.id, phones=customer.phones)
    profile = customer.to_json_dict() if principal.supervises else customer_profile(customer)
    if not principal.supervises:
        profile["phones"] = [mask_number(phone) for phone in customer.phones]
    return web.json_response(
        {
            "customer": profile,
            "last_contacts": [contact_line(record) for record in recent],
            "open_complaints": [complaint_line(c) for c in complaints],
        }
    )


ROUTES = [
    Route(
        "GET",
        "/api/contacts",
        list_contacts,
        summary="Contact records, newest first (an operator: the ones they answered, caller masked)",
        roles=ANY_ROLE,
        query=ContactsQuery,
        response="list of contact records",
        tag="contacts",
        errors=(503,),
    ),
    Route(
        "GET",
        "/api/contacts/{contact_id}",
        get_contact,
        summary="One contact record",
        roles=ANY_ROLE,
        response="the contact record",
        tag="contacts",
        errors=(503,),
    ),
    Route(
        "GET",
        "/api/customers/{customer_id}",
        get_customer,
        summary="A customer's profile, last contacts and open complaints "
        "(an operator: only the customer of a call they are on or had)",
        roles=ANY_ROLE,
        response="{customer, last_contacts, open_complaints}",
        tag="contacts",
        errors=(503,),
    ),
]
