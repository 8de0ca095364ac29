"""``unico.recovery``: snapshots survive a JSON round trip, and ``plan`` decides what becomes of
every snapshot, channel and bridge a dead controller left, from hand-built Asterisk listings."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from unico.ari import Bridge, Channel
from unico.recovery import (
    Adopt,
    CallSnapshot,
    CustomerSnapshot,
    DestroyBridge,
    Gone,
    HangupChannel,
    QueueSnapshot,
    Resume,
    plan,
)

APP = "unico"


def snap(call_id: str, state: str = "waiting", *, leg: int | None = None, app: str = APP) -> CallSnapshot:
    agent_channel = f"{call_id}-op{leg}" if leg is not None else None
    return CallSnapshot(
        call_id=call_id,
        app=app,
        owner="rome-1",
        saved_at=1000.0,
        session={"phase": "queued", "node": "q", "request": f"{call_id}-q3"},
        started_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC).isoformat(),
        queue=QueueSnapshot(
            queue="general",
            request_id=f"{call_id}-q3",
            priority=0,
            enqueued_at=990.0,
            state=state,
            agent_id="op1001" if leg is not None else None,
            agent_channel=agent_channel,
            hold_bridge=f"{call_id}-hold1",
            conv_bridge=f"{call_id}-conv2" if state == "talking" else "",
            bridges=2 if state == "talking" else 1,
            legs=leg or 0,
        ),
    )


def caller(call_id: str, app: str = APP, kind: str = "inbound") -> Channel:
    return Channel(id=call_id, state="Up", dialplan_app_name="Stasis", dialplan_app_data=f"{app},{kind},803160")


def leg(channel_id: str, *, answered: bool, kind: str = "agent") -> Channel:
    if answered:
        return Channel(id=channel_id, state="Up", dialplan_app_name="Stasis", dialplan_app_data=f"{APP},{kind},x,op1")
    return Channel(id=channel_id, state="Ringing")


def test_given_a_snapshot_when_written_and_read_back_then_identical() -> None:
    original = snap("c1", "talking", leg=1)
    original = CallSnapshot(
        **{**{f: getattr(original, f) for f in original.__dataclass_fields__}, "customer": CustomerSnapshot(id="k1")}
    )
    assert CallSnapshot.from_json(original.to_json()) == original
    assert CallSnapshot.from_json(original.to_json()).moved_to("rome-2").owner == "rome-2"


def test_given_a_snapshot_with_an_ivr_path_then_its_json_is_what_asdict_gave_without_the_deep_copy() -> None:
    """The stored form stays the one earlier versions wrote and read (``asdict``), while a snapshot
    at every step of a queued call no longer copies the whole IVR session first."""
    path = [
        {"node": f"n{i}", "kind": "play", "digits": None, "note": "é" * 3, "at": "2026-12-08T02:00:00+00:00"}
        for i in range(5)
    ]
    base = snap("c1", "talking", leg=1)
    original = dataclasses.replace(
        base,
        session={**base.session, "path": path, "vars": {"parcel": "RR123", "tries": [1, 2]}},
        customer=CustomerSnapshot(id="k1"),
        extra={"transfers": ["op1"]},
    )
    assert original.to_json() == json.dumps(dataclasses.asdict(original), separators=(",", ":"), sort_keys=True)
    assert CallSnapshot.from_json(original.to_json()) == original
    with pytest.raises(TypeError, match="JSON cannot carry"):
        dataclasses.replace(original, extra={"when": datetime(2026, 12, 8, tzinfo=UTC)}).to_json()


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{}", '{"version": 99}', '{"version": 1}', '{"version": 1, "queue": {"nope": 1}}', "not json"],
)
def test_given_a_malformed_or_foreign_snapshot_then_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        CallSnapshot.from_json(text)


def test_given_waiting_caller_still_in_its_holding_bridge_then_resumed_there() -> None:
    bridges = [Bridge(id="c1-hold1", channels=("c1",))]
    (action,) = plan(app=APP, channels=[caller("c1")], bridges=bridges, snapshots={"c1": snap("c1")}, known=[])
    assert action == Resume(snap("c1"), caller("c1"), leg_alive=False, bridge_alive=True)


def test_given_ringing_leg_still_ringing_then_resumed_with_the_leg_kept() -> None:
    channels = [caller("c1"), leg("c1-op1", answered=False)]
    bridges = [Bridge(id="c1-hold1", channels=("c1",))]
    saved = {"c1": snap("c1", "ringing", leg=1)}
    actions = plan(app=APP, channels=channels, bridges=bridges, snapshots=saved, known=[])
    assert [type(a) for a in actions] == [Resume]
    assert isinstance(actions[0], Resume) and actions[0].leg_alive and actions[0].bridge_alive


def test_given_talking_pair_in_their_bridge_then_resumed_and_nothing_hung_up() -> None:
    channels = [caller("c1"), leg("c1-op1", answered=True)]
    bridges = [Bridge(id="c1-conv2", channels=("c1", "c1-op1"))]
    saved = {"c1": snap("c1", "talking", leg=1)}
    actions = plan(app=APP, channels=channels, bridges=bridges, snapshots=saved, known=[])
    assert actions == [Resume(snap("c1", "talking", leg=1), caller("c1"), leg_alive=True, bridge_alive=True)]


def test_given_operator_hung_up_while_away_then_resumed_without_leg_and_bridge_left_destroyed_later() -> None:
    channels = [caller("c1")]
    bridges = [Bridge(id="c1-conv2", channels=("c1",))]
    saved = {"c1": snap("c1", "talking", leg=1)}
    actions = plan(app=APP, channels=channels, bridges=bridges, snapshots=saved, known=[])
    assert actions == [Resume(snap("c1", "talking", leg=1), caller("c1"), leg_alive=False, bridge_alive=True)]


def test_given_caller_gone_while_away_then_gone_and_their_leftovers_cleared() -> None:
    channels = [leg("c1-op1", answered=True), leg("c1-mon1-snoop1", answered=True, kind="snoop")]
    bridges = [Bridge(id="c1-conv2", channels=("c1-op1",)), Bridge(id="c1-mon1-bridge1")]
    saved = {"c1": snap("c1", "talking", leg=1)}
    actions = plan(app=APP, channels=channels, bridges=bridges, snapshots=saved, known=[])
    assert actions[0] == Gone(snap("c1", "talking", leg=1), leg_alive=True)
    assert set(actions[1:]) == {
        HangupChannel("c1-op1", "leg of call c1, which is over"),
        HangupChannel("c1-mon1-snoop1", "leg of call c1, which is over"),
        DestroyBridge("c1-conv2", "left by call c1"),
        DestroyBridge("c1-mon1-bridge1", "left by call c1"),
    }


def test_given_caller_without_snapshot_then_adopted_and_stray_legs_hung_up() -> None:
    channels = [caller("ivr1"), caller("x9", kind="agent"), caller("other", app="unico-b")]
    actions = plan(app=APP, channels=channels, bridges=[], snapshots={}, known=[])
    assert actions == [Adopt(caller("ivr1")), HangupChannel("x9", "agent leg of a call that is over")]


def test_given_calls_this_process_still_knows_then_left_alone() -> None:
    channels = [caller("c1"), leg("c1-op1", answered=True)]
    bridges = [Bridge(id="c1-conv2", channels=("c1", "c1-op1")), Bridge(id="c1-hold1")]
    assert plan(app=APP, channels=channels, bridges=bridges, snapshots={"c1": snap("c1")}, known=["c1"]) == []


def test_given_an_old_holding_bridge_of_a_resumed_talking_call_then_destroyed_but_not_its_conversation() -> None:
    channels = [caller("c1"), leg("c1-op1", answered=True)]
    bridges = [Bridge(id="c1-conv2", channels=("c1", "c1-op1")), Bridge(id="c1-hold1")]
    saved = {"c1": snap("c1", "talking", leg=1)}
    actions = plan(app=APP, channels=channels, bridges=bridges, snapshots=saved, known=[])
    assert [type(a) for a in actions] == [Resume, DestroyBridge]
    assert actions[1] == DestroyBridge("c1-hold1", "left by call c1")


def test_given_bridges_of_others_then_untouched() -> None:
    bridges = [Bridge(id="conference-7"), Bridge(id="a-b-c")]
    assert plan(app=APP, channels=[], bridges=bridges, snapshots={}, known=[]) == []
