"""Calls through the API: queues, live calls, transfer, move, wrap-up, monitor; roles and audit
(a real ACD on the test Redis; messages to calls land in ``bench.inbox``, see ``test_api_support``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from acd.agents import AgentState
from contacts.models import AgentStateSpan
from tests.unit.test_api_support import NOW, Bench, FakeSupervision, open_bench
from unico.acd_service import TransferRequest


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with open_bench(tmp_path) as opened:
        yield opened


async def _live(bench: Bench) -> None:
    """c-wait waits in general (20 s); op1001 rings for c-ring; op1002 talks on c-talk."""
    await bench.enqueue("c-wait", "general", waited=20.0)
    await bench.talking("op1001", "c-ring", AgentState.RINGING)
    await bench.talking("op1002", "c-talk")


# -- queues and live calls ------------------------------------------------------------------------


async def test_given_waiting_call_when_queues_listed_then_it_shows_with_its_wait(bench: Bench) -> None:
    await bench.enqueue("c-wait", "general", waited=20.0)
    status, queues = await bench.call("GET", "/api/queues", as_="op1")
    assert status == 200
    general = next(q for q in queues if q["name"] == "general")
    assert (general["tier"], general["waiting"]) == ("general", [{"call_id": "c-wait", "priority": 0, "waited": 20.0}])


async def test_given_live_calls_when_listed_then_supervisor_sees_all_and_operator_only_their_own(bench: Bench) -> None:
    await _live(bench)

    status, everything = await bench.call("GET", "/api/calls", as_="sup")
    assert status == 200
    assert everything["waiting"] == [{"call_id": "c-wait", "queue": "general", "priority": 0, "waited": 20.0}]
    assert [(c["agent"], c["call_id"]) for c in everything["ringing"]] == [("op1001", "c-ring")]
    assert [(c["agent"], c["call_id"]) for c in everything["talking"]] == [("op1002", "c-talk")]

    status, mine = await bench.call("GET", "/api/calls", as_="op2")
    assert status == 200
    assert (mine["waiting"], mine["ringing"], [c["call_id"] for c in mine["talking"]]) == ([], [], ["c-talk"])


async def test_given_one_call_when_read_then_its_state_and_403_404(bench: Bench) -> None:
    await _live(bench)

    assert (await bench.call("GET", "/api/calls/c-wait"))[1] == {
        "call_id": "c-wait",
        "state": "waiting",
        "queue": "general",
        "agent": None,
        "priority": 0,
        "waited": 20.0,
    }
    ringing = (await bench.call("GET", "/api/calls/c-ring", as_="op1"))[1]
    assert (ringing["state"], ringing["agent"]) == ("ringing", "op1001")
    talking = (await bench.call("GET", "/api/calls/c-talk", as_="op2"))[1]
    assert (talking["state"], talking["agent"]) == ("talking", "op1002")
    status, body = await bench.call("GET", "/api/calls/c-talk", as_="op1")
    assert (status, body) == (403, {"error": "forbidden: operators see only the calls they are on"})
    assert (await bench.call("GET", "/api/calls/c-wait", as_="op1"))[0] == 403
    assert await bench.call("GET", "/api/calls/nope") == (404, {"error": "no call 'nope' in progress"})


# -- transfer -------------------------------------------------------------------------------------


async def test_given_operator_on_a_call_when_transferring_it_then_202_message_sent_and_audited(bench: Bench) -> None:
    await _live(bench)

    status, body = await bench.call("POST", "/api/calls/c-talk/transfer", as_="op2", body={"queue": "spedizioni"})

    assert (status, body) == (202, {"ok": True, "call_id": "c-talk", "queue": "spedizioni", "operator": None})
    assert bench.inbox == [TransferRequest("c-talk", "spedizioni", None, by="op2")]
    assert (await bench.audit())[-1] == ("op2", "call.transfer", "c-talk", {"queue": "spedizioni", "operator": None})


async def test_given_operator_not_on_the_call_when_transferring_then_403_and_nothing_sent(bench: Bench) -> None:
    await _live(bench)
    status, body = await bench.call("POST", "/api/calls/c-talk/transfer", as_="op1", body={"operator": "op1003"})
    assert (status, body) == (403, {"error": "forbidden: operators transfer only a call they are on"})
    assert bench.inbox == []


async def test_given_supervisor_when_transferring_any_call_to_an_operator_then_202(bench: Bench) -> None:
    await _live(bench)
    status, _ = await bench.call("POST", "/api/calls/c-talk/transfer", as_="sup", body={"operator": "op1003"})
    assert status == 202
    assert bench.inbox == [TransferRequest("c-talk", None, "op1003", by="sup")]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"queue": "general", "operator": "op1001"}, 400, 'give exactly one of {"queue": "<name>"}'),
        ({}, 400, "give exactly one of"),
        ({"queue": 5}, 400, "queue: Input should be a valid string"),
        ({"queue": "nowhere"}, 400, "no queue 'nowhere'"),
        ({"operator": "nobody"}, 400, "no operator 'nobody'"),
        ({"queue": "general"}, 404, "no call 'nope' in progress"),
    ],
)
async def test_given_bad_transfer_when_posted_then_clear_error(
    bench: Bench, body: dict[str, Any], status: int, message: str
) -> None:
    answer = await bench.call("POST", "/api/calls/nope/transfer", body=body)
    assert answer[0] == status and message in answer[1]["error"], answer


# -- move -----------------------------------------------------------------------------------------


async def test_given_waiting_call_when_supervisor_moves_it_then_202_transfer_request_and_audit(bench: Bench) -> None:
    await _live(bench)

    status, body = await bench.call("POST", "/api/calls/c-wait/move", as_="sup", body={"queue": "bancoposta"})

    assert (status, body) == (202, {"ok": True, "call_id": "c-wait", "queue": "bancoposta"})
    assert bench.inbox == [TransferRequest("c-wait", queue="bancoposta", by="sup")]
    assert (await bench.audit())[-1] == ("sup", "call.move", "c-wait", {"from": "general", "queue": "bancoposta"})


async def test_given_call_not_waiting_or_unknown_when_moved_then_409_or_404(bench: Bench) -> None:
    await _live(bench)
    for call_id in ("c-ring", "c-talk"):
        status, body = await bench.call("POST", f"/api/calls/{call_id}/move", as_="sup", body={"queue": "bancoposta"})
        assert status == 409 and "no longer waiting" in body["error"]
    status, body = await bench.call("POST", "/api/calls/c-wait/move", as_="sup", body={"queue": "general"})
    assert status == 409 and "already waiting in 'general'" in body["error"]
    assert await bench.call("POST", "/api/calls/nope/move", body={"queue": "general"}) == (
        404,
        {"error": "no waiting call 'nope'"},
    )
    status, body = await bench.call("POST", "/api/calls/c-wait/move", body={"queue": "nowhere"})
    assert (status, body) == (400, {"error": "no queue 'nowhere'"})
    assert (await bench.call("POST", "/api/calls/c-wait/move", body={}))[1]["error"] == "queue: Field required"
    assert (await bench.call("POST", "/api/calls/c-wait/move", as_="op1", body={"queue": "bancoposta"}))[0] == 403
    assert bench.inbox == []


# -- wrap-up --------------------------------------------------------------------------------------


async def test_given_closed_contact_when_its_operator_wraps_up_then_stored_and_audited(bench: Bench) -> None:
    await bench.contact("c-1", operator="op1001")

    status, body = await bench.call(
        "POST",
        "/api/calls/c-1/wrapup",
        as_="op1",
        body={"code": "info-given", "disposition": "solved", "resolved": True},
    )

    assert status == 200, body
    record = await bench.store.get("c-1")
    assert record is not None and (record.wrapup_code, record.disposition) == ("info-given", "solved")
    assert (await bench.audit())[-1] == (
        "op1",
        "call.wrapup",
        "c-1",
        {"code": "info-given", "disposition": "solved", "resolved": True},
    )
    status, _ = await bench.call("POST", "/api/calls/c-1/wrapup", as_="sup", body={"code": "callback"})
    record = await bench.store.get("c-1")
    assert status == 200 and record is not None and (record.wrapup_code, record.disposition) == ("callback", "solved")


async def test_given_someone_elses_contact_when_wrapping_up_then_403_and_unknown_404(bench: Bench) -> None:
    await bench.contact("c-1", operator="op1002")
    status, body = await bench.call("POST", "/api/calls/c-1/wrapup", as_="op1", body={"code": "x"})
    assert (status, body) == (403, {"error": "forbidden: operators wrap up only the contacts they answered"})
    assert await bench.call("POST", "/api/calls/c-9/wrapup", body={"code": "x"}) == (404, {"error": "no contact 'c-9'"})


async def test_given_transferred_call_when_first_operator_wraps_up_then_allowed_from_their_history(
    bench: Bench,
) -> None:
    await bench.contact("c-1", operator="op1003")  # op1001 transferred it to op1003
    assert (await bench.call("POST", "/api/calls/c-1/wrapup", as_="op1", body={"code": "x"}))[0] == 403
    async with bench.store.sessions.begin() as session:
        session.add(AgentStateSpan(agent="op1001", state="on_call", call_id="c-1", started_at=NOW, ended_at=NOW))

    status, _ = await bench.call("POST", "/api/calls/c-1/wrapup", as_="op1", body={"code": "transferred"})

    assert status == 200
    assert (await bench.call("POST", "/api/calls/c-1/wrapup", as_="op2", body={"code": "x"}))[0] == 403


async def test_given_operator_still_holding_the_call_when_wrapping_up_then_allowed(bench: Bench) -> None:
    await bench.contact("c-1", operator=None, ended=False)
    await bench.talking("op1002", "c-1")
    assert (await bench.call("POST", "/api/calls/c-1/wrapup", as_="op2", body={"code": "early"}))[0] == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "code: Field required"),
        ({"code": ""}, "code: String should have at least 1 character"),
        ({"code": "x" * 65}, "code: String should have at most 64 characters"),
        ({"code": "x", "resolved": "maybe"}, "resolved: Input should be a valid boolean"),
        ({"code": "x", "disposition": ""}, "disposition: String should have at least 1 character"),
    ],
)
async def test_given_bad_wrapup_when_posted_then_400(bench: Bench, body: dict[str, Any], message: str) -> None:
    await bench.contact("c-1", operator="op1001")
    status, answer = await bench.call("POST", "/api/calls/c-1/wrapup", body=body)
    assert status == 400 and message in answer["error"], answer


# -- monitor --------------------------------------------------------------------------------------


async def test_given_conversation_when_supervisor_monitors_then_202_and_audited(bench: Bench) -> None:
    supervision: FakeSupervision = bench.controller.supervision
    supervision.calls.add("c-talk")

    status, body = await bench.call(
        "POST", "/api/calls/c-talk/monitor", as_="sup", body={"mode": "whisper", "supervisor": "sup3001"}
    )

    assert (status, body) == (
        202,
        {"ok": True, "call_id": "c-talk", "mode": "whisper", "supervisor": "sup3001", "leg": "c-talk-mon1"},
    )
    assert supervision.requests == [("c-talk", "sup3001", "whisper")]
    assert (await bench.audit())[-1] == ("sup", "call.monitor", "c-talk", {"mode": "whisper", "supervisor": "sup3001"})


async def test_given_bad_monitor_requests_then_400_404_403(bench: Bench) -> None:
    bench.controller.supervision.calls.add("c-talk")
    listen = {"mode": "listen", "supervisor": "sup3001"}
    status, body = await bench.call("POST", "/api/calls/c-talk/monitor", body={"mode": "shout", "supervisor": "s"})
    assert status == 400 and "mode: Input should be 'listen', 'whisper' or 'barge'" in body["error"]
    status, body = await bench.call("POST", "/api/calls/c-talk/monitor", body={"mode": "listen", "supervisor": "op1"})
    assert (status, body) == (400, {"error": "'op1' is not a supervisor"})
    status, body = await bench.call("POST", "/api/calls/nope/monitor", body=listen)
    assert (status, body) == (404, {"error": "no conversation 'nope' to monitor"})
    assert (await bench.call("POST", "/api/calls/c-talk/monitor", as_="op1", body=listen))[0] == 403


async def test_given_no_supervision_when_monitor_asked_then_503(tmp_path: Path) -> None:
    async with open_bench(tmp_path, supervision=False) as bench:
        status, body = await bench.call(
            "POST", "/api/calls/c-1/monitor", body={"mode": "listen", "supervisor": "sup3001"}
        )
    assert (status, body) == (503, {"error": "supervision not available"})
