"""The complaints REST API through aiohttp's test server, on SQLite and PostgreSQL (``store``).

The controller is a stand-in with the two things the API uses: ``store`` (a real ContactStore on
the test database) and ``settings`` (the admin token and the deadlines). Users: the settings'
admin token (which may name the author in ``by``), a supervisor and an operator user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select

from contacts import ComplaintStore, ContactStore, CustomerIn, CustomerStore
from contacts.models import AuditEntry
from contacts.users import Role, UserStore
from unico.controller import Controller
from unico.web import make_app

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _controller(store: ContactStore, deadlines: dict[str, str] | None = None) -> Controller:
    settings = SimpleNamespace(admin_token=SecretStr(TOKEN), complaint_deadlines=deadlines or {})
    return cast(Controller, SimpleNamespace(store=store, settings=settings))


async def _client(controller: Controller) -> TestClient[web.Request, web.Application]:
    app = make_app(controller, console=False)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(store: ContactStore) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    opened = await _client(_controller(store, {"insurance": "30 calendar"}))
    try:
        yield opened
    finally:
        await opened.close()


async def _open(client: TestClient[web.Request, web.Application], **body: Any) -> dict[str, Any]:
    payload = {"category": "parcels", "by": "op1003", **body}
    response = await client.post("/api/complaints", json=payload, headers=AUTH)
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def _error(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dTpw"},
        {"Authorization": TOKEN},  # the right token without the Bearer scheme
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
async def test_given_no_or_bad_token_when_any_route_called_then_401_and_nothing_written(
    client: TestClient[web.Request, web.Application], store: ContactStore, headers: dict[str, str]
) -> None:
    move = {"to": "closed", "by": "x"}
    assert "unauthorized" in await _error(await client.get("/api/complaints", headers=headers), 401)
    assert "unauthorized" in await _error(await client.get("/api/complaints/123456789", headers=headers), 401)
    response = await client.post("/api/complaints", json={"category": "parcels", "by": "x"}, headers=headers)
    assert "unauthorized" in await _error(response, 401)
    response = await client.post("/api/complaints/123456789/move", json=move, headers=headers)
    assert "unauthorized" in await _error(response, 401)
    assert await ComplaintStore(store.sessions).search() == []


# -- roles --------------------------------------------------------------------------------------


async def _user(store: ContactStore, name: str, role: Role, operator: str | None = None) -> dict[str, str]:
    _, token = await UserStore(store.sessions).create(name, role, operator=operator, by="test")
    return {"Authorization": f"Bearer {token}"}


async def test_given_operator_user_when_opening_and_commenting_then_they_are_the_author_and_audited(
    client: TestClient[web.Request, web.Application], store: ContactStore
) -> None:
    operator = await _user(store, "anna", Role.OPERATOR, "op1001")
    payload = {"category": "parcels", "by": "someone-else", "description": "late"}

    opened = await client.post("/api/complaints", json=payload, headers=operator)
    assert opened.status == 201
    number = (await opened.json())["number"]
    commented = await client.post(f"/api/complaints/{number}/comment", json={"text": "called back"}, headers=operator)
    assert commented.status == 200

    detail = await (await client.get(f"/api/complaints/{number}", headers=operator)).json()
    assert [(h["action"], h["by"]) for h in detail["history"]] == [("opened", "anna"), ("comment", "anna")]
    async with store.sessions() as session:
        audit = (await session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.subject))).all()
    assert [tuple(row) for row in audit if row[0] == "anna"] == [
        ("anna", "complaint.open", number),
        ("anna", "complaint.comment", number),
    ]


async def test_given_operator_user_when_assigning_or_moving_then_403_and_supervisor_may(
    client: TestClient[web.Request, web.Application], store: ContactStore
) -> None:
    operator = await _user(store, "anna", Role.OPERATOR, "op1001")
    supervisor = await _user(store, "sara", Role.SUPERVISOR)
    number = (await _open(client))["number"]

    for action, body in [("assign", {"owner": "anna"}), ("move", {"to": "closed"})]:
        refused = await client.post(f"/api/complaints/{number}/{action}", json=body, headers=operator)
        assert "needs the role admin or supervisor" in await _error(refused, 403)
    assigned = await client.post(f"/api/complaints/{number}/assign", json={"owner": "anna"}, headers=supervisor)
    assert assigned.status == 200
    detail = await (await client.get(f"/api/complaints/{number}", headers=operator)).json()
    assert (detail["status"], detail["owner"], detail["history"][-1]["by"]) == ("assigned", "anna", "sara")


# -- open and read ------------------------------------------------------------------------------


async def test_given_operator_when_opening_twice_for_the_same_call_then_one_complaint_201(
    client: TestClient[web.Request, web.Application], store: ContactStore
) -> None:
    customer, _ = await CustomerStore(store.sessions).upsert(CustomerIn(phones=("3331234567",), name="Anna"))
    body = {
        "contact_id": "c-1",
        "customer_id": customer.id,
        "caller": "333 123 4567",
        "category": "insurance",  # added by the deadlines setting
        "description": "SIM blocked",
    }

    first = await _open(client, **body)
    again = await _open(client, **body)

    assert again == first
    assert (first["status"], first["channel"], first["caller"], first["overdue"]) == (
        "received",
        "operator",
        "+393331234567",
        False,
    )
    response = await client.get(f"/api/complaints/{first['number']}", headers=AUTH)
    assert response.status == 200
    detail = await response.json()
    assert detail["description"] == "SIM blocked"
    assert [(h["action"], h["by"], h["to"]) for h in detail["history"]] == [("opened", "op1003", "received")]


async def test_given_complaint_when_assigned_moved_and_commented_then_200_and_history_grows(
    client: TestClient[web.Request, web.Application],
) -> None:
    number = (await _open(client))["number"]

    steps = [
        ("assign", {"owner": "op1004", "by": "sup1", "comment": "parcels desk"}),
        ("move", {"to": "in_progress", "by": "op1004"}),
        ("comment", {"text": "called the depot", "by": "op1004"}),
        ("move", {"to": "resolved", "by": "op1004", "comment": "found"}),
    ]
    for action, body in steps:
        response = await client.post(f"/api/complaints/{number}/{action}", json=body, headers=AUTH)
        assert response.status == 200, await response.text()

    detail = await (await client.get(f"/api/complaints/{number}", headers=AUTH)).json()
    assert (detail["status"], detail["owner"]) == ("resolved", "op1004")
    assert [(h["action"], h["from"], h["to"], h["comment"]) for h in detail["history"]] == [
        ("opened", None, "received", None),
        ("assigned", "received", "assigned", "parcels desk"),
        ("moved", "assigned", "in_progress", None),
        ("comment", "in_progress", "in_progress", "called the depot"),
        ("moved", "in_progress", "resolved", "found"),
    ]


async def test_given_complaints_when_listed_with_filters_then_only_matching_ones(
    client: TestClient[web.Request, web.Application], store: ContactStore
) -> None:
    # Opened in 2025 with 15 business days: long overdue by any real "now".
    old = ComplaintStore(store.sessions, clock=lambda: datetime(2025, 4, 17, 8, 0, tzinfo=UTC))
    late = await old.open(
        contact_id="c-old",
        customer_id=None,
        caller=None,
        category="payments",
        recording=None,
        channel="ivr",
        description="double charge",
    )
    fresh = (await _open(client, description="Parcel lost"))["number"]

    async def numbers(query: str) -> list[str]:
        response = await client.get(f"/api/complaints{query}", headers=AUTH)
        assert response.status == 200, await response.text()
        return [item["number"] for item in await response.json()]

    assert await numbers("") == [fresh, late.number]
    assert await numbers("?overdue=true") == [late.number]
    assert await numbers("?overdue=false") == [fresh]
    assert await numbers("?category=parcels&status=received") == [fresh]
    assert await numbers("?text=CHARGE") == [late.number]
    assert await numbers("?owner=nobody") == []
    assert await numbers("?limit=1") == [fresh]


# -- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "body is not JSON"),
        ("[1, 2]", "body must be a JSON object"),
        ("{}", "category: Field required"),
        ('{"category": "parcels", "by": "op1", "caller": "anonymous"}', "caller: not a telephone number"),
        (
            '{"category": "weather", "by": "op1"}',
            "no complaint category 'weather'; known: banking, insurance, mobile, other",
        ),
        ('{"category": "parcels", "by": "op1", "customer_id": "' + "f" * 32 + '"}', "no customer"),
        ('{"category": "parcels", "by": "op1", "customer_id": "3331234567"}', "customer_id: String should match"),
        ('{"category": "parcels", "by": "op1", "channel": "pigeon"}', "channel: Input should be"),
        ('{"category": "parcels", "by": "op1", "priority": 1}', "priority: Extra inputs are not permitted"),
        ('{"category": "parcels", "by": "  "}', "by: String should have at least 1 character"),
    ],
)
async def test_given_invalid_body_when_opening_then_400_naming_the_problem(
    client: TestClient[web.Request, web.Application], store: ContactStore, body: str, message: str
) -> None:
    response = await client.post("/api/complaints", data=body, headers={**AUTH, "Content-Type": "application/json"})

    assert message in await _error(response, 400)
    assert await ComplaintStore(store.sessions).search() == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?status=done", "status: Input should be"),
        ("?overdue=maybe", "overdue: Input should be a valid boolean"),
        ("?limit=0", "limit: Input should be greater than or equal to 1"),
        ("?colour=red", "colour: Extra inputs are not permitted"),
        ("?owner=a&owner=b", "at most once"),
    ],
)
async def test_given_invalid_query_when_listing_then_400(
    client: TestClient[web.Request, web.Application], query: str, message: str
) -> None:
    assert message in await _error(await client.get(f"/api/complaints{query}", headers=AUTH), 400)


async def test_given_invalid_change_body_when_posted_then_400(client: TestClient[web.Request, web.Application]) -> None:
    number = (await _open(client))["number"]

    for action, body, message in [
        ("assign", {"by": "sup"}, "owner: Field required"),
        ("assign", {"owner": "op1", "by": "  "}, "by: String should have at least 1 character"),
        ("comment", {"text": "", "by": "op1"}, "text: String should have at least 1 character"),
        ("move", {"to": "done", "by": "op1"}, "to: Input should be"),
    ]:
        response = await client.post(f"/api/complaints/{number}/{action}", json=body, headers=AUTH)
        assert message in await _error(response, 400)


# -- not found and conflicts --------------------------------------------------------------------


async def test_given_unknown_complaint_or_action_when_called_then_404(
    client: TestClient[web.Request, web.Application],
) -> None:
    number = (await _open(client))["number"]

    assert "no complaint '999999999'" in await _error(await client.get("/api/complaints/999999999", headers=AUTH), 404)
    assert "no complaint" in await _error(await client.get("/api/complaints/abc", headers=AUTH), 404)
    response = await client.post("/api/complaints/999999999/assign", json={"owner": "a", "by": "b"}, headers=AUTH)
    assert "no complaint" in await _error(response, 404)
    response = await client.post(f"/api/complaints/{number}/delete", json={}, headers=AUTH)
    assert "use assign, comment or move" in await _error(response, 404)


async def test_given_lifecycle_when_illegal_move_posted_then_409_saying_what_is_allowed(
    client: TestClient[web.Request, web.Application],
) -> None:
    number = (await _open(client))["number"]

    response = await client.post(f"/api/complaints/{number}/move", json={"to": "resolved", "by": "op1"}, headers=AUTH)
    assert "by giving it an owner (assign)" in await _error(response, 409)

    await client.post(f"/api/complaints/{number}/assign", json={"owner": "op1", "by": "sup"}, headers=AUTH)
    response = await client.post(f"/api/complaints/{number}/move", json={"to": "closed", "by": "op1"}, headers=AUTH)
    message = await _error(response, 409)
    assert "cannot go from assigned to closed" in message and "may go to: in_progress" in message

    detail = await (await client.get(f"/api/complaints/{number}", headers=AUTH)).json()
    assert detail["status"] == "assigned" and len(detail["history"]) == 2


# -- single back end ----------------------------------------------------------------------------


async def test_given_database_down_when_listing_then_503_without_the_url() -> None:
    async with ContactStore("postgresql+asyncpg://unico:s3cret@127.0.0.1:1/unico") as down:
        client = await _client(_controller(down))
        try:
            message = await _error(await client.get("/api/complaints", headers=AUTH), 503)
        finally:
            await client.close()
    assert "unavailable" in message and "s3cret" not in message


def test_given_controller_app_when_made_then_complaint_routes_are_wired() -> None:
    app = make_app(cast(Controller, SimpleNamespace()))

    routes = {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource}

    assert {
        ("GET", "/api/complaints"),
        ("GET", "/api/complaints/{number}"),
        ("POST", "/api/complaints"),
        ("POST", "/api/complaints/{number}/assign"),
        ("POST", "/api/complaints/{number}/comment"),
        ("POST", "/api/complaints/{number}/move"),
    } <= routes
