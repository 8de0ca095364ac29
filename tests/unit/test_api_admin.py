"""Health, reload, users, the plan's roles and the KPI report through the API (see
``test_api_support`` for the bench)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_api_support import Bench, open_bench
from unico.controller import ReloadResult


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with open_bench(tmp_path) as opened:
        yield opened


async def test_given_no_token_when_health_asked_then_200(bench: Bench) -> None:
    assert await bench.call("GET", "/health", as_=None) == (200, {"ready": True, "calls": 0})


@pytest.mark.parametrize("path", ["/api/config/reload", "/admin/reload"])
async def test_given_admin_when_reloading_then_new_version_and_audited(bench: Bench, path: str) -> None:
    assert await bench.call("POST", path) == (200, {"ok": True, "version": "v2", "errors": []})
    assert (await bench.audit())[-1] == ("admin", "config.reload", "v2", {"ok": True, "version": "v2", "errors": 0})


async def test_given_broken_config_when_reloading_then_422_with_errors_and_audited(bench: Bench) -> None:
    async def refused() -> ReloadResult:
        return ReloadResult(ok=False, version="v1", errors=["main.yaml:3: bad"])

    bench.controller.reload = refused
    assert await bench.call("POST", "/api/config/reload") == (
        422,
        {"ok": False, "version": "v1", "errors": ["main.yaml:3: bad"]},
    )
    assert (await bench.audit())[-1][3] == {"ok": False, "version": "v1", "errors": 1}


# -- users ----------------------------------------------------------------------------------------


async def test_given_admin_when_managing_users_then_tokens_once_and_every_change_audited(bench: Bench) -> None:
    status, created = await bench.call(
        "POST", "/api/users", body={"name": "carla", "role": "operator", "operator": "op1003"}
    )
    assert status == 201
    assert (created["name"], created["role"], created["operator"], created["disabled_at"]) == (
        "carla",
        "operator",
        "op1003",
        None,
    )
    bench.tokens["carla"] = created["token"]
    assert (await bench.call("GET", "/api/me", as_="carla"))[1]["operator"] == "op1003"

    status, listed = await bench.call("GET", "/api/users")
    assert status == 200 and [u["name"] for u in listed] == ["carla", "op1", "op2", "sup"]
    assert all("token" not in u and "token_hash" not in u for u in listed)

    status, rotated = await bench.call("POST", "/api/users/carla/rotate")
    assert status == 200 and rotated["token"] != created["token"]
    status, disabled = await bench.call("POST", "/api/users/carla/disable")
    assert status == 200 and disabled["disabled_at"] is not None and "token" not in disabled

    audit = [(a[0], a[1], a[2]) for a in await bench.audit() if a[0] == "admin"]
    assert audit == [
        ("admin", "user.create", "carla"),
        ("admin", "user.rotate", "carla"),
        ("admin", "user.disable", "carla"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "x", "role": "root"}, 400, "role: Input should be 'admin', 'supervisor' or 'operator'"),
        ({"name": "a b", "role": "admin"}, 400, "name: String should match pattern"),
        ({"role": "admin"}, 400, "name: Field required"),
        ({"name": "x", "role": "operator"}, 400, "an operator user needs the operator id"),
        ({"name": "admin", "role": "admin"}, 400, "reserved for the settings' admin token"),
        ({"name": "sup", "role": "admin"}, 409, "user 'sup' exists already"),
    ],
)
async def test_given_bad_new_user_when_posted_then_clear_error(
    bench: Bench, body: dict[str, Any], status: int, message: str
) -> None:
    answer = await bench.call("POST", "/api/users", body=body)
    assert answer[0] == status and message in answer[1]["error"], answer


async def test_given_unknown_or_disabled_user_when_changed_then_404_or_409(bench: Bench) -> None:
    assert await bench.call("POST", "/api/users/nobody/disable") == (404, {"error": "no user 'nobody'"})
    assert await bench.call("POST", "/api/users/nobody/rotate") == (404, {"error": "no user 'nobody'"})
    await bench.call("POST", "/api/users/op2/disable")
    assert await bench.call("POST", "/api/users/op2/rotate") == (409, {"error": "user 'op2' is disabled"})


# -- plan -----------------------------------------------------------------------------------------


async def test_given_roles_when_planning_then_operators_refused_and_supervisors_validated(bench: Bench) -> None:
    assert (await bench.call("POST", "/api/plan", as_="op1", body={}))[0] == 403
    status, body = await bench.call("POST", "/api/plan", as_="sup", body={})
    assert status == 400 and "give exactly one of 'history' or 'forecast'" in str(body["problems"])
    status, body = await bench.call("POST", "/api/plan", as_="sup", data=b"{nope")
    assert status == 400 and body["error"].startswith("body is not JSON")


# -- KPI report -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "from: Field required; to: Field required"),
        ("?from=2026-03-02&to=2026-03-01", "to must be after from"),
        ("?from=2025-01-01&to=2026-03-01", "at most 400 days"),
        ("?from=2026-03-01&to=2026-03-02&interval=week", "interval: Input should be"),
        ("?from=2026-03-01&to=2026-03-02&by=site", "by: Input should be"),
        ("?from=2026-03-01&to=2026-03-02&format=xls", "format: Input should be 'json', 'csv' or 'png'"),
        ("?from=march&to=2026-03-02", "from: Input should be a valid datetime"),
    ],
)
async def test_given_invalid_report_query_when_asked_then_400(bench: Bench, query: str, message: str) -> None:
    status, body = await bench.call("GET", f"/api/reports/kpi{query}", as_="sup")
    assert status == 400 and message in body["error"], body


async def test_given_supervisor_when_asking_kpis_then_json_and_csv(bench: Bench) -> None:
    await bench.contact("c-1", operator="op1001")
    period = "?from=2026-03-01&to=2026-03-03&interval=day&by=queue"

    status, report = await bench.call("GET", f"/api/reports/kpi{period}", as_="sup")
    assert status == 200, report
    assert isinstance(report, dict)

    response = await bench.client.get(
        f"/api/reports/kpi{period}&format=csv", headers={"Authorization": f"Bearer {bench.tokens['sup']}"}
    )
    assert response.status == 200 and response.content_type == "text/csv"
    assert 'filename="kpi-2026-03-01-2026-03-03.csv"' in response.headers["Content-Disposition"]
    assert (await response.text()).splitlines()[0].startswith("start,end,")
    assert (await bench.call("GET", f"/api/reports/kpi{period}", as_="op1"))[0] == 403


async def test_given_no_reports_package_when_kpis_asked_then_503(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reports.load", None)
    status, body = await bench.call("GET", "/api/reports/kpi?from=2026-03-01&to=2026-03-02", as_="sup")
    assert (status, body) == (503, {"error": "reports not available"})
