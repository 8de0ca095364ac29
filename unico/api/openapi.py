"""The OpenAPI 3.1 document, written from the route table that also registers the routes.

Request bodies and query parameters are the pydantic models the routes validate with, so the
schemas are the validation; path parameters come from the path templates; every protected route
names its roles (``x-roles``) and the bearer scheme. ``GET /api/openapi.json`` serves it.

Example::

    doc = document(ROUTES)
    doc["paths"]["/api/agents/{agent_id}/pause"]["post"]["requestBody"]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from unico.api.routing import ROUTES, Route, operation_id

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{([^}:]+)}")
_ERRORS = {
    400: "invalid input; 'error' names every problem",
    401: "no or bad bearer token",
    403: "the role or the operator may not do this",
    404: "unknown id",
    409: "not possible in the current state",
    413: "body too large",
    422: "refused: 'errors' or 'problems' say why",
    503: "a service it needs is unavailable (database, Redis, supervision, reports)",
}


def document(routes: Sequence[Route], *, title: str = "Unico API", version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (see the module docstring)."""
    models: list[type[BaseModel]] = []
    for route in routes:
        for model in (route.body, route.query):
            if model is not None and model not in models:
                models.append(model)
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
        "additionalProperties": True,
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": operation_id(route),
            "summary": route.summary,
            "tags": [route.tag] if route.tag else [],
            "responses": _responses(route),
        }
        if route.description:
            operation["description"] = route.description
        if route.roles is None:
            operation["security"] = []
        else:
            operation["security"] = [{"bearer": []}]
            operation["x-roles"] = [role.value for role in route.roles]
            operation["description"] = (
                f"{route.description}\n\n" if route.description else ""
            ) + f"Roles: {', '.join(r.value for r in route.roles)}."
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(route.path)
        ]
        if route.query is not None:
            parameters += _query_parameters(route.query)
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            schema = refs[(route.body, "validation")]
            operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": schema}}}
        elif route.body_schema is not None:
            schema = dict(route.body_schema)
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Unico's REST API: operators, calls, contacts, complaints, reports, users. "
            'Errors are JSON {"error": "..."}. See docs/api.md.',
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, by_alias=True)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _responses(route: Route) -> dict[str, Any]:
    success: dict[str, Any] = {"description": route.response}
    success["content"] = {media: {} for media in route.produces}
    responses: dict[str, Any] = {str(route.status): success}
    statuses = set(route.errors)
    if route.body is not None or route.query is not None or route.body_schema is not None:
        statuses.add(400)
    if route.roles is not None:
        statuses |= {401, 403}
    if _PARAM.search(route.path):
        statuses.add(404)
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
    return responses


async def serve(request: web.Request) -> web.StreamResponse:
    routes: tuple[Route, ...] = request.app[ROUTES]
    return web.json_response(document(routes))


OPENAPI_ROUTE = Route(
    "GET",
    "/api/openapi.json",
    serve,
    summary="This document (no token)",
    roles=None,
    response="the OpenAPI 3.1 document",
    tag="admin",
)
