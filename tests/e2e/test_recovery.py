"""The controller killed (``kill -9``) with callers in the IVR, waiting in a queue and talking to
operators, and events that happen while no controller listens (issue 6, rows 1 and 2).

Asterisk keeps every channel parked in Stasis while the controller is gone: talking callers stay in
their mixing bridge, waiting callers in no bridge with their music on hold. The restarted
controller reads the queued calls' snapshots from Redis, lists Asterisk's channels and bridges, and
goes on with each call where it was (``unico.recovery``). These tests kill the session's controller
and start it again; the rig's teardown then checks the invariants (no channel or bridge left, no
call or busy operator in Redis, no open contact record, no handler error).
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Callable
from datetime import datetime

from tests.e2e.rig import Controller, Operators, Records, unique_caller, wait_for
from tests.e2e.test_acd import caller, steps
from unico import pbx

QUEUE_NUMBER = "7107"  # tq_recover: ring timeout 15 s, wrap-up 1 s (acd_test.yaml)


def number() -> str:
    return unique_caller("37")


async def kill(rig: Controller) -> None:
    rig.signal(signal.SIGKILL)
    assert rig.process is not None
    await asyncio.to_thread(rig.process.wait, 10)


async def waiting_in(rig: Controller, queue: str) -> int:
    status, body = await rig.api("GET", "/api/queues")
    assert status == 200, body
    return next(len(q["waiting"]) for q in body if q["name"] == queue)


def servable_at_first_offer(record: object) -> int:
    """How many waiting calls the operator could serve when they claimed this one (the reason of
    the record's first offer). The claims run one at a time in Redis, so this count orders them
    even when two operators claim within the same millisecond, which the offers' times cannot:
    each is noted when the call's own task gets to it."""
    offers = sorted((s for s in record.ivr_path if s["kind"] == "offer"), key=lambda s: datetime.fromisoformat(s["at"]))  # type: ignore[attr-defined]
    assert offers, "the record has an offer"
    found = re.search(r"first of (\d+) servable calls", str(offers[0].get("note")))
    assert found, f"a freed operator's claim says how many calls they could serve: {offers[0]}"
    return int(found.group(1))


async def asterisk_state(rig: Controller) -> tuple[set[str], dict[str, set[str]]]:
    channels = await asyncio.to_thread(pbx.ari_get, rig.settings, "/channels")
    bridges = await asyncio.to_thread(pbx.ari_get, rig.settings, "/bridges")
    return {c["id"] for c in channels}, {b["id"]: set(b["channels"]) for b in bridges}


async def test_given_callers_in_ivr_waiting_and_talking_when_controller_killed_then_all_recovered_and_served(
    rig: Controller, records: Records, operators: Operators, figure: Callable[[str], None]
) -> None:
    # two operators who will be talking when the controller dies: they hang up 14 s after answering
    phones = [await operators.online(op, talk_ms=14_000) for op in ("op2001", "op2002")]
    talkers = [number(), number()]
    talking = [asyncio.ensure_future(caller(rig, QUEUE_NUMBER, n).expect_bye(60_000).run()) for n in talkers]
    for phone in phones:
        await phone.wait_count("ANSWERED", 1, timeout=15)
    waiters = [number(), number(), number()]
    waiting = []
    for n in waiters:  # arrival order is the order they must be served in
        waiting.append(asyncio.ensure_future(caller(rig, QUEUE_NUMBER, n).expect_bye(90_000).run()))
        await asyncio.sleep(0.4)
    in_menu = number()
    # t_wait gives 20 s to choose; the caller presses 1 after 12 s, when the new process is up
    menu = asyncio.ensure_future(caller(rig, "7004", in_menu).pause(12_000).dtmf("1").expect_bye(30_000).run())

    async def all_in() -> bool:
        health = await rig.health()
        return bool(health and health["calls"] == 6 and await waiting_in(rig, "tq_recover") == 3)

    async def recorded() -> bool:
        # the record writes go in batches a moment later (contacts/writer.py, linger): the arrival
        # times compared below must be in the database before the kill
        found = [r for n in waiters for r in await records.all_for(n)]
        return len(found) == len(waiters) and all(r.queued_at is not None for r in found)

    await wait_for(all_in, timeout=20, what="2 callers talking, 3 waiting, 1 in the menu")
    await wait_for(recorded, timeout=5, what="the waiting callers' arrival times in their records")
    before = {r.caller: r for n in (*talkers, *waiters) for r in await records.all_for(n)}
    await kill(rig)
    channels, bridges = await asterisk_state(rig)
    conversations = [b for b, members in bridges.items() if "-conv" in b and len(members) == 2]
    # the 3 waiting callers (with their music) and the one in the menu: parked in Stasis, no bridge
    bridged = set().union(*bridges.values())
    assert len(conversations) == 2 and len(bridges) == 2, bridges
    assert len(channels - bridged) == 4, (channels, bridges)
    await asyncio.sleep(1.0)  # nobody listens: the channels stay parked in Stasis

    restarted = time.monotonic()
    rig.start()
    health = await rig.wait_ready(timeout=30)
    ready_after = time.monotonic() - restarted

    async def recovered() -> dict[str, object] | None:
        body = await rig.health()
        return body if body and body["recovered"] >= 5 else None

    recovered_health = await wait_for(recovered, timeout=10, what="5 queued calls recovered")
    serving_after = time.monotonic() - restarted
    figure(
        f"restart -> ready {ready_after:.2f} s, -> 5 queued calls recovered {serving_after:.2f} s;"
        f" reconcile {recovered_health['last_reconcile']}"
    )
    channels_after, _ = await asterisk_state(rig)
    assert channels <= channels_after, "no caller and no operator was dropped by the restart"

    results = await asyncio.gather(*talking, *waiting, menu)
    for result in results:
        assert result.answered and result.remote_bye, result.explain()
    # the conversations were never cut: each operator hung up at the end of their talk time
    assert all(phone.local_byes >= 1 for phone in phones), [p.explain() for p in phones]
    finished = {n: await records.finished_for(n) for n in (*talkers, *waiters, in_menu)}
    for n in (*talkers, *waiters, in_menu):
        assert len(await records.all_for(n)) == 1, f"one contact record for {n}"
    for n in talkers:
        record = finished[n]
        assert (record.outcome, record.queue) == ("answered", "tq_recover")
        assert record.operator in ("op2001", "op2002") and record.answered_at == before[n].answered_at
        assert any("talking with" in note for note in steps(record, "recovered"))
    for n in waiters:
        record = finished[n]
        assert record.outcome == "answered" and record.operator in ("op2001", "op2002")
        assert record.queued_at == before[n].queued_at, "the caller kept their arrival time"
    # Served in their original order: the ACD claimed them in arrival order, each claim leaving one
    # fewer waiting. (Not answered_at: two operators freed at the same moment answer their offers in
    # whichever order their phones do; nor the offers' times, noted by each call's own task.)
    servable = [servable_at_first_offer(finished[n]) for n in waiters]
    assert servable[0] > servable[1] > servable[2], f"waiting callers were claimed in their original order: {servable}"
    answered = [finished[n].answered_at for n in waiters]
    assert max(answered[:2]) < answered[2], "the last to arrive was the last served"  # type: ignore[operator]
    assert finished[in_menu].outcome == "contained"
    assert health["ready"]


async def test_given_events_while_no_controller_listens_then_records_closed_and_nobody_left_half_done(
    rig: Controller, records: Records, operators: Operators
) -> None:
    """While the controller is down: a talking caller hangs up, a waiting caller hangs up, and an
    operator answers a ringing offer (the leg fails to enter the missing app and is hung up)."""
    talker_op = await operators.online("op2001", talk_ms=60_000)
    talker = number()
    # answered ~1 s after dialling; hangs up 9 s later, while the controller is down
    talk = asyncio.ensure_future(caller(rig, QUEUE_NUMBER, talker).pause(9_000).hangup().run())
    await talker_op.wait_count("ANSWERED", 1, timeout=15)
    slow_op = await operators.online("op2002", ring_ms=4_000, talk_ms=2_000)
    rung = number()
    ring = asyncio.ensure_future(caller(rig, QUEUE_NUMBER, rung).expect_bye(60_000).run())
    await slow_op.wait_invites(1, timeout=15)
    waiter = number()
    wait = asyncio.ensure_future(caller(rig, QUEUE_NUMBER, waiter).pause(4_000).hangup().run())

    async def queued() -> bool:
        return await waiting_in(rig, "tq_recover") == 1

    await wait_for(queued, timeout=10, what="the third caller waiting")
    await kill(rig)
    # meanwhile: op2002 answers (about 3 s from now), the waiting caller and the talker hang up
    await slow_op.wait_count("ANSWERED", 1, timeout=10)
    talked, waited = await asyncio.gather(talk, wait)
    assert talked.answered and talked.local_bye, talked.explain()
    assert waited.answered and waited.local_bye, waited.explain()
    rig.start()
    await rig.wait_ready(timeout=30)

    talk_record = await records.finished_for(talker)
    assert (talk_record.outcome, talk_record.operator) == ("answered", "op2001")
    assert talk_record.talk_ended_at is not None
    assert "the caller hung up while the controller was away" in steps(talk_record, "recovered")
    await talker_op.wait_count("REMOTE_BYE", 1, timeout=10)  # the operator left alone was released
    wait_record = await records.finished_for(waiter)
    assert wait_record.outcome == "abandoned_queue"
    # the offer op2002 answered into the void was withdrawn, not held against them: offered again
    rung_result = await ring
    assert rung_result.answered and rung_result.remote_bye, rung_result.explain()
    rung_record = await records.finished_for(rung)
    assert (rung_record.outcome, rung_record.operator) == ("answered", "op2002")
    assert any("withdrawn" in note for note in steps(rung_record, "recovered")), rung_record.ivr_path
    assert len(slow_op.invites) == 2, slow_op.explain()
    for op in ("op2001", "op2002"):
        await rig.wait_agent(op, "ready", timeout=15)
