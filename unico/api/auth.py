"""Who is calling and what they may do: bearer tokens, roles, and the audit log of changes.

Every protected request carries ``Authorization: Bearer <token>`` (RFC 6750; the scheme name is
case-insensitive, RFC 7235 section 2.1; nothing else is accepted, not even the bare token). The
token is either the settings' admin token, which stays valid as the built-in principal ``admin``
with role ``admin``, or a user's token from ``api_users`` (:mod:`contacts.users`).

Roles, from most to least powerful::

    admin       everything, including users and the configuration reload
    supervisor  every operator and call, force states, move and monitor calls, reports, plans
    operator    only their own operator id and the calls they are offered or talking to

A missing or bad token answers 401, a role not allowed 403, both as ``{"error": ...}``. A refused
token is logged as a security event with the remote address, never the token. Every change made
through the API writes one ``audit_log`` row with :func:`audit`.

Example::

    @requires(Role.SUPERVISOR, Role.ADMIN)
    async def force(request: web.Request, principal: Principal) -> web.StreamResponse:
        ...
        await audit(request.app, principal, "agent.force", agent_id, {"state": "ready"})
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from contacts.models import AuditEntry
from contacts.users import MAX_TOKEN_LENGTH, Role
from unico.api.context import CONTROLLER, USERS, app_sessions
from unico.api.errors import error_response

log = logging.getLogger(__name__)
security_log = logging.getLogger("unico.security")
audit_log = logging.getLogger("unico.audit")

#: every role; ``requires()`` without arguments means this
ANY_ROLE: tuple[Role, ...] = (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR)
SUPERVISORS: tuple[Role, ...] = (Role.ADMIN, Role.SUPERVISOR)
ADMINS: tuple[Role, ...] = (Role.ADMIN,)
UNAUTHORIZED = "unauthorized: send 'Authorization: Bearer <token>'"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The authenticated caller of one request; ``operator`` is their operator id (role operator)."""

    name: str
    role: Role
    operator: str | None = None

    def can_act_for(self, operator_id: str) -> bool:
        """Admins and supervisors act for anyone; an operator only for their own id."""
        if self.role is not Role.OPERATOR:
            return True
        return self.operator is not None and self.operator == operator_id

    @property
    def supervises(self) -> bool:
        return self.role in SUPERVISORS


Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
RequestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL = web.RequestKey("principal", Principal)
ADMIN = Principal(name="admin", role=Role.ADMIN)


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None for any other header or none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH or " " in token:
        return None
    return token


async def principal_for_token(app: web.Application, token: str) -> Principal | None:
    """The principal holding ``token``: the built-in admin or an active user; None if nobody.

    Raises ``SQLAlchemyError`` or ``OSError`` when the user database is unreachable (the settings'
    admin token works without it).
    """
    expected = app[CONTROLLER].settings.admin_token.get_secret_value()
    # constant time: the admin token is compared in memory, where timing would leak it
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return ADMIN
    users = app.get(USERS)
    if users is None:
        return None
    user = await users.authenticate(token)
    if user is None:
        return None
    return Principal(name=user.name, role=user.role, operator=user.operator)


async def authenticate(request: web.Request) -> Principal | web.Response:
    """The request's principal, or the 401 (or 503) answer to send instead."""
    token = bearer_token(request)
    if token is None:
        _refused(request, "no bearer token")
        return error_response(401, UNAUTHORIZED)
    try:
        principal = await principal_for_token(request.app, token)
    except (SQLAlchemyError, OSError) as exc:
        log.error("API %s: user database unavailable: %s", request.path, type(exc).__name__)
        return error_response(503, "the user database is unavailable; try again")
    if principal is None:
        _refused(request, "unknown, rotated or disabled token")
        return error_response(401, UNAUTHORIZED)
    return principal


def _refused(request: web.Request, why: str) -> None:
    security_log.warning("security: %s %s refused (%s) from %s", request.method, request.path, why, request.remote)


def requires(*roles: Role) -> Callable[[Handler], RequestHandler]:
    """Make an aiohttp handler of ``async (request, principal)`` that only ``roles`` may call
    (every role when none is given): 401 without a valid bearer token, 403 for another role.

    Example::

        app.router.add_get("/api/me", requires()(me))
    """
    allowed = frozenset(roles or ANY_ROLE)
    names = " or ".join(role.value for role in ANY_ROLE if role in allowed)

    def decorate(handler: Handler) -> RequestHandler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            principal = await authenticate(request)
            if isinstance(principal, web.Response):
                return principal
            if principal.role not in allowed:
                security_log.warning(
                    "security: %s %s refused to %s (role %s) from %s",
                    request.method,
                    request.path,
                    principal.name,
                    principal.role.value,
                    request.remote,
                )
                return error_response(403, f"forbidden: {request.method} {request.path} needs the role {names}")
            request[PRINCIPAL] = principal
            return await handler(request, principal)

        return wrapped

    return decorate


def forbidden(message: str) -> web.Response:
    return error_response(403, f"forbidden: {message}")


async def audit(
    app: web.Application, principal: Principal, action: str, subject: str | None, detail: dict[str, Any]
) -> None:
    """Write one ``audit_log`` row for a change ``principal`` made (and log it).

    ``action`` is short and dotted (``"agent.pause"``, ``"call.transfer"``), ``subject`` the id it
    touched, ``detail`` a JSON object with no personal data and no secrets. The change is already
    made when this runs, so a database failure is logged, not raised: the caller still gets the
    truth about their change.
    """
    audit_log.info("audit: %s %s %s %s", principal.name, action, subject or "-", detail)
    sessions = app_sessions(app)
    if sessions is None:
        log.error("audit: no database, %s by %s on %s not recorded", action, principal.name, subject)
        return
    entry = AuditEntry(
        at=datetime.now(UTC),
        actor=principal.name[:64],
        action=action[:32],
        subject=None if subject is None else subject[:64],
        detail=dict(detail),
    )
    try:
        async with sessions.begin() as session:
            session.add(entry)
    except (SQLAlchemyError, OSError) as exc:
        log.error("audit: %s by %s on %s not recorded: %s", action, principal.name, subject, type(exc).__name__)


__all__ = [
    "ADMIN",
    "ADMINS",
    "ANY_ROLE",
    "PRINCIPAL",
    "SUPERVISORS",
    "Handler",
    "Principal",
    "Role",
    "audit",
    "authenticate",
    "bearer_token",
    "principal_for_token",
    "requires",
]
