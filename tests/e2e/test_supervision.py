"""Supervisors listen, whisper and barge on a live call: sipp caller, sipp softphones for the
operator and for supervisor sup3001, real Asterisk, real controller, triggered through
``POST /api/calls/{id}/monitor``.

The structure is read back from ARI (``GET /channels``, ``GET /bridges``)::

    listen, whisper  a Snoop/ channel on the operator's channel, and a bridge holding exactly
                     [snoop, supervisor's leg]; the conversation's bridge still holds two
    barge            the conversation's bridge holds three: caller, operator, supervisor

and each test ends with the rig's leak check (no channel, no bridge, nothing in Redis).
"""

from __future__ import annotations

import array
import asyncio
import io
import secrets
import wave
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import pytest

from tests.e2e.rig import Controller, Operators, Records, unique_caller, wait_for
from tests.sipp import Call, CallResult
from tests.softphone import Softphone
from unico import pbx
from unico.ari import AriRest, gone_ok
from unico.pbx import PbxError
from unico.pbx.operators import ensure_operator_passwords

SUPERVISOR = "sup3001"


def caller_id() -> str:
    return unique_caller("37")


@pytest.fixture
async def supervisor(rig: Controller) -> AsyncIterator[Softphone]:
    """sup3001's softphone, registered and answering at once (it hangs up only when told)."""
    password = ensure_operator_passwords(rig.settings.state_dir, [SUPERVISOR])[SUPERVISOR]
    phone = Softphone(SUPERVISOR, password, port=rig.settings.sip_port)
    try:
        await phone.register()
        await phone.start("answer")
        yield phone
    finally:
        await phone.close()


async def ari(rig: Controller, path: str) -> Any:
    return await asyncio.to_thread(pbx.ari_get, rig.settings, path)


class Layout:
    """Asterisk's channels and bridges around one call, read once."""

    def __init__(self, call_id: str, channels: list[dict[str, Any]], bridges: list[dict[str, Any]]) -> None:
        self.channels = {c["id"]: c for c in channels}
        self.bridges = {b["id"]: set(b["channels"]) for b in bridges}
        self.conversation = next((members for members in self.bridges.values() if call_id in members), set())
        self.snoops = [c for c in channels if c["name"].startswith("Snoop/")]
        self.supervisor_legs = [c["id"] for c in channels if c["name"].startswith(f"PJSIP/{SUPERVISOR}-")]

    def monitor_bridges(self) -> list[set[str]]:
        return [members for members in self.bridges.values() if members & set(self.supervisor_legs)]

    def __repr__(self) -> str:
        names = {i: c["name"] for i, c in self.channels.items()}
        return f"Layout(channels={names}, bridges={self.bridges})"


async def layout(rig: Controller, call_id: str) -> Layout:
    return Layout(call_id, await ari(rig, "/channels"), await ari(rig, "/bridges"))


async def snooping(rig: Controller, call_id: str, operator_leg: str) -> tuple[Layout, str] | None:
    """Listen/whisper in place: one snoop on the operator's leg, bridged with the supervisor only."""
    now = await layout(rig, call_id)
    if len(now.snoops) != 1 or len(now.supervisor_legs) != 1:
        return None
    (snoop,) = now.snoops
    expected = {snoop["id"], now.supervisor_legs[0]}
    if now.monitor_bridges() != [expected] or now.conversation != {call_id, operator_leg}:
        return None
    assert snoop["name"].startswith(f"Snoop/{operator_leg}-"), now
    return now, str(snoop["id"])


class Conversation(NamedTuple):
    operator: Softphone
    call_id: str
    operator_leg: str
    caller: asyncio.Future[CallResult]


async def talking(rig: Controller, operators: Operators, sipp: Call) -> Conversation:
    """The caller (``sipp``, started here) talks to op1002."""
    operator = await operators.online("op1002")
    running = asyncio.ensure_future(sipp.run())
    await operator.wait_count("ANSWERED", 1)
    agent = await rig.wait_agent("op1002", "on_call")
    call_id = str(agent["call_id"])
    conversation = await wait_for(
        lambda: _conversation(rig, call_id), timeout=10, what="caller and operator in one bridge"
    )
    (operator_leg,) = conversation - {call_id}
    return Conversation(operator, call_id, operator_leg, running)


async def _conversation(rig: Controller, call_id: str) -> set[str] | None:
    now = await layout(rig, call_id)
    return now.conversation if len(now.conversation) == 2 else None


async def monitor(rig: Controller, call_id: str, mode: str) -> None:
    status, body = await rig.api("POST", f"/api/calls/{call_id}/monitor", {"mode": mode, "supervisor": SUPERVISOR})
    assert status == 202, body
    assert body["mode"] == mode and body["supervisor"] == SUPERVISOR, body


async def mean_level(rig: Controller, bridge_id: str) -> float:
    """Record ``bridge_id`` for 2 s (what the supervisor hears) and return the mean |sample|."""
    name = f"sup-listen-{secrets.token_hex(6)}"
    settings = rig.settings
    async with AriRest(settings.ari_url, settings.ari_user, settings.ari_password.get_secret_value()) as rest:
        await rest.record_bridge(bridge_id, name, format="wav", max_duration=2, if_exists="overwrite")

        async def finished() -> bool:
            try:
                await ari(rig, f"/recordings/live/{name}")
            except PbxError:
                return True  # 404: the recording stopped at its maximum duration
            return False

        await wait_for(finished, timeout=10, what="the bridge recording to finish")
        data = await rest.get_stored_recording_file(name)
        with gone_ok():
            await rest.delete_stored_recording(name)
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getsampwidth() == 2, "Asterisk's wav is 16-bit signed linear"
        samples = array.array("h", wav.readframes(wav.getnframes()))
    assert len(samples) >= 8000, f"only {len(samples)} samples recorded"
    return float(sum(abs(s) for s in samples)) / len(samples)


async def test_given_conversation_when_supervisor_listens_then_hears_the_caller_and_leaving_keeps_the_call(
    rig: Controller, records: Records, operators: Operators, supervisor: Softphone
) -> None:
    number = caller_id()
    # 14 s of A-law speech from the caller, then wait for Asterisk to hang up
    sipp = Call("7101", caller=number, port=rig.settings.sip_port, answer_timeout_ms=15_000)
    sipp = sipp.play_audio().play_audio(wait=False).expect_bye(40_000)
    operator, call_id, operator_leg, running = await talking(rig, operators, sipp)

    missing = await rig.api("POST", "/api/calls/nope/monitor", {"mode": "listen", "supervisor": SUPERVISOR})
    assert missing[0] == 404, missing
    not_a_supervisor = await rig.api(
        "POST", f"/api/calls/{call_id}/monitor", {"mode": "listen", "supervisor": "op1003"}
    )
    assert not_a_supervisor[0] == 400, not_a_supervisor

    await monitor(rig, call_id, "listen")
    await supervisor.wait_count("ANSWERED", 1)
    now, snoop = await wait_for(lambda: snooping(rig, call_id, operator_leg), what="listen: snoop bridged")
    (bridge,) = [b for b, members in now.bridges.items() if snoop in members]
    # what the supervisor hears: the caller's speech through the snoop (silence would be ~0)
    level = await mean_level(rig, bridge)
    assert level > 100, f"mean level {level:.1f}: no audio from the caller reaches the supervisor"

    # the supervisor hangs up: snoop and monitor bridge go, the conversation carries on
    await supervisor.stop()

    async def left() -> Layout | None:
        after = await layout(rig, call_id)
        alone = not after.snoops and not after.supervisor_legs and len(after.bridges) == 1
        return after if alone and after.conversation == {call_id, operator_leg} else None

    await wait_for(left, timeout=10, what="snoop and monitor bridge gone, conversation intact")
    assert (await rig.agent("op1002"))["state"] == "on_call"

    await operator.stop()  # the operator ends the conversation; the caller is released
    result = await running
    assert result.answered and result.remote_bye, result.explain()
    record = await records.finished_for(number)
    monitoring = [s["note"] for s in record.ivr_path if s["kind"] == "monitor"]
    assert monitoring == [f"{SUPERVISOR} listen", f"{SUPERVISOR} ended: hung up"], record.ivr_path


async def test_given_supervisor_whispering_when_barging_then_three_in_the_conversation_and_caller_hangup_cleans_all(
    rig: Controller, records: Records, operators: Operators, supervisor: Softphone
) -> None:
    number = caller_id()
    sipp = Call("7101", caller=number, port=rig.settings.sip_port, answer_timeout_ms=15_000)
    operator, call_id, operator_leg, running = await talking(rig, operators, sipp.pause(12_000).hangup())

    await monitor(rig, call_id, "whisper")
    await supervisor.wait_count("ANSWERED", 1)
    now, _ = await wait_for(lambda: snooping(rig, call_id, operator_leg), what="whisper: snoop bridged")
    (leg,) = now.supervisor_legs

    await monitor(rig, call_id, "barge")  # the same leg moves into the conversation

    async def barged() -> Layout | None:
        after = await layout(rig, call_id)
        ok = not after.snoops and len(after.bridges) == 1 and after.conversation == {call_id, operator_leg, leg}
        return after if ok else None

    await wait_for(barged, timeout=10, what="barge: caller, operator and supervisor in one bridge")
    assert supervisor.answered == 1, "no second ring for a change of mode"

    # the caller hangs up: the operator's and the supervisor's legs are hung up, nothing is left
    result = await running
    assert result.answered and result.local_bye, result.explain()
    await supervisor.wait_count("REMOTE_BYE", 1)
    await operator.wait_count("REMOTE_BYE", 1)
    record = await records.finished_for(number)
    monitoring = [s["note"] for s in record.ivr_path if s["kind"] == "monitor"]
    assert monitoring == [
        f"{SUPERVISOR} whisper",
        f"{SUPERVISOR} barge",
        f"{SUPERVISOR} ended: conversation over",
    ], record.ivr_path
