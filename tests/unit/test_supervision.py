"""Supervisors listen, whisper and barge without Asterisk: the recording fake REST of
test_queued_call, the real ACD service on the real Redis, the real IVR engine and contact store.

Checks the ARI requests per mode (ring the supervisor, snoop the operator's channel with the right
directions, bridge), the clean-up in both directions (the supervisor hangs up; the conversation
ends), late channels hung up, and the errors of ``Supervision.monitor``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from acd.agents import Login
from contacts import ContactStore
from contacts.db import upgrade
from ivr.actions import registry
from ivr.config import IvrConfig, load_config
from unico.acd_service import AcdService, CallMessage, MonitorRequest, TransferRequest
from unico.acd_service import _decode as decode
from unico.acd_service import _encode as encode
from unico.ari import AriUnprocessable
from unico.calls import CallDeps
from unico.pbx.operators import ensure_operator_passwords, operator_pjsip, supervisor_pjsip, write_operators
from unico.queued_call import QState, QueuedCall
from unico.settings import Settings
from unico.supervision import RING_TIMEOUT, Supervision

from .config_copy import copy_shipped_config, errors_of
from .test_queued_call import Clocks, FakeRest, Rig, ready

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> IvrConfig:
    folder = tmp_path_factory.mktemp("cfg")
    shutil.copytree(ROOT / "dialplan", folder / "dialplan")
    shutil.copytree(ROOT / "skills", folder / "skills")
    shutil.copy(E2E / "flows.yaml", folder / "dialplan")
    shutil.copy(E2E / "acd_test.yaml", folder / "skills")
    return load_config(folder / "dialplan", folder / "skills")


class Links:
    """The dispatcher's aliases: which channel's events reach which call's actor."""

    def __init__(self) -> None:
        self.routes: dict[str, str] = {}

    def __call__(self, alias: str, key: str) -> None:
        self.routes[alias] = key


@pytest.fixture
async def rig(config: IvrConfig, tmp_path: Path) -> AsyncIterator[Rig]:
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    url = f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"
    await upgrade(url)
    store = ContactStore(url)
    await store.open()
    clocks = Clocks()
    holder: list[Rig] = []

    def deliver(call_id: str, message: CallMessage) -> bool:
        if call_id not in holder[0].calls:
            return False
        holder[0].inbox.append((call_id, message))
        return True

    acd = AcdService(
        redis=client,
        prefix=f"test:sup:{uuid.uuid4().hex}:",
        controller_id="ctl",
        config=lambda: config,
        deliver=deliver,
        clock=clocks.seconds,
        sweep_interval=3600,
    )
    await acd.sync_roster()
    await acd.agent_event("op2001", Login())
    deps = CallDeps(
        rest=FakeRest(),  # type: ignore[arg-type]
        store=store,
        handlers=registry,
        clock=clocks.wall,
        prompt_base="/unico/test/sounds",
        inject=lambda item: None,
        acd=acd,
        app="unico-test",
        link=Links(),
    )
    rig = Rig(acd, deps, config, deps.rest, clocks)  # type: ignore[arg-type]
    holder.append(rig)
    try:
        yield rig
    finally:
        for call in rig.calls.values():
            if call.queued is not None:
                call.queued.close()
        await acd.close()
        await acd.live.wipe()
        await client.aclose()
        await deps.records.queue.close()
        await store.close()


async def talking(rig: Rig, call_id: str = "c1") -> QueuedCall:
    """A caller in conversation with op1002."""
    queued = await rig.queued(call_id)
    await ready(rig, "op1002")
    await rig.deliver_offers()
    assert queued.agent_channel is not None
    await queued.agent_answered(queued.agent_channel)
    assert queued.state is QState.TALKING
    rig.rest.calls.clear()
    return queued


def supervision(rig: Rig) -> Supervision:
    return Supervision(rig.acd, lambda: rig.config)


def requests(rig: Rig) -> list[tuple[str, tuple[Any, ...]]]:
    return list(rig.rest.calls)


def monitor_steps(queued: QueuedCall) -> list[str]:
    return [str(s.note) for s in queued.call.session.path if s.kind == "monitor"]


async def answered(rig: Rig, queued: QueuedCall, mode: str) -> str:
    """Ask sup3001 to ``mode`` through ``Supervision``; they answer; return their leg's id."""
    answer = await supervision(rig).monitor(queued.call_id, "sup3001", mode)
    assert answer["mode"] == mode and answer["owner"] == "ctl" and answer["endpoint"] == "PJSIP/sup3001"
    await rig.deliver_offers()
    ((leg, endpoint, *options),) = rig.rest.args_of("originate")
    assert endpoint == "PJSIP/sup3001" and leg == f"{queued.call_id}-mon1"
    assert ("app_args", ["monitor", queued.call_id, mode, "sup3001"]) in options
    assert ("ring_timeout", RING_TIMEOUT) in options and ("originator", queued.call_id) in options
    assert rig.deps.link.routes[leg] == queued.call_id, "linked before the originate"  # type: ignore[attr-defined]
    rig.rest.calls.clear()
    await queued.agent_answered(leg)  # the supervisor's StasisStart reaches the call's actor
    return str(leg)


@pytest.mark.parametrize(("mode", "whisper"), [("listen", "none"), ("whisper", "out")])
async def test_given_conversation_when_supervisor_listens_or_whispers_then_snoop_on_operator_and_own_bridge(
    rig: Rig, mode: str, whisper: str
) -> None:
    queued = await talking(rig)
    operator = queued.agent_channel
    leg = await answered(rig, queued, mode)
    snoop, bridge = f"{leg}-snoop1", f"{leg}-bridge1"
    assert requests(rig) == [
        ("create_bridge", (bridge, ("name", "monitor sup3001"), ("type", "mixing"))),
        ("add_channel", (bridge, leg)),
        (
            "snoop",
            (
                operator,
                snoop,
                ("app", "unico-test"),
                ("app_args", ["snoop", "c1", "sup3001"]),
                ("spy", "both"),
                ("whisper", whisper),
            ),
        ),
    ]
    assert rig.deps.link.routes[snoop] == "c1"  # type: ignore[attr-defined]
    # the snoop's own StasisStart: into the monitor bridge, not a new call nor a stray leg
    rig.rest.calls.clear()
    await queued.agent_answered(snoop)
    assert requests(rig) == [("add_channel", (bridge, snoop))]
    await queued.agent_answered(snoop)  # repeated: nothing more
    assert len(requests(rig)) == 1
    assert queued.monitors.active == {"sup3001": mode}
    assert monitor_steps(queued) == [f"sup3001 {mode}"]

    # the supervisor hangs up: snoop and bridge go, the conversation stays as it was
    rig.rest.calls.clear()
    await queued.agent_leg_gone(leg, 16)
    assert requests(rig) == [
        ("hangup", (snoop,)),
        ("remove_channel", (bridge, leg)),
        ("destroy_bridge", (bridge,)),
    ]
    await queued.agent_leg_gone(leg, None)  # StasisEnd, ChannelDestroyed: nothing more
    await queued.agent_leg_gone(snoop, 16)
    assert len(requests(rig)) == 3
    assert queued.state is QState.TALKING and queued.agent_channel == operator
    assert queued.monitors.active == {}
    assert monitor_steps(queued) == [f"sup3001 {mode}", "sup3001 ended: hung up"]


async def test_given_conversation_when_supervisor_barges_then_joins_the_conversation_bridge(rig: Rig) -> None:
    queued = await talking(rig)
    leg = await answered(rig, queued, "barge")
    assert requests(rig) == [("add_channel", (queued.conv_bridge, leg))]
    assert rig.rest.args_of("snoop") == []
    rig.rest.calls.clear()
    await queued.agent_leg_gone(leg, 16)
    assert requests(rig) == [("remove_channel", (queued.conv_bridge, leg))]
    assert queued.state is QState.TALKING


async def test_given_supervisor_listening_when_caller_hangs_up_then_leg_snoop_and_bridge_go(rig: Rig) -> None:
    queued = await talking(rig)
    leg = await answered(rig, queued, "listen")
    snoop, bridge = f"{leg}-snoop1", f"{leg}-bridge1"
    await queued.agent_answered(snoop)
    rig.rest.calls.clear()
    await queued.caller_gone()
    names = rig.rest.names()
    assert requests(rig)[:4] == [
        ("hangup", (snoop,)),
        ("remove_channel", (bridge, leg)),
        ("destroy_bridge", (bridge,)),
        ("hangup", (leg,)),
    ], "the supervisor leaves before the conversation is taken down"
    assert "destroy_bridge" in names[4:]
    assert monitor_steps(queued)[-1] == "sup3001 ended: conversation over"
    # the snoop and the leg then report their end: nothing more to do
    before = len(requests(rig))
    await queued.agent_leg_gone(snoop, 16)
    await queued.agent_leg_gone(leg, 16)
    assert len(requests(rig)) == before


async def test_given_supervisor_barging_when_operator_hangs_up_then_supervisor_hung_up(rig: Rig) -> None:
    queued = await talking(rig)
    operator = queued.agent_channel
    assert operator is not None
    leg = await answered(rig, queued, "barge")
    rig.rest.calls.clear()
    await queued.agent_leg_gone(operator, 16)
    assert requests(rig)[:2] == [("remove_channel", (queued.conv_bridge, leg)), ("hangup", (leg,))]
    assert queued.state is QState.DONE and queued.monitors.active == {}


async def test_given_supervisor_ringing_when_conversation_ends_then_ringing_stops_and_late_answer_hung_up(
    rig: Rig,
) -> None:
    queued = await talking(rig)
    await supervision(rig).monitor("c1", "sup3001", "listen")
    await rig.deliver_offers()
    (originate,) = rig.rest.args_of("originate")
    leg = originate[0]
    rig.rest.calls.clear()
    await queued.caller_gone()
    assert requests(rig)[0] == ("hangup", (leg,))
    rig.rest.calls.clear()
    await queued.agent_answered(leg)  # answered anyway, a moment too late
    assert requests(rig) == [("hangup", (leg,))]
    assert rig.rest.args_of("snoop") == []


async def test_given_supervisor_not_answering_then_session_over_and_record_says_why(rig: Rig) -> None:
    queued = await talking(rig)
    await supervision(rig).monitor("c1", "sup3001", "whisper")
    await rig.deliver_offers()
    (originate,) = rig.rest.args_of("originate")
    rig.rest.calls.clear()
    await queued.agent_leg_gone(originate[0], 19)  # the originate timed out
    assert requests(rig) == [] and queued.monitors.active == {}
    assert monitor_steps(queued) == ["sup3001 ended: did not answer (no answer)"]
    # asked again: a new leg with a new id
    await supervision(rig).monitor("c1", "sup3001", "whisper")
    await rig.deliver_offers()
    assert rig.rest.args_of("originate")[-1][0] == "c1-mon2"


async def test_given_supervisor_listening_when_mode_changes_then_rewired_on_the_same_leg(rig: Rig) -> None:
    queued = await talking(rig)
    leg = await answered(rig, queued, "listen")
    await queued.agent_answered(f"{leg}-snoop1")
    rig.rest.calls.clear()
    await supervision(rig).monitor("c1", "sup3001", "whisper")
    await rig.deliver_offers()
    assert rig.rest.args_of("originate") == [], "no second ring"
    names = rig.rest.names()
    assert names == ["hangup", "remove_channel", "destroy_bridge", "create_bridge", "add_channel", "snoop"], names
    (snoop,) = rig.rest.args_of("snoop")
    assert snoop[1] == f"{leg}-snoop2" and ("whisper", "out") in snoop
    # a late hang-up of the first snoop does not end the session
    await queued.agent_leg_gone(f"{leg}-snoop1", 16)
    assert queued.monitors.active == {"sup3001": "whisper"}
    rig.rest.calls.clear()
    await supervision(rig).monitor("c1", "sup3001", "barge")
    await rig.deliver_offers()
    assert requests(rig) == [
        ("hangup", (f"{leg}-snoop2",)),
        ("remove_channel", (f"{leg}-bridge2", leg)),
        ("destroy_bridge", (f"{leg}-bridge2",)),
        ("add_channel", (queued.conv_bridge, leg)),
    ]
    assert monitor_steps(queued) == ["sup3001 listen", "sup3001 whisper", "sup3001 barge"]
    rig.rest.calls.clear()
    await supervision(rig).stop("c1", "sup3001")
    await rig.deliver_offers()
    assert requests(rig) == [("remove_channel", (queued.conv_bridge, leg)), ("hangup", (leg,))]
    assert monitor_steps(queued)[-1] == "sup3001 ended: stopped"


async def test_given_snoop_refused_then_supervisor_hung_up_and_conversation_untouched(rig: Rig) -> None:
    queued = await talking(rig)
    await supervision(rig).monitor("c1", "sup3001", "listen")
    await rig.deliver_offers()
    (originate,) = rig.rest.args_of("originate")
    rig.rest.fail["snoop"] = AriUnprocessable(422, "POST", "/channels/x/snoop", "channel not found")
    rig.rest.calls.clear()
    await queued.agent_answered(originate[0])
    assert rig.rest.names()[-3:] == ["remove_channel", "destroy_bridge", "hangup"]
    assert queued.state is QState.TALKING and queued.monitors.active == {}


async def test_given_supervisor_listening_when_operator_transfers_then_supervisor_leaves(rig: Rig) -> None:
    queued = await talking(rig)
    leg = await answered(rig, queued, "listen")
    rig.rest.calls.clear()
    await queued.on_message(TransferRequest("c1", queue="tq_enterprise"))
    assert ("hangup", (leg,)) in requests(rig)
    assert monitor_steps(queued)[-1] == "sup3001 ended: transferred to queue tq_enterprise"


async def test_given_bad_requests_when_monitoring_then_value_and_lookup_errors(rig: Rig) -> None:
    sup = supervision(rig)
    with pytest.raises(LookupError):
        await sup.monitor("nope", "sup3001", "listen")
    await talking(rig, "c1")
    await rig.queued("waiting1")  # waiting, no conversation yet
    with pytest.raises(LookupError, match="waiting"):
        await sup.monitor("waiting1", "sup3001", "listen")
    with pytest.raises(ValueError, match="mode"):
        await sup.monitor("c1", "sup3001", "spy")
    with pytest.raises(ValueError, match="supervisor"):
        await sup.monitor("c1", "op1002", "listen")  # operators are not supervisors
    with pytest.raises(ValueError, match="supervisor"):
        await sup.stop("c1", "nobody")
    with pytest.raises(LookupError):
        await Supervision(None, lambda: rig.config).monitor("c1", "sup3001", "listen")
    assert rig.inbox == []


async def test_given_request_arriving_after_the_conversation_then_nothing_rung(rig: Rig) -> None:
    queued = await talking(rig)
    await queued.caller_gone()
    rig.rest.calls.clear()
    await queued.on_message(MonitorRequest("c1", "sup3001", "listen"))
    assert requests(rig) == []


@pytest.mark.parametrize(
    "message", [MonitorRequest("c9", "sup3001", "whisper"), MonitorRequest("c9", "sup3001", "stop")]
)
def test_given_monitor_request_when_sent_between_controllers_then_decoded_unchanged(message: MonitorRequest) -> None:
    assert decode(encode(message)) == message


def test_given_roster_then_supervisors_are_no_operators(config: IvrConfig) -> None:
    assert "sup3001" in config.supervisors and "sup3001" not in config.operators
    assert config.supervisors["sup3001"].dial_string("sup3001") == "PJSIP/sup3001"


# --- the roster: strict YAML, endpoints like the operators' -----------------------------------


def test_given_supervisor_mistakes_when_loaded_then_each_named_with_file_and_line(tmp_path: Path) -> None:
    home = copy_shipped_config(tmp_path)
    file = home / "skills" / "operators.yaml"
    text = file.read_text()
    assert "  sup9001:\n    name: Elena Greco\n    site: roma\n" in text, "skills/operators.yaml changed"
    shipped = "  sup9001:\n    name: Elena Greco\n    site: roma\n"
    misspelt = "  sup9001:\n    name: Elena Greco\n    sede: roma\n"
    extra = '  op1002: {name: Marco Bianchi, site: roma}\n  "sup 1": {name: Spazio, site: roma}\n'
    file.write_text(text.replace(shipped, misspelt) + extra)
    lines = file.read_text().splitlines()
    sede = lines.index("    sede: roma") + 1
    clash = lines.index("  op1002: {name: Marco Bianchi, site: roma}") + 1
    bad_id = lines.index('  "sup 1": {name: Spazio, site: roma}') + 1
    errors = errors_of(home)
    assert f"{file}:{sede - 2}: supervisors sup9001.site: required field is missing" in errors, errors
    assert f"{file}:{sede}: supervisors sup9001.sede: unknown field (check the spelling)" in errors, errors
    assert any(e.startswith(f"{file}:{clash}: supervisor 'op1002' is also an operator") for e in errors), errors
    assert f"{file}:{bad_id}: supervisor id 'sup 1' is not a valid SIP username" in " ".join(errors), errors


def test_given_supervisors_when_rendered_then_endpoint_auth_and_aor_like_an_operator(
    config: IvrConfig, tmp_path: Path
) -> None:
    passwords = {user: SecretStr(f"pw-{user}-0123456789abcdef") for user in [*config.operators, *config.supervisors]}
    text = supervisor_pjsip(config, passwords)
    assert (
        "\n[sup3001](operator-endpoint)\nauth = sup3001\naors = sup3001\n"
        'callerid = "Test Supervisore" <sup3001>\n'
        "\n[sup3001](operator-auth)\nusername = sup3001\npassword = pw-sup3001-0123456789abcdef\n"
        "\n[sup3001](operator-aor)\nmax_contacts = 1\n"
    ) in text
    assert "[sup3001]" not in operator_pjsip(config, passwords), "a supervisor is not an operator"
    settings = Settings(
        home=tmp_path,
        state_dir=tmp_path / "state",
        asterisk_root=tmp_path / "root",
        ari_password=SecretStr("ari-test"),
        ami_secret=SecretStr("ami-test"),
        admin_token=SecretStr("admin-test"),
    )
    path = write_operators(settings, config)
    stored = ensure_operator_passwords(settings.state_dir, ["sup3001"])["sup3001"].get_secret_value()
    assert f"[sup3001](operator-auth)\nusername = sup3001\npassword = {stored}\n" in path.read_text()
