"""The ACD's call treatment without Asterisk: a recording fake of the ARI REST calls, the real ACD
service on the real Redis, the real IVR engine and contact store (SQLite), an injected clock.

Covers what the end-to-end tests cannot drive precisely: the announced position never goes up,
the estimated wait, timers firing (ring timeout, escalation, maximum wait) and the order of the
ARI requests (hold, music off before an announcement, ring, bridge).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from acd.agents import AgentState, Login, NotReadyReason, Pause, Registered
from contacts import ContactRecord, ContactStore
from contacts.db import upgrade
from ivr import engine
from ivr.actions import registry
from ivr.config import IvrConfig, load_config
from unico.acd_service import AcdService, CallMessage, Offer, TransferRequest
from unico.ari import AriNotFound
from unico.calls import CallDeps, IvrCall
from unico.queued_call import QState, QueuedCall, QueueTimer
from unico.recovery import CallSnapshot

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"


class FakeRest:
    """Records every request; ``fail`` maps a method name to an exception to raise once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: dict[str, Exception] = {}

    def __getattr__(self, name: str) -> Any:
        async def method(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args + tuple(sorted(kwargs.items()))))
            if name in self.fail:
                raise self.fail.pop(name)

        return method

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def args_of(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


class Clocks:
    def __init__(self) -> None:
        self.start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
        self.offset = 0.0

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.offset)

    def seconds(self) -> float:
        return 1_000_000.0 + self.offset


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> IvrConfig:
    folder = tmp_path_factory.mktemp("cfg")
    shutil.copytree(ROOT / "dialplan", folder / "dialplan")
    shutil.copytree(ROOT / "skills", folder / "skills")
    shutil.copy(E2E / "flows.yaml", folder / "dialplan")
    shutil.copy(E2E / "acd_test.yaml", folder / "skills")
    return load_config(folder / "dialplan", folder / "skills")


class Rig:
    def __init__(self, acd: AcdService, deps: CallDeps, config: IvrConfig, rest: FakeRest, clocks: Clocks) -> None:
        self.acd, self.deps, self.config, self.rest, self.clocks = acd, deps, config, rest, clocks
        self.calls: dict[str, IvrCall] = {}
        self.inbox: list[tuple[str, CallMessage]] = []
        #: controllers that took over in the test (``takeover``), closed with this one
        self.others: list[Rig] = []

    async def queued(self, call_id: str, dialled: str = "7101", priority: int = 0) -> QueuedCall:
        """A caller who walked the IVR to the queue node of ``dialled``."""
        call = IvrCall(self.deps, self.config, channel_id=call_id, dialled=dialled, caller="3330001111")
        self.calls[call_id] = call
        commands = call.session.start()
        play = next(c for c in commands if isinstance(c, engine.Play))
        (enqueue,) = [
            c for c in call.session.handle(engine.PlaybackFinished(play.playback_id)) if isinstance(c, engine.Enqueue)
        ]
        queued = QueuedCall(call, self.acd, queue=enqueue.queue, request_id=enqueue.request_id, priority=priority)
        call.queued = queued
        await queued.start()
        return queued

    async def fire(self, queued: QueuedCall, kind: str) -> None:
        token = queued._timers[kind][0]
        await queued.on_timer(QueueTimer(kind, token))

    async def deliver_offers(self) -> None:
        while self.inbox:
            call_id, message = self.inbox.pop(0)
            call = self.calls[call_id]
            assert call.queued is not None
            await call.queued.on_message(message)


@pytest.fixture
async def rig(config: IvrConfig, tmp_path: Path) -> AsyncIterator[Rig]:
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    url = f"sqlite+aiosqlite:///{tmp_path / 'unico.db'}"
    await upgrade(url)
    store = ContactStore(url)
    await store.open()
    clocks = Clocks()
    rest = FakeRest()
    holder: list[Rig] = []

    def deliver(call_id: str, message: CallMessage) -> bool:
        holder[0].inbox.append((call_id, message))
        return True

    acd = AcdService(
        redis=client,
        prefix=f"test:qc:{uuid.uuid4().hex}:",
        controller_id="ctl",
        config=lambda: config,
        deliver=deliver,
        clock=clocks.seconds,
        sweep_interval=3600,
    )
    await acd.sync_roster()
    # op2001 logged in without a softphone: the queues take calls, nobody is offered one yet
    await acd.agent_event("op2001", Login())
    deps = CallDeps(
        rest=rest,  # type: ignore[arg-type]
        store=store,
        handlers=registry,
        clock=clocks.wall,
        prompt_base="/unico/test/sounds",
        inject=lambda item: None,
        acd=acd,
        app="unico-test",
    )
    rig = Rig(acd, deps, config, rest, clocks)
    holder.append(rig)
    try:
        yield rig
    finally:
        for each in (rig, *rig.others):
            for call in each.calls.values():
                if call.queued is not None:
                    call.queued.close()
        for other in rig.others:
            await other.acd.close()
        await acd.close()
        await acd.live.wipe()
        await client.aclose()
        await deps.records.queue.close()
        await store.close()


async def ready(rig: Rig, agent_id: str) -> None:
    await rig.acd.agent_event(agent_id, Registered())
    await rig.acd.agent_event(agent_id, Login())
    for _ in range(10):  # the routing of a newly ready operator runs as its own task
        await asyncio.sleep(0.01)


def played(rig: Rig) -> list[list[str]]:
    return [list(args[2]) for args in rig.rest.args_of("play")]


async def test_given_caller_queued_then_holds_with_music_and_hears_position_and_wait(rig: Rig) -> None:
    queued = await rig.queued("c1")
    names = rig.rest.names()
    # no bridge and no Announcer channel: the caller's own channel plays the music
    assert names[:3] == ["start_moh", "stop_moh", "play"], names
    assert rig.rest.args_of("start_moh")[0] == ("c1", "default") and rig.rest.args_of("play")[0][0] == "c1"
    (media,) = played(rig)
    assert "number:1" in media and any("queue_position" in m for m in media)
    # no history yet: 180 s per call for one logged-in operator who could serve -> "less than" is not said
    assert queued.state is QState.WAITING
    assert [c.call_id for c in await rig.acd.live.waiting("tq_basic")] == ["c1"]
    # the announcement ends: the music comes back
    await queued.playback_finished(queued.announcement or "")
    assert rig.rest.names()[-1] == "start_moh"


async def test_given_caller_queued_then_line_and_snapshot_written_together_and_the_path_says_so(rig: Rig) -> None:
    queued = await rig.queued("c1")
    saved = await rig.acd.live.sessions()
    snapshot = CallSnapshot.from_json(saved["c1"])
    assert snapshot.queue.queue == queued.queue and snapshot.owner == "ctl"
    assert any("entered tq_basic" in str(step) for step in snapshot.session["path"]), snapshot.session["path"]


async def test_given_redis_refusing_the_line_when_a_caller_joins_then_the_path_does_not_say_they_did(
    rig: Rig,
) -> None:
    async def refused(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("Redis is down")

    rig.acd.live.add_call = refused  # type: ignore[method-assign]
    with pytest.raises(RedisConnectionError):
        await rig.queued("c1")
    call = rig.calls["c1"]
    assert not any((step.note or "").startswith("entered ") for step in call.session.path), call.session.path
    assert "c1" not in await rig.acd.live.sessions()


async def test_given_vip_arrives_later_when_announcing_again_then_position_never_goes_up(rig: Rig) -> None:
    first = await rig.queued("c1")
    await first.playback_finished(first.announcement or "")
    rig.clocks.offset += 5
    await rig.queued("c2", priority=10)  # a VIP: ahead of c1 in the line from now on
    assert await rig.acd.position("c1", "tq_basic") == 2
    rig.clocks.offset += 10
    await rig.fire(first, "announce")
    assert "number:1" in played(rig)[-1], "c1 heard 'number 1' before and must not hear 'number 2' now"
    assert first.announced_position == 1


async def test_given_operator_offered_when_ring_times_out_then_not_ready_and_call_back_at_head(rig: Rig) -> None:
    queued = await rig.queued("c1")
    rig.clocks.offset += 3
    await rig.queued("c2")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    assert queued.state is QState.RINGING and queued.agent_id == "op1002"
    (originate,) = rig.rest.args_of("originate")
    assert originate[0] == queued.agent_channel and originate[1] == "PJSIP/op1002"
    assert ("ring_timeout", 3) in originate and ("app", "unico-test") in originate
    rig.clocks.offset += 5
    await rig.fire(queued, "ring")
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and (agent.state, agent.reason) == (AgentState.NOT_READY, NotReadyReason.RING_NO_ANSWER)
    assert rig.rest.args_of("hangup")[-1][0] == originate[0], "the ringing leg is hung up"
    line = await rig.acd.live.waiting("tq_basic")
    assert [c.call_id for c in line] == ["c1", "c2"], "c1 keeps its place at the head"
    assert line[0].enqueued_at == 1_000_000.0
    assert queued.state is QState.WAITING


async def test_given_ringing_when_caller_hangs_up_then_leg_cancelled_and_operator_ready(rig: Rig) -> None:
    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    leg = queued.agent_channel
    await queued.caller_gone()
    assert ("hangup", (leg,)) in rig.rest.calls
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.READY and agent.call_id is None
    assert await rig.acd.live.waiting("tq_basic") == []
    assert await rig.acd.live.owner("c1") is None


async def test_given_answer_then_mixing_bridge_on_call_and_after_hangup_wrap_up(rig: Rig) -> None:
    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    leg = queued.agent_channel
    assert leg is not None
    rig.clocks.offset += 2
    await queued.agent_answered(leg)
    assert queued.state is QState.TALKING
    assert ("add_channel", (queued.conv_bridge, ["c1", leg])) in rig.rest.calls
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.ON_CALL
    assert queued.call.session.outcome == "answered"
    await queued.agent_answered(leg)  # the same StasisStart again: ignored
    assert rig.rest.args_of("hangup") == []
    rig.clocks.offset += 60
    await queued.caller_gone()
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.WRAP_UP
    assert 60 < await rig.acd.live.handle_time("tq_basic", 180) < 180, "the handle time moves the estimate"


async def test_given_caller_gone_as_operator_answers_when_bridging_fails_then_hangup_ends_it_cleanly(rig: Rig) -> None:
    from unico.ari.errors import AriBadRequest

    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    leg = queued.agent_channel
    assert leg is not None
    rig.rest.fail["add_channel"] = AriBadRequest(400, "POST", "/bridges/x/addChannel", "Channel not found")
    await queued.agent_answered(leg)  # must not raise: the caller's hang-up is on its way
    assert queued.state is QState.TALKING
    await queued.caller_gone()
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.WRAP_UP, "the operator is not left on a dead call"
    assert leg in [args[0] for args in rig.rest.args_of("hangup")]


async def test_given_answering_failed_half_way_when_operator_hangs_up_then_no_bridge_to_destroy_and_wrap_up(
    rig: Rig,
) -> None:
    from unico.ari.errors import AriTimeout

    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    leg = queued.agent_channel
    assert leg is not None
    rig.rest.fail["create_bridge"] = AriTimeout("POST", "/bridges/c1-conv1", 5)  # the conversation's
    with pytest.raises(AriTimeout):
        await queued.agent_answered(leg)  # Asterisk overloaded: the handler fails, the call goes on
    await queued.agent_leg_gone(leg, 16)
    assert ("",) not in rig.rest.args_of("destroy_bridge"), "ARI refuses an empty bridge id"
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.WRAP_UP


async def test_given_asterisk_not_answering_when_the_conversation_ends_then_wrap_up_and_redis_go_on(
    rig: Rig,
) -> None:
    """Overloaded, Asterisk may leave the leg's hang-up and the bridge's removal unanswered (the
    capacity bench's overload steps): the operator still goes to wrap-up and the call leaves Redis."""
    from unico.ari.errors import AriTimeout

    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    leg = queued.agent_channel
    assert leg is not None
    await queued.agent_answered(leg)
    rig.rest.fail["hangup"] = AriTimeout("DELETE", f"/channels/{leg}", 5)
    rig.rest.fail["destroy_bridge"] = AriTimeout("DELETE", "/bridges/c1-conv1", 5)
    await queued.caller_gone()
    assert queued.state is QState.DONE
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.WRAP_UP and agent.call_id is None
    assert await rig.acd.live.owners_of(["c1"]) == {}
    assert await rig.acd.live.sessions() == {}


async def test_given_escalation_step_when_due_then_requirements_relax_and_route_again(rig: Rig) -> None:
    await ready(rig, "op1001")  # bancoposta 9
    queued = await rig.queued("c1", dialled="7102")  # tq_escalate: bancoposta >= 10, >= 9 after 3 s
    await rig.deliver_offers()
    assert queued.state is QState.WAITING
    rig.clocks.offset += 3
    await rig.fire(queued, "escalate")
    await rig.deliver_offers()
    assert queued.state is QState.RINGING and queued.agent_id == "op1001"
    notes = [s.note for s in queued.call.session.path if s.kind == "escalate"]
    assert notes == ["after 3s need bancoposta >= 9"]


async def test_given_nobody_answers_when_max_wait_reached_then_back_to_the_ivr_with_timeout(rig: Rig) -> None:
    queued = await rig.queued("c1")
    rig.clocks.offset += 40
    await rig.fire(queued, "max_wait")
    assert queued.state is QState.DONE
    assert await rig.acd.live.waiting("tq_basic") == []
    session = queued.call.session
    assert session.node_name == "t_q_sorry" and any(s.note == "timeout" for s in session.path)


async def test_given_ari_error_while_ringing_then_operator_out_and_call_kept(rig: Rig) -> None:
    queued = await rig.queued("c1")
    rig.rest.fail["originate"] = AriNotFound(404, "POST", "/channels", "endpoint not found")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    assert queued.state is QState.WAITING
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.NOT_READY
    assert [c.call_id for c in await rig.acd.live.waiting("tq_basic")] == ["c1"]


async def test_given_offer_for_a_call_no_longer_waiting_then_operator_released(rig: Rig) -> None:
    queued = await rig.queued("c1")
    await queued.caller_gone()
    await queued.on_message(Offer("c1", "op1002", "stale"))
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and agent.call_id is None


async def test_given_ringing_when_operator_pauses_then_paused_with_reason_and_call_requeued(rig: Rig) -> None:
    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    leg = queued.agent_channel
    await rig.acd.agent_event("op1002", Pause(NotReadyReason.LUNCH))
    await rig.deliver_offers()  # the interrupt reaches the call's owner, which decides
    agent = await rig.acd.live.get_agent("op1002")
    assert agent is not None and (agent.state, agent.reason) == (AgentState.NOT_READY, NotReadyReason.LUNCH)
    assert ("hangup", (leg,)) in rig.rest.calls
    assert queued.state is QState.WAITING
    assert [c.call_id for c in await rig.acd.live.waiting("tq_basic")] == ["c1"]


@dataclass(frozen=True)
class Customer:
    id: str
    segment: str | None
    language: str | None
    last_operator: str | None


async def test_given_known_vip_caller_then_greeted_in_their_language_prioritised_and_offered_to_last_operator(
    rig: Rig,
) -> None:
    looked_up: list[str] = []

    async def lookup(number: str) -> Customer | None:
        looked_up.append(number)
        return Customer("cust-1", "vip", "en", "op1003")

    rig.deps.lookup = lookup
    await ready(rig, "op1003")  # the caller's last operator, idle for less time than op1002
    rig.clocks.offset += 30
    await ready(rig, "op1002")
    call = IvrCall(rig.deps, rig.config, channel_id="vip1", dialled="7101", caller="3331234567")
    rig.calls["vip1"] = call
    await call.start(answer=True)
    assert looked_up == ["3331234567"] and call.session.language == "en"
    (play,) = rig.rest.args_of("play")
    await call.feed(engine.PlaybackFinished(play[1]))
    assert call.queued is not None and call.queued.priority == 10
    await rig.deliver_offers()
    assert call.queued.agent_id == "op1003"
    assert (call.queued.reason or "").startswith("op1003: handled this caller's last contact")


async def test_given_customer_database_too_slow_then_caller_served_as_guest(rig: Rig) -> None:
    async def lookup(number: str) -> Customer | None:
        await asyncio.sleep(5)
        return Customer("cust-1", "vip", "en", None)

    rig.deps.lookup = lookup
    rig.deps.lookup_timeout = 0.05
    call = IvrCall(rig.deps, rig.config, channel_id="slow1", dialled="7101", caller="3331234567")
    rig.calls["slow1"] = call
    await call.start(answer=True)
    assert call.customer is None and call.session.language == "it"
    (play,) = rig.rest.args_of("play")
    await call.feed(engine.PlaybackFinished(play[1]))
    assert call.queued is not None and call.queued.priority == 0


async def test_given_caller_waiting_when_supervisor_moves_them_then_new_line_same_arrival_and_record_says_so(
    rig: Rig,
) -> None:
    queued = await rig.queued("c1")
    rig.clocks.offset += 4
    await queued.on_message(TransferRequest("c1", queue="tq_escalate", by="sup1"))

    assert queued.queue == "tq_escalate" and queued.state is QState.WAITING
    assert await rig.acd.live.waiting("tq_basic") == []
    (moved,) = await rig.acd.live.waiting("tq_escalate")
    assert moved.enqueued_at == 1_000_000.0, "the caller keeps their arrival time"
    assert [(s.kind, s.note) for s in queued.call.session.path][-1] == ("move", "tq_basic -> tq_escalate by sup1")


async def test_given_announced_wait_and_conversation_then_record_has_estimate_and_talk_end(rig: Rig) -> None:
    await rig.deps.store.start_contact(
        contact_id="c1", channel_id="c1", caller=None, dialled="7101", language="it", started_at=rig.clocks.wall()
    )
    queued = await rig.queued("c1")  # one operator logged in could serve, no history: 1 x 180 s
    await ready(rig, "op1002")
    await rig.deliver_offers()
    assert queued.agent_channel is not None
    rig.clocks.offset += 2
    await queued.agent_answered(queued.agent_channel)
    rig.clocks.offset += 30
    await queued.agent_leg_gone(queued.agent_channel, 16)
    await rig.deps.records.queue.drained()  # the record writes land behind the call

    record = await rig.deps.store.get("c1")
    assert record is not None
    assert record.estimated_wait == 180
    assert record.talk_ended_at == rig.clocks.start + timedelta(seconds=32)


# --- recovery: another controller (or this one's next life) takes the calls over ----------------


async def takeover(rig: Rig) -> Rig:
    """A second controller on the same Redis, database and config, with its own ARI fake: what a
    restarted or standby controller is. The first one's calls are detached (it died)."""
    for call in rig.calls.values():
        call.detach()
    rest = FakeRest()
    holder: list[Rig] = []

    def deliver(call_id: str, message: CallMessage) -> bool:
        holder[0].inbox.append((call_id, message))
        return True

    acd = AcdService(
        redis=rig.acd.redis,
        prefix=rig.acd.prefix,
        controller_id="ctl-2",
        config=lambda: rig.config,
        deliver=deliver,
        clock=rig.clocks.seconds,
        sweep_interval=3600,
    )
    new = Rig(acd, replace(rig.deps, rest=rest, acd=acd), rig.config, rest, rig.clocks)
    holder.append(new)
    rig.others.append(new)
    return new


async def saved(rig: Rig) -> dict[str, CallSnapshot]:
    return {k: CallSnapshot.from_json(v) for k, v in (await rig.acd.live.sessions()).items()}


async def recover(new: Rig, snapshot: CallSnapshot) -> IvrCall:
    call = IvrCall.recovered(new.deps, new.config, snapshot.moved_to(new.acd.controller_id))
    new.calls[call.channel_id] = call
    return call


async def record_of(rig: Rig, call_id: str) -> ContactRecord:
    await rig.deps.records.queue.drained()
    record = await rig.deps.store.get(call_id)
    assert record is not None
    return record


async def test_given_two_callers_waiting_when_another_controller_takes_over_then_same_order_music_and_routing(
    rig: Rig,
) -> None:
    await rig.queued("c1")
    rig.clocks.offset += 3
    await rig.queued("c2")
    snapshots = await saved(rig)
    assert {k: s.queue.state for k, s in snapshots.items()} == {"c1": "waiting", "c2": "waiting"}
    new = await takeover(rig)
    rig.clocks.offset += 20
    for call_id in ("c2", "c1"):  # whatever order the reconciliation finds them in
        call = await recover(new, snapshots[call_id])
        await call.resume(leg_alive=False, bridge_alive=False)
    # the callers wait in no bridge: nothing to rebuild, their music starts again
    assert "create_bridge" not in new.rest.names()
    assert ("start_moh", ("c1", "default")) in new.rest.calls
    assert ("start_moh", ("c2", "default")) in new.rest.calls
    line = await new.acd.live.waiting("tq_basic")
    assert [(c.call_id, c.enqueued_at, c.owner) for c in line] == [
        ("c1", 1_000_000.0, "ctl-2"),
        ("c2", 1_000_003.0, "ctl-2"),
    ]
    await ready(new, "op1002")
    await new.deliver_offers()
    first = new.calls["c1"].queued
    assert first is not None and first.state is QState.RINGING and first.agent_id == "op1002"
    assert (await new.acd.live.claim_holder("op1002") or ("",))[0] == "ctl-2"
    assert [s.kind for s in first.call.session.path].count("recovered") == 1


async def test_given_an_announcement_playing_when_another_controller_takes_over_then_it_is_stopped_first(
    rig: Rig,
) -> None:
    """A channel playback holds the caller's channel until it ends: the join to the operator
    waited for the dead controller's announcement (and timed out), so the new one stops it."""
    first = await rig.queued("c1")
    assert first.announcement == "c1-ann1"  # nobody ready: position and wait announced
    new = await takeover(rig)
    call = await recover(new, (await saved(rig))["c1"])
    await call.resume(leg_alive=False, bridge_alive=False)
    assert new.rest.calls[0] == ("stop_playback", ("c1-ann1",)), new.rest.calls[:3]
    queued = call.queued
    assert queued is not None and queued.announcement == "c1-ann2", "a new id: the old one may still be known"
    await ready(new, "op1002")
    await new.deliver_offers()
    assert queued.agent_channel is not None
    await queued.agent_answered(queued.agent_channel)
    assert queued.state is QState.TALKING
    assert ("stop_playback", ("c1-ann2",)) in new.rest.calls


async def test_given_a_caller_held_in_a_bridge_by_an_earlier_version_when_resumed_then_kept_there_until_answered(
    rig: Rig,
) -> None:
    """Callers held by a controller of an earlier version sit in a holding bridge of their own: the
    upgraded controller keeps them there (music on the bridge) and removes the bridge on answer."""
    await rig.queued("c1")
    snapshot = (await saved(rig))["c1"]
    snapshot = replace(snapshot, queue=replace(snapshot.queue, hold_bridge="c1-hold1"))
    new = await takeover(rig)
    call = await recover(new, snapshot)
    await call.resume(leg_alive=False, bridge_alive=True)
    assert ("subscribe", ("unico-test", ["bridge:c1-hold1"])) in new.rest.calls
    assert ("start_bridge_moh", ("c1-hold1", "default")) in new.rest.calls
    assert "start_moh" not in new.rest.names() and "create_bridge" not in new.rest.names()
    await ready(new, "op1002")
    await new.deliver_offers()
    queued = call.queued
    assert queued is not None and queued.state is QState.RINGING and queued.agent_channel is not None
    await queued.agent_answered(queued.agent_channel)
    assert queued.state is QState.TALKING
    assert ("remove_channel", ("c1-hold1", "c1")) in new.rest.calls
    assert ("destroy_bridge", ("c1-hold1",)) in new.rest.calls
    assert queued.hold_bridge == ""


async def test_given_operator_ringing_when_taken_over_then_still_ringing_and_answer_connects(rig: Rig) -> None:
    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    leg = queued.agent_channel
    assert leg == "c1-op1"
    new = await takeover(rig)
    call = await recover(new, (await saved(rig))["c1"])
    await call.resume(leg_alive=True, bridge_alive=True)
    assert call.queued is not None and call.queued.state is QState.RINGING
    assert "originate" not in new.rest.names(), "the ringing operator is not rung a second time"
    assert ("subscribe", ("unico-test", ["channel:c1-op1"])) in new.rest.calls
    assert "ring" in call.queued._timers
    assert await new.acd.live.claim_holder("op1002") == ("ctl-2", "")
    await call.queued.agent_answered(leg)
    assert call.queued.state is QState.TALKING
    agent = await new.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.ON_CALL and agent.call_id == "c1"
    assert (await record_of(new, "c1")).operator == "op1002"


async def test_given_ring_lost_with_the_controller_then_operator_ready_again_and_call_at_the_head(rig: Rig) -> None:
    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    assert queued.agent_channel == "c1-op1"
    new = await takeover(rig)
    call = await recover(new, (await saved(rig))["c1"])
    await call.resume(leg_alive=False, bridge_alive=True)
    # op1002 did nothing wrong (the leg died with the controller's Stasis app): offered the call again
    await asyncio.sleep(0.05)
    await new.deliver_offers()
    assert call.queued is not None and call.queued.state is QState.RINGING
    assert call.queued.agent_id == "op1002" and call.queued.agent_channel == "c1-op2"
    notes = [s.note for s in call.session.path if s.kind == "recovered"]
    assert notes == ["waiting; the offer to op1002 was withdrawn"]


async def test_given_conversation_when_taken_over_then_it_goes_on_and_ends_in_wrap_up(rig: Rig) -> None:
    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    assert queued.agent_channel is not None
    await queued.agent_answered(queued.agent_channel)
    new = await takeover(rig)
    await rig.acd.live.wipe()  # Redis lost too (a restart without persistence): nothing says op1002 talks
    await rig.acd.live.save_session("c1", "ctl", (await saved_from(queued)).to_json())
    call = await recover(new, (await saved(rig))["c1"])
    await call.resume(leg_alive=True, bridge_alive=True)
    assert [n for n in new.rest.names() if n in ("create_bridge", "add_channel", "hangup")] == []
    agent = await new.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.ON_CALL and agent.call_id == "c1"
    rig.clocks.offset += 30
    await call.close()
    agent = await new.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.WRAP_UP
    record = await record_of(new, "c1")
    assert (record.outcome, record.operator) == ("answered", "op1002")
    assert await new.acd.live.sessions() == {}


async def saved_from(queued: QueuedCall) -> CallSnapshot:
    snapshot = queued.call.snapshot()
    assert snapshot is not None
    return snapshot


async def test_given_operator_hung_up_while_nobody_listened_then_caller_goes_on_to_after_call_and_wrap_up(
    rig: Rig,
) -> None:
    queued = await rig.queued("c1")
    await ready(rig, "op1002")
    await rig.deliver_offers()
    assert queued.agent_channel is not None
    await queued.agent_answered(queued.agent_channel)
    new = await takeover(rig)
    call = await recover(new, (await saved(rig))["c1"])
    await call.resume(leg_alive=False, bridge_alive=True)
    assert call.queued is None and queued.state is QState.TALKING, "the new controller's call, not the old"
    assert ("destroy_bridge", (queued.conv_bridge,)) in new.rest.calls
    agent = await new.acd.live.get_agent("op1002")
    assert agent is not None and agent.state is AgentState.WRAP_UP
    assert call.session.finished and call.session.hangup_reason == "operator_ended"


@pytest.mark.parametrize("state", ["waiting", "ringing", "talking"])
async def test_given_caller_hung_up_while_nobody_listened_then_record_closed_as_the_state_says_and_nothing_left(
    rig: Rig, state: str
) -> None:
    queued = await rig.queued("c1")
    if state != "waiting":
        await ready(rig, "op1002")
        await rig.deliver_offers()
        assert queued.agent_channel is not None
        if state == "talking":
            await queued.agent_answered(queued.agent_channel)
    new = await takeover(rig)
    call = await recover(new, (await saved(rig))["c1"])
    await call.left_behind()
    record = await record_of(new, "c1")
    assert record.ended_at is not None
    assert record.outcome == ("answered" if state == "talking" else "abandoned_queue")
    assert record.ivr_path[-2]["note"] == "the caller hung up while the controller was away"
    expected = {"waiting": None, "ringing": AgentState.READY, "talking": AgentState.WRAP_UP}[state]
    agent = await new.acd.live.get_agent("op1002")
    assert (agent.state if agent is not None and expected is not None else None) == expected
    assert agent is None or agent.call_id is None
    leftovers = [k for k in await new.acd.live.keys() if ":agent" not in k and not k.endswith(":events")]
    assert [k for k in leftovers if ":aht:" not in k] == []
