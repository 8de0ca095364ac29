"""Who may call what: bearer tokens, roles, the audit log, JSON errors, and the OpenAPI document
that is written from the same route table as the app (see ``test_api_support`` for the bench)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from contacts.users import hash_token
from tests.unit.test_api_support import ADMIN_TOKEN, Bench, open_bench
from unico.api import ROUTES, Principal, Role, make_app, requires
from unico.api.auth import audit
from unico.api.openapi import document


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with open_bench(tmp_path) as opened:
        yield opened


def _protected() -> list[tuple[str, str]]:
    """Every protected route with its path parameters filled in."""
    return [
        (route.method, route.path.replace("{", "x").replace("}", "")) for route in ROUTES if route.roles is not None
    ]


# -- 401 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dTpw"},
        {"Authorization": ADMIN_TOKEN},  # the right token without the scheme
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": f"Token {ADMIN_TOKEN}"},
        {"Authorization": f"Bearer {ADMIN_TOKEN} extra"},
    ],
)
async def test_given_no_or_bad_token_when_any_protected_route_called_then_401_json_and_nothing_audited(
    bench: Bench, headers: dict[str, str]
) -> None:
    for method, path in _protected():
        status, body = await bench.call(method, path, as_=None, headers=headers, body={})
        assert status == 401, (method, path, body)
        assert body == {"error": "unauthorized: send 'Authorization: Bearer <token>'"}
    assert [a for a in await bench.audit() if a[0] != "test"] == []


async def test_given_bearer_in_any_case_when_called_then_accepted(bench: Bench) -> None:
    # RFC 7235 section 2.1: the scheme name is case-insensitive
    status, body = await bench.call("GET", "/api/me", as_=None, headers={"Authorization": f"bearer {ADMIN_TOKEN}"})
    assert status == 200 and body["name"] == "admin"


async def test_given_refused_token_when_logged_then_remote_address_but_never_the_token(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "guess-0123456789abcdef"
    with caplog.at_level(logging.WARNING, logger="unico.security"):
        await bench.call("GET", "/api/agents", as_=None, headers={"Authorization": f"Bearer {secret}"})
        await bench.call("POST", "/api/users", as_="op1", body={"name": "x", "role": "admin"})
    messages = [r.getMessage() for r in caplog.records if r.name == "unico.security"]
    assert len(messages) == 2
    assert "GET /api/agents refused (unknown, rotated or disabled token) from 127.0.0.1" in messages[0]
    assert "refused to op1 (role operator) from 127.0.0.1" in messages[1]
    assert not any(secret in m or bench.tokens["op1"] in m for m in messages)


# -- principals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", {"name": "admin", "role": "admin", "operator": None}),
        ("sup", {"name": "sup", "role": "supervisor", "operator": None}),
        ("op1", {"name": "op1", "role": "operator", "operator": "op1001"}),
    ],
)
async def test_given_token_when_me_asked_then_its_principal(bench: Bench, who: str, expected: dict[str, Any]) -> None:
    assert await bench.call("GET", "/api/me", as_=who) == (200, expected)


async def test_given_disabled_user_when_calling_then_401_at_once_in_this_process(bench: Bench) -> None:
    assert (await bench.call("GET", "/api/me", as_="op1"))[0] == 200  # cached now

    status, body = await bench.call("POST", "/api/users/op1/disable")

    assert status == 200 and body["disabled_at"] is not None
    assert (await bench.call("GET", "/api/me", as_="op1"))[0] == 401


async def test_given_rotated_token_when_old_one_used_then_401_and_new_one_works(bench: Bench) -> None:
    old = bench.tokens["sup"]
    status, body = await bench.call("POST", "/api/users/sup/rotate")
    assert status == 200 and body["token"] != old
    bench.tokens["new"] = body["token"]

    assert (await bench.call("GET", "/api/me", as_="sup"))[0] == 401
    assert (await bench.call("GET", "/api/me", as_="new"))[1]["name"] == "sup"


def test_given_principals_when_acting_for_operators_then_operators_only_for_themselves() -> None:
    operator = Principal(name="anna", role=Role.OPERATOR, operator="op1001")
    assert operator.can_act_for("op1001") and not operator.can_act_for("op1002")
    assert not Principal(name="x", role=Role.OPERATOR).can_act_for("op1001")
    assert Principal(name="s", role=Role.SUPERVISOR).can_act_for("op1002")
    assert Principal(name="a", role=Role.ADMIN).can_act_for("anyone")


# -- 403 ------------------------------------------------------------------------------------------


async def test_given_operator_when_calling_supervisor_and_admin_routes_then_403_naming_the_role(bench: Bench) -> None:
    for route in ROUTES:
        if route.roles is None or Role.OPERATOR in route.roles:
            continue
        path = route.path.replace("{", "x").replace("}", "")
        status, body = await bench.call(route.method, path, as_="op1", body={})
        assert status == 403, (route.method, path, body)
        assert body["error"].startswith(f"forbidden: {route.method} {path} needs the role")


async def test_given_supervisor_when_calling_admin_routes_then_403(bench: Bench) -> None:
    for method, path in [("GET", "/api/users"), ("POST", "/api/config/reload"), ("POST", "/admin/reload")]:
        assert (await bench.call(method, path, as_="sup"))[0] == 403


async def test_given_requires_when_used_as_a_decorator_then_handler_gets_the_principal(bench: Bench) -> None:
    @requires(Role.SUPERVISOR)
    async def handler(request: web.Request, principal: Principal) -> web.StreamResponse:
        await audit(request.app, principal, "test.touch", "thing-1", {"n": 1})
        return web.json_response({"name": principal.name})

    app = make_app(bench.controller, console=False)
    app.router.add_get("/api/extra", handler)
    async with TestClient(TestServer(app)) as client:
        ok = await client.get("/api/extra", headers={"Authorization": f"Bearer {bench.tokens['sup']}"})
        assert (ok.status, await ok.json()) == (200, {"name": "sup"})
        refused = await client.get("/api/extra", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert refused.status == 403
        assert (await client.get("/api/extra")).status == 401
    assert (await bench.audit())[-1] == ("sup", "test.touch", "thing-1", {"n": 1})


# -- tokens at rest -------------------------------------------------------------------------------


async def test_given_users_when_stored_then_the_database_holds_only_hashes(bench: Bench, tmp_path: Path) -> None:
    status, created = await bench.call("POST", "/api/users", body={"name": "new", "role": "supervisor"})
    assert status == 201
    raw = (tmp_path / "state" / "unico.db").read_bytes()
    for path in (tmp_path / "state").glob("unico.db*"):
        raw += path.read_bytes()
    for token in (*bench.tokens.values(), created["token"]):
        if token == ADMIN_TOKEN:
            continue
        assert token.encode() not in raw
    assert hash_token(created["token"]).encode() in raw


# -- errors ---------------------------------------------------------------------------------------


async def test_given_unknown_route_or_action_when_called_then_404_json_listing_the_actions(bench: Bench) -> None:
    status, body = await bench.call("POST", "/api/agents/op1001/fly")
    assert status == 404
    assert body == {"error": "no action 'fly'; use login, logout, ready, pause or force"}
    status, body = await bench.call("GET", "/api/nothing")
    assert (status, body["error"]) == (404, "no route GET /api/nothing; the routes are in GET /api/openapi.json")


async def test_given_wrong_method_when_called_then_405_json_with_allow(bench: Bench) -> None:
    response = await bench.client.delete("/api/agents", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 405
    assert (await response.json())["error"] == "DELETE is not allowed on /api/agents"
    assert "GET" in response.headers["Allow"]


async def test_given_too_large_body_when_posted_then_413(bench: Bench) -> None:
    big = io.BytesIO(b'{"reason": "' + b"x" * 2_000_000 + b'"}')
    response = await bench.client.post(
        "/api/agents/op1001/pause", data=big, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status == 413 and "body larger than" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "body is not JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b"\xff\xfe", "body is not JSON"),
        (b'"text"', "body must be a JSON object"),
    ],
)
async def test_given_malformed_body_when_posted_then_400(bench: Bench, data: bytes, message: str) -> None:
    status, body = await bench.call("POST", "/api/calls/c-1/transfer", data=data)
    assert status == 400 and message in body["error"]


# Every route, every principal, hostile inputs: the API answers, it never fails with a 500.
_HOSTILE_BODIES: list[bytes] = [
    b"",
    b"{}",
    b"null",
    b"[]",
    b"{bad",
    b'{"reason": null, "state": 5, "queue": [], "operator": {}, "code": ""}',
    b'{"name": "\\u0000", "role": "root", "text": "' + b"a" * 20_000 + b'"}',
    b'{"to": "closed", "category": 1, "by": true, "mode": "shout", "supervisor": "x"}',
]
_HOSTILE_IDS = ["op1001", "x", "%00", "..", "a" * 300, "999999999", "0" * 32, "%F0%9F%98%80"]
_HOSTILE_QUERIES = ["", "?limit=-1", "?limit=abc&limit=2", "?from=2026-13-01", "?from=2026-03-02&to=2026-03-01", "?x=1"]


async def test_given_hostile_requests_when_sent_to_every_route_then_never_500(bench: Bench) -> None:
    answered: set[int] = set()

    async def send(method: str, path: str, who: str, data: bytes | None) -> None:
        status, body = await bench.call(method, path, as_=who, data=data)
        assert status < 500 or status == 503, (method, path, who, data, body)
        if isinstance(body, dict) and status >= 400:
            assert isinstance(body.get("error"), str)
        answered.add(status)

    for route in ROUTES:
        if route.path == "/api/plan":
            continue  # the planner's own validation has its tests (test_wfm_plan)
        variants = [_fill(route.path, value) for value in _HOSTILE_IDS]
        for who in ("admin", "op1"):
            for path in variants:
                await send(route.method, path, who, b"{}" if route.method == "POST" else None)
            if route.method == "GET":
                for extra in _HOSTILE_QUERIES:
                    await send(route.method, variants[0] + extra, who, None)
            else:
                for data in _HOSTILE_BODIES:
                    await send(route.method, variants[0], who, data)
    assert {200, 400, 403, 404} <= answered


def _fill(template: str, value: str) -> str:
    for name in ("agent_id", "call_id", "contact_id", "customer_id", "number", "name"):
        template = template.replace("{" + name + "}", value)
    return template


# -- OpenAPI --------------------------------------------------------------------------------------


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def _doc_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


async def test_given_the_app_when_documented_then_every_route_and_method_appears_and_nothing_else(
    bench: Bench,
) -> None:
    status, doc = await bench.call("GET", "/api/openapi.json", as_=None)

    assert status == 200
    assert doc["openapi"].startswith("3.1")
    assert _doc_routes(doc) == _app_routes(bench.client.app)
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    pause = doc["paths"]["/api/agents/{agent_id}/pause"]["post"]
    assert pause["x-roles"] == ["admin", "supervisor", "operator"] and pause["security"] == [{"bearer": []}]
    assert pause["parameters"][0] == {"name": "agent_id", "in": "path", "required": True, "schema": {"type": "string"}}
    reason = doc["components"]["schemas"]["PauseBody"]["properties"]["reason"]
    assert reason["enum"] == ["break", "lunch", "training", "meeting", "backoffice"]
    assert {"401", "403", "404", "400", "200"} <= set(pause["responses"])
    contacts = {p["name"] for p in doc["paths"]["/api/contacts"]["get"]["parameters"]}
    assert contacts == {"from", "to", "queue", "operator", "customer", "outcome", "limit"}
    assert doc["paths"]["/health"]["get"]["security"] == []


async def test_given_the_console_when_installed_then_its_routes_come_on_top_of_the_documented_ones(
    tmp_path: Path,
) -> None:
    async with open_bench(tmp_path, console=True) as bench:
        app_routes = _app_routes(bench.client.app)
    documented = _doc_routes(document(ROUTES))
    assert documented <= app_routes
    extra = app_routes - documented
    assert all(not path.startswith(("/api/agents", "/api/calls", "/api/users")) for _, path in extra), extra


def test_given_the_document_when_built_then_operation_ids_are_unique_and_refs_resolve() -> None:
    doc = document(ROUTES)
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    text = str(doc)
    for name in doc["components"]["schemas"]:
        assert name.isidentifier()
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref
