"""The wallboard's numbers from hand-made data: service level, longest wait, operators by state,
office hours (closing soon, holidays, closures, DST), and the JSON the pages read. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from acd.agents import Agent, AgentState, NotReadyReason
from acd.queues import QueueSpec
from acd.roster import OperatorSpec
from acd.routing import WaitingCall
from ivr.config import IvrConfig
from ivr.hours import Calendar, CalendarSpec, Closure
from ivr.schema import DialplanSettings
from unico.console.snapshot import (
    OPERATOR_STATES,
    QueueCounts,
    all_queue_members,
    area_status,
    build_snapshot,
    day_bounds,
    eligible,
    next_change,
)

ROME = ZoneInfo("Europe/Rome")
#: Monday 2 March 2026, 10:00 in Rome
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=ROME)
CUSTOMERS = Calendar.from_spec(CalendarSpec(hours={"mon-sat": "08:00-20:00"}))
ALWAYS = Calendar.from_spec(CalendarSpec(hours={"mon-sun": "00:00-24:00"}, holidays=None))


def queue(tier: str = "general", **extra: object) -> QueueSpec:
    return QueueSpec.model_validate({"name": f"Test {tier}", "tier": tier, "calendar": "customers", **extra})


def operator(tiers: tuple[str, ...], **skills: int) -> OperatorSpec:
    return OperatorSpec.model_validate({"name": "Test", "site": "roma", "tiers": tiers, "skills": skills})


def config(queues: dict[str, QueueSpec], operators: dict[str, OperatorSpec]) -> IvrConfig:
    return IvrConfig(
        settings=DialplanSettings(),
        numbers={},
        nodes={},
        prompts={},
        calendars={"customers": CUSTOMERS, "always": ALWAYS},
        queues=queues,
        version="test",
        operators=operators,
    )


def agent(agent_id: str, state: AgentState, reason: NotReadyReason | None = None) -> Agent:
    return Agent(id=agent_id, state=state, reason=reason, since=0.0, registered=True)


def waiting(call_id: str, queue_name: str, enqueued_at: float) -> WaitingCall:
    return WaitingCall(
        call_id=call_id, queue=queue_name, priority=0, enqueued_at=enqueued_at, requirements={}, tier="general"
    )


# --- queues and tiers ---------------------------------------------------------------------------


def test_given_todays_counts_then_service_level_is_answered_within_threshold_over_answered_per_queue_and_tier() -> None:
    cfg = config(
        {
            "a": queue(service_level={"threshold": 20, "target": 0.8}),
            "b": queue(service_level={"threshold": 30, "target": 0.8}),
            "idle": queue("specialist"),
        },
        {},
    )
    today = {
        "a": QueueCounts(answered=10, answered_in_threshold=8, abandoned=2, short_abandoned=1),
        "b": QueueCounts(answered=30, answered_in_threshold=15, abandoned=1),
    }
    board = build_snapshot(cfg, {}, [], today, MONDAY)
    rows = {row.name: row for row in board.queues}
    assert rows["a"].service_level == pytest.approx(0.8)
    assert (rows["a"].sl_threshold, rows["a"].sl_target) == (20, 0.8)
    assert rows["b"].service_level == pytest.approx(0.5)
    assert rows["idle"].service_level is None, "nothing answered yet is no service level, not 100 %"
    general = next(t for t in board.tiers if t.name == "general")
    assert general.service_level == pytest.approx(23 / 40), "a tier adds its queues' counts"
    assert (general.today.answered, general.today.abandoned, general.today.short_abandoned) == (40, 3, 1)
    assert general.sl_threshold is None and general.sl_target == 0.8, "thresholds differ, targets agree"
    assert general.queues == ("a", "b")


def test_given_calls_waiting_then_count_and_longest_wait_per_queue_and_tier_from_the_earliest_arrival() -> None:
    cfg = config({"a": queue(), "b": queue(), "c": queue("specialist")}, {})
    now = MONDAY.timestamp()
    calls = [
        waiting("1", "a", now - 5),
        waiting("2", "a", now - 75.5),
        waiting("3", "b", now - 12),
        waiting("4", "gone", now - 999),  # a queue removed by a reload: not shown
    ]
    board = build_snapshot(cfg, {}, calls, {}, MONDAY)
    rows = {row.name: row for row in board.queues}
    assert (rows["a"].waiting, rows["a"].longest_wait) == (2, pytest.approx(75.5))
    assert (rows["b"].waiting, rows["b"].longest_wait) == (1, pytest.approx(12))
    assert (rows["c"].waiting, rows["c"].longest_wait) == (0, 0.0)
    tiers = {row.name: row for row in board.tiers}
    assert (tiers["general"].waiting, tiers["general"].longest_wait) == (3, pytest.approx(75.5))
    assert tiers["specialist"].waiting == 0


def test_given_roster_and_live_states_then_operators_by_state_count_those_who_could_take_the_queues_calls() -> None:
    cfg = config(
        {
            "general": queue(required_skills={"italiano": 5}),
            "banco": queue(
                "specialist",
                required_skills={"bancoposta": 10},
                escalation=["after 30s need bancoposta >= 8", "after 60s overflow to enterprise"],
            ),
        },
        {
            "g1": operator(("general",), italiano=7),
            "g2": operator(("general",), italiano=7),
            "g3": operator(("general",), italiano=3),  # never meets italiano >= 5
            "s1": operator(("general", "specialist"), italiano=9, bancoposta=10),
            "s2": operator(("specialist",), bancoposta=8),  # only after the 30 s step
            "s3": operator(("specialist",), bancoposta=5),
            "e1": operator(("enterprise",), bancoposta=10),  # overflow is not counted
        },
    )
    agents = {
        "g1": agent("g1", AgentState.READY),
        "g2": agent("g2", AgentState.NOT_READY, NotReadyReason.LUNCH),
        # g3: Redis does not know them: logged out
        "s1": agent("s1", AgentState.ON_CALL),
        "s2": agent("s2", AgentState.RINGING),
        "s3": agent("s3", AgentState.READY),
        "e1": agent("e1", AgentState.READY),
    }
    board = build_snapshot(cfg, agents, [], {}, MONDAY)
    rows = {row.name: row for row in board.queues}
    assert tuple(rows["general"].operators) == OPERATOR_STATES
    assert dict(rows["general"].operators) == {
        "ready": 1,
        "ringing": 0,
        "on_call": 1,
        "wrap_up": 0,
        "not_ready": 1,
        "logged_out": 0,
    }
    assert dict(rows["banco"].operators) == {
        "ready": 0,
        "ringing": 1,
        "on_call": 1,
        "wrap_up": 0,
        "not_ready": 0,
        "logged_out": 0,
    }
    tiers = {row.name: row for row in board.tiers}
    assert tiers["general"].operators["logged_out"] == 1, "a tier counts every operator of the tier"
    assert sum(tiers["general"].operators.values()) == 4
    nobody = dict.fromkeys(OPERATOR_STATES, 0)
    assert tiers["specialist"].operators == {**nobody, "ready": 1, "ringing": 1, "on_call": 1}
    assert tiers["enterprise"].operators["ready"] == 1 and tiers["enterprise"].queues == ()


def test_eligible_needs_the_tier_and_the_levels_of_some_escalation_step() -> None:
    banco = queue("specialist", required_skills={"bancoposta": 10}, escalation=["after 30s need bancoposta >= 8"])
    assert eligible(operator(("specialist",), bancoposta=8), banco)
    assert not eligible(operator(("specialist",), bancoposta=7), banco)
    assert not eligible(operator(("general",), bancoposta=10), banco)


# --- office hours -------------------------------------------------------------------------------


def test_given_a_quarter_of_an_hour_before_closing_then_closing_soon_and_a_second_earlier_open() -> None:
    closes = datetime(2026, 3, 2, 20, 0, tzinfo=ROME)
    edge = area_status("customers", CUSTOMERS, closes - timedelta(minutes=15))
    assert (edge.state, edge.next_change) == ("closing_soon", closes)
    before = area_status("customers", CUSTOMERS, closes - timedelta(minutes=15, seconds=1))
    assert (before.state, before.next_change) == ("open", closes)
    wider = area_status("customers", CUSTOMERS, closes - timedelta(minutes=25), closing_soon=timedelta(minutes=30))
    assert wider.state == "closing_soon", "the margin is configurable"
    after = area_status("customers", CUSTOMERS, closes)
    assert after.state == "closed" and after.next_change == datetime(2026, 3, 3, 8, 0, tzinfo=ROME)


def test_given_a_holiday_then_closed_with_its_name_until_the_next_working_morning() -> None:
    christmas = datetime(2026, 12, 25, 11, 0, tzinfo=ROME)  # a Friday; Santo Stefano, then Sunday
    status = area_status("customers", CUSTOMERS, christmas)
    assert status.state == "closed"
    assert status.note, "the holiday's name says why"
    assert status.next_change == datetime(2026, 12, 28, 8, 0, tzinfo=ROME)


def test_given_saturday_evening_before_dst_then_next_opening_is_monday_8_local_time() -> None:
    # 29 March 2026: clocks go forward in the night from Saturday to Monday
    saturday = datetime(2026, 3, 28, 21, 0, tzinfo=ROME)
    change = next_change(CUSTOMERS, saturday)
    assert change == datetime(2026, 3, 30, 8, 0, tzinfo=ROME)
    assert change is not None and change.astimezone(UTC).hour == 6, "08:00 CEST is 06:00 UTC"


def test_given_an_extra_closure_then_closed_with_its_reason_until_it_ends() -> None:
    spec = CalendarSpec(
        hours={"mon-sat": "08:00-20:00"},
        closures=[Closure(start=datetime(2026, 3, 2, 14, 0), end=datetime(2026, 3, 2, 16, 0), reason="sciopero")],
    )
    calendar = Calendar.from_spec(spec)
    assert area_status("customers", calendar, datetime(2026, 3, 2, 13, 50, tzinfo=ROME)).state == "closing_soon"
    during = area_status("customers", calendar, datetime(2026, 3, 2, 15, 0, tzinfo=ROME))
    assert (during.state, during.note) == ("closed", "sciopero")
    assert during.next_change == datetime(2026, 3, 2, 16, 0, tzinfo=ROME)


def test_given_a_calendar_open_around_the_clock_then_open_with_no_next_change() -> None:
    status = area_status("always", ALWAYS, MONDAY)
    assert (status.state, status.next_change) == ("open", None)


def test_given_a_closure_ending_beyond_the_horizon_then_closed_with_no_next_change() -> None:
    spec = CalendarSpec(
        hours={"mon-sun": "00:00-24:00"},
        holidays=None,
        closures=[Closure(start=datetime(2000, 1, 1), end=datetime(2100, 1, 1), reason="never")],
    )
    status = area_status("never", Calendar.from_spec(spec), MONDAY)
    assert (status.state, status.next_change, status.note) == ("closed", None, "never")


def test_day_bounds_follow_rome_midnight_also_on_the_25_hour_day() -> None:
    start, end = day_bounds(datetime(2026, 10, 25, 12, 0, tzinfo=UTC))
    assert start == datetime(2026, 10, 25, 0, 0, tzinfo=ROME)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # already 3 March in Rome
    assert day_bounds(late)[0] == datetime(2026, 3, 3, 0, 0, tzinfo=ROME)


# --- the JSON the pages read --------------------------------------------------------------------


def test_snapshot_json_has_every_row_the_pages_show() -> None:
    cfg = config({"a": queue()}, {"g1": operator(("general",), italiano=7)})
    now = MONDAY.timestamp()
    board = build_snapshot(
        cfg,
        {"g1": agent("g1", AgentState.READY)},
        [waiting("1", "a", now - 3)],
        {"a": QueueCounts(answered=1, answered_in_threshold=1)},
        MONDAY,
    )
    data = board.to_json_dict()
    assert data["type"] == "wallboard" and data["day"] == "2026-03-02"
    (row,) = data["queues"]
    assert {k: row[k] for k in ("name", "tier", "waiting", "longest_wait", "answered", "service_level")} == {
        "name": "a",
        "tier": "general",
        "waiting": 1,
        "longest_wait": 3.0,
        "answered": 1,
        "service_level": 1.0,
    }
    assert row["operators"]["ready"] == 1
    assert [a["name"] for a in data["areas"]] == ["always", "customers"]
    assert data["areas"][1] == {
        "name": "customers",
        "state": "open",
        "next_change": "2026-03-02T20:00:00+01:00",
        "note": None,
    }
    assert "answered within the queue's threshold" in data["definitions"]["service_level"]


def test_given_cached_members_then_the_same_counts_as_working_them_out() -> None:
    cfg = config(
        {"a": queue(required_skills={"italiano": 5})},
        {"g1": operator(("general",), italiano=7), "g2": operator(("general",), italiano=2)},
    )
    agents = {"g1": agent("g1", AgentState.READY), "g2": agent("g2", AgentState.READY)}
    fresh = build_snapshot(cfg, agents, [], {}, MONDAY)
    cached = build_snapshot(cfg, agents, [], {}, MONDAY, members=all_queue_members(cfg))
    assert all_queue_members(cfg) == {"a": ("g1",)}
    assert fresh.queues == cached.queues and cached.queues[0].operators["ready"] == 1
