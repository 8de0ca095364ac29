"""Operators through the API: list, read, login/logout/ready/pause/force, screen pop; who may do
what, and the audit rows (a real ACD on the test Redis, see ``test_api_support``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acd.agents import AgentState
from contacts import ComplaintStore, CustomerIn, CustomerStore
from tests.unit.test_api_support import NOW, Bench, open_bench


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with open_bench(tmp_path) as opened:
        yield opened


async def test_given_supervisor_when_listing_then_every_operator_and_operator_only_themselves(bench: Bench) -> None:
    status, everyone = await bench.call("GET", "/api/agents", as_="sup")
    assert status == 200
    assert [a["id"] for a in everyone][:3] == ["op1001", "op1002", "op1003"]
    first = everyone[0]
    assert (first["name"], first["state"], first["call_id"], first["tiers"]) == (
        "Giulia Rossi",
        "logged_out",
        None,
        ["general", "specialist"],
    )

    status, mine = await bench.call("GET", "/api/agents", as_="op1")
    assert status == 200 and [a["id"] for a in mine] == ["op1001"]


async def test_given_one_operator_when_read_then_200_or_403_for_others_and_404_unknown(bench: Bench) -> None:
    assert (await bench.call("GET", "/api/agents/op1001", as_="op1"))[1]["id"] == "op1001"
    status, body = await bench.call("GET", "/api/agents/op1002", as_="op1")
    assert (status, body) == (403, {"error": "forbidden: operators see only themselves"})
    status, body = await bench.call("GET", "/api/agents/nobody", as_="sup")
    assert (status, body) == (404, {"error": "no operator 'nobody'"})


async def test_given_operator_when_changing_own_state_then_200_and_audited(bench: Bench) -> None:
    steps = [
        ("login", None, "ready"),  # an unregistered softphone is not offered calls: not_ready(unregistered)
        ("pause", {"reason": "lunch"}, "not_ready"),
        ("logout", None, "logged_out"),
    ]
    for action, body, _ in steps:
        status, answer = await bench.call("POST", f"/api/agents/op1001/{action}", as_="op1", body=body)
        assert status == 200, answer
    assert answer["state"] == "logged_out"
    audit = [a for a in await bench.audit() if a[0] != "test"]
    assert [(a[0], a[1], a[2]) for a in audit] == [
        ("op1", "agent.login", "op1001"),
        ("op1", "agent.pause", "op1001"),
        ("op1", "agent.logout", "op1001"),
    ]
    assert audit[1][3] == {"reason": "lunch", "state": "not_ready"}


async def test_given_registered_operator_when_ready_then_ready(bench: Bench) -> None:
    assert bench.acd is not None
    await bench.acd.registration("op1001", True)
    await bench.call("POST", "/api/agents/op1001/login", as_="op1")
    await bench.call("POST", "/api/agents/op1001/pause", as_="op1")  # reason defaults to break
    agent = (await bench.call("GET", "/api/agents/op1001", as_="op1"))[1]
    assert (agent["state"], agent["reason"]) == ("not_ready", "break")

    status, answer = await bench.call("POST", "/api/agents/op1001/ready", as_="op1")

    assert (status, answer["state"], answer["registered"]) == (200, "ready", True)


async def test_given_operator_when_acting_for_someone_else_or_forcing_then_403_and_nothing_changes(
    bench: Bench,
) -> None:
    for action in ("login", "logout", "ready", "pause"):
        status, body = await bench.call("POST", f"/api/agents/op1002/{action}", as_="op1")
        assert (status, body) == (403, {"error": "forbidden: operators change only their own state"})
    status, body = await bench.call("POST", "/api/agents/op1001/force", as_="op1", body={"state": "ready"})
    assert status == 403 and "needs the role admin or supervisor" in body["error"]
    assert (await bench.call("GET", "/api/agents/op1002"))[1]["state"] == "logged_out"
    assert [a for a in await bench.audit() if a[0] != "test"] == []


async def test_given_supervisor_when_forcing_then_any_operator_changes_and_audit_names_them(bench: Bench) -> None:
    status, body = await bench.call("POST", "/api/agents/op1002/force", as_="sup", body={"state": "not_ready"})
    assert (status, body["state"], body["reason"]) == (200, "not_ready", "supervisor")
    status, body = await bench.call(
        "POST", "/api/agents/op1002/force", as_="sup", body={"state": "logged_out", "reason": "meeting"}
    )
    assert (status, body["state"]) == (200, "logged_out")
    assert (await bench.audit())[-1] == (
        "sup",
        "agent.force",
        "op1002",
        {"forced": "logged_out", "reason": "meeting", "state": "logged_out"},
    )


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("pause", {"reason": "nap"}, "reason must be one of: break, lunch, training, meeting, backoffice"),
        ("pause", {"reason": "unregistered"}, "reason must be one of"),
        ("pause", {"reason": "lunch", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ("force", {}, "state: Field required"),
        ("force", {"state": "on_call"}, "state must be one of: ready, not_ready, logged_out"),
        ("force", {"state": "ready", "reason": "nap"}, "reason must be one of: break"),
    ],
)
async def test_given_invalid_body_when_posted_then_400_naming_the_field(
    bench: Bench, action: str, body: dict[str, str], message: str
) -> None:
    status, answer = await bench.call("POST", f"/api/agents/op1001/{action}", body=body)
    assert status == 400 and message in answer["error"], answer


async def test_given_state_that_refuses_the_action_when_posted_then_409(bench: Bench) -> None:
    status, body = await bench.call("POST", "/api/agents/op1002/ready")
    assert status == 409 and "logged_out" in body["error"]
    status, body = await bench.call("POST", "/api/agents/nobody/login")
    assert (status, body) == (404, {"error": "no operator 'nobody'"})


async def test_given_no_acd_when_agents_asked_then_503(tmp_path: Path) -> None:
    async with open_bench(tmp_path, with_acd=False) as bench:
        status, body = await bench.call("GET", "/api/agents")
    assert (status, body) == (503, {"error": "the ACD is not running (no Redis configured)"})


# -- screen pop -----------------------------------------------------------------------------------


async def test_given_no_call_when_screenpop_asked_then_call_id_null(bench: Bench) -> None:
    assert await bench.call("GET", "/api/agents/op1001/screenpop", as_="op1") == (
        200,
        {"call_id": None, "state": "logged_out"},
    )


async def test_given_known_customer_on_the_line_when_screenpop_asked_then_profile_history_and_complaints(
    bench: Bench,
) -> None:
    customers = CustomerStore(bench.store.sessions)
    customer, _ = await customers.upsert(
        CustomerIn(phones=("3331234567",), name="Anna Verdi", segment="vip", products=("sim",), language="it")
    )
    for n in range(7):
        await bench.contact(f"old-{n}", operator="op1003", started_at=NOW.replace(day=1, hour=8 + n))
    await bench.contact("other", caller="+390612345678", operator="op1003")
    complaints = ComplaintStore(bench.store.sessions)
    open_one = await complaints.open(
        contact_id="old-1",
        customer_id=customer.id,
        caller=None,
        category="parcels",
        recording=None,
        channel="ivr",
        description=None,
    )
    done = await complaints.open(
        contact_id="old-2",
        customer_id=None,
        caller="+393331234567",
        category="mobile",
        recording=None,
        channel="ivr",
        description=None,
    )
    await complaints.assign(done.number, "op1003", by="sup")
    await complaints.move(done.number, "in_progress", by="op1003")
    await complaints.move(done.number, "resolved", by="op1003")
    await bench.contact("live-1", operator="op1001", ended=False, started_at=NOW)
    await bench.talking("op1001", "live-1")

    status, pop = await bench.call("GET", "/api/agents/op1001/screenpop", as_="op1")

    assert status == 200, pop
    assert (pop["call_id"], pop["state"], pop["queue"], pop["waited"]) == ("live-1", "on_call", "general", 12.0)
    assert pop["caller"] == "+39 333 ***4567"  # an operator never sees the raw number
    assert pop["customer"] == {
        "id": customer.id,
        "name": "Anna Verdi",
        "segment": "vip",
        "language": "it",
        "products": ["sim"],
    }
    assert [c["id"] for c in pop["last_contacts"]] == ["old-6", "old-5", "old-4", "old-3", "old-2"]
    assert set(pop["last_contacts"][0]) == {
        "id",
        "started_at",
        "queue",
        "operator",
        "outcome",
        "disposition",
        "wrapup_code",
    }
    assert pop["open_complaints"] == [
        {"number": open_one.number, "category": "parcels", "status": "received", "due_on": open_one.due_on.isoformat()}
    ]
    supervisor = (await bench.call("GET", "/api/agents/op1001/screenpop", as_="sup"))[1]
    assert supervisor["caller"] == "+393331234567"
    assert (await bench.call("GET", "/api/agents/op1001/screenpop", as_="op2"))[0] == 403


async def test_given_guest_ringing_when_screenpop_asked_then_their_number_history_and_no_profile(
    bench: Bench,
) -> None:
    await bench.contact("before", caller="+390612345678", operator="op1004")
    await bench.contact("ring-1", caller="+390612345678", ended=False)
    await bench.enqueue("ring-1", "general", waited=20.0)
    await bench.talking("op1002", "ring-1", state=AgentState.RINGING)

    status, pop = await bench.call("GET", "/api/agents/op1002/screenpop", as_="op2")

    assert status == 200
    assert (pop["state"], pop["queue"], pop["waited"], pop["customer"]) == ("ringing", "general", 20.0, None)
    assert [c["id"] for c in pop["last_contacts"]] == ["before"]
    assert pop["open_complaints"] == []


async def test_given_call_without_contact_row_when_screenpop_asked_then_call_only(bench: Bench) -> None:
    await bench.talking("op1002", "no-row")
    status, pop = await bench.call("GET", "/api/agents/op1002/screenpop", as_="op2")
    assert status == 200 and (pop["call_id"], pop["customer"], pop["last_contacts"]) == ("no-row", None, [])
    assert (await bench.call("GET", "/api/agents/nobody/screenpop"))[0] == 404
