"""The REST API on the controller's HTTP server: per-user tokens, roles, audit, OpenAPI.

Public surface (the rest is internal)::

    from unico.api import make_app, start_site, Role, Principal, requires, audit

Routes (``GET /api/openapi.json`` has every body and parameter; docs/api.md has examples)::

    GET  /health                                   no token: readiness and counters
    GET  /api/openapi.json                         no token: the OpenAPI 3.1 document
    GET  /api/me                                   {name, role, operator}
    GET  /api/agents, /api/agents/{id}             roster data and live state
    POST /api/agents/{id}/login|logout|ready       operators: only their own id
    POST /api/agents/{id}/pause                    {"reason": "break|lunch|training|meeting|backoffice"}
    POST /api/agents/{id}/force                    supervisors: {"state": "ready|not_ready|logged_out", "reason"}
    GET  /api/agents/{id}/screenpop                the call offered or talking, its customer and history
    GET  /api/calls, /api/calls/{id}               live calls (operators: their own)
    POST /api/calls/{id}/transfer                  {"queue"} or {"operator"} (operators: a call they are on)
    POST /api/calls/{id}/move                      supervisors: {"queue"}, a waiting call
    POST /api/calls/{id}/wrapup                    {"code", "disposition"?, "resolved"?}
    POST /api/calls/{id}/monitor                   supervisors: {"mode": "listen|whisper|barge", "supervisor"}
    GET  /api/queues                               per queue: tier and calls waiting
    GET  /api/contacts, /api/contacts/{id}         contact records (operators: theirs, caller masked)
    GET  /api/customers/{id}                       profile, last contacts, open complaints
    GET  /api/complaints, /api/complaints/{number}
    POST /api/complaints                           open
    POST /api/complaints/{number}/comment
    POST /api/complaints/{number}/assign|move      supervisors
    GET  /api/reports/kpi                          supervisors: ?from=&to=&interval=&by=&format=json|csv|png
    POST /api/plan                                 supervisors: workforce plan (docs/wfm.md)
    POST /api/config/reload, /admin/reload         admins
    GET  /api/users, POST /api/users               admins
    POST /api/users/{name}/disable|rotate          admins

Every route but the first two needs ``Authorization: Bearer <token>``: the settings' admin token
(the built-in principal ``admin``) or a user's (``unico users add``). Errors are JSON
``{"error": "..."}``: 400 bad input, 401 no or bad token, 403 role or operator not allowed, 404
unknown id or route, 409 not possible now, 413 body too large, 422 refused (reload, plan), 503 a
service it needs is down.

The names load on first use (PEP 562): ``unico users`` registers its parser on every ``unico``
command, which must not pay for importing the controller and the database layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unico.api.app import ROUTES, make_app, start_site
    from unico.api.auth import Principal, Role, audit, principal_for_token, requires
    from unico.api.context import CONTROLLER, USERS
    from unico.api.errors import ApiError
    from unico.api.routing import Route

_HOMES = {
    "unico.api.app": ("ROUTES", "make_app", "start_site"),
    "unico.api.auth": ("Principal", "Role", "audit", "principal_for_token", "requires"),
    "unico.api.context": ("CONTROLLER", "USERS"),
    "unico.api.errors": ("ApiError",),
    "unico.api.routing": ("Route",),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'unico.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CONTROLLER",
    "ROUTES",
    "USERS",
    "ApiError",
    "Principal",
    "Role",
    "Route",
    "audit",
    "make_app",
    "principal_for_token",
    "requires",
    "start_site",
]
