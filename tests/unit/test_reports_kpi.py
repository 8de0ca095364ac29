"""KPIs against hand-computed fixtures (``reports.kpi.compute``): no database, no clock.

Times are Europe/Rome; 2 Nov 2026 is a Monday in CET (UTC+1). Each fixture writes its arithmetic
next to the assertion, so a changed definition shows up as a changed comment too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from reports.buckets import Buckets
from reports.kpi import (
    KPI_COLUMNS,
    TOTAL_KEY,
    AgentSpan,
    ComplaintRow,
    ContactRow,
    KpiOptions,
    QueueRules,
    Report,
    SlDefinition,
    SurveyRow,
    compute,
    path_flags,
)

ROME = ZoneInfo("Europe/Rome")
RULES = {
    "general": QueueRules(sl_threshold=20, short_abandon=5, wrapup=10),
    "vip": QueueRules(sl_threshold=10, short_abandon=0, wrapup=30),
}
OPTIONS = KpiOptions(queues=RULES)


def rome(day: int, hour: int, minute: int = 0, second: int = 0, *, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=ROME)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def answered(
    cid: str,
    queued: datetime,
    wait: float,
    *,
    talk: float = 60,
    wrapup: float | None = None,
    talk_ended: bool = True,
    **extra: Any,
) -> ContactRow:
    """A call answered after ``wait`` s; with ``talk_ended`` the caller stays 15 s for the survey."""
    answered_at = queued + s(wait)
    talk_end = answered_at + s(talk)
    row = ContactRow(
        id=cid,
        started_at=queued - s(30),
        queued_at=queued,
        answered_at=answered_at,
        talk_ended_at=talk_end if talk_ended else None,
        wrapup_ended_at=None if wrapup is None else talk_end + s(wrapup),
        ended_at=talk_end + s(15) if talk_ended else talk_end,
        queue="general",
        tier="general",
        operator="op1",
        outcome="answered",
    )
    return replace(row, **extra)


def gave_up(cid: str, queued: datetime, after: float, *, outcome: str = "abandoned_queue", **extra: Any) -> ContactRow:
    row = ContactRow(
        id=cid,
        started_at=queued - s(30),
        queued_at=queued,
        ended_at=queued + s(after),
        queue="general",
        tier="general",
        outcome=outcome,
    )
    return replace(row, **extra)


def ivr_only(cid: str, started: datetime, outcome: str, **extra: Any) -> ContactRow:
    return replace(ContactRow(id=cid, started_at=started, ended_at=started + s(90), outcome=outcome), **extra)


def one_hour(contacts: list[ContactRow], *, by: Any = "total", options: KpiOptions = OPTIONS, **extra: Any) -> Report:
    """The 09:00-10:00 hour of Monday 2 Nov, in one 60-minute bucket."""
    return compute(
        contacts,
        start=rome(2, 9),
        end=rome(2, 10),
        interval="60m",
        by=by,
        as_of=rome(23, 12),
        options=options,
        **extra,
    )


def kpis(report: Report, key: str | None = TOTAL_KEY, index: int = 0) -> dict[str, Any]:
    rows = [row for row in report.rows if row.key == key]
    return dict(rows[index].kpis)


# 09:00-10:00 in queue general (SL 20 s, short abandon 5 s, wrap-up 10 s):
MIXED = [
    answered("a", rome(2, 9, 0), 10, talk=120, wrapup=30),  # in SL; talk 120, wrap-up 30 measured
    answered("b", rome(2, 9, 10), 30, talk=200, talk_ended=False),  # not in SL; talk to ended_at, wrap-up 10 assumed
    gave_up("c", rome(2, 9, 20), 3),  # short abandon (3 < 5)
    gave_up("d", rome(2, 9, 30), 15),  # abandon within SL (15 <= 20)
    gave_up("e", rome(2, 9, 35), 18),  # abandon within SL
    gave_up("f", rome(2, 9, 40), 60),  # abandon after SL
    gave_up("g", rome(2, 9, 50), 120, outcome="operators_unavailable"),  # the queue's time-out: neither
]


def test_given_mixed_calls_when_computed_then_counts_asa_and_aht_match_hand_arithmetic() -> None:
    k = kpis(one_hour(MIXED))

    assert (k["offered"], k["answered"], k["abandoned"], k["short_abandoned"], k["unanswered_other"]) == (7, 2, 3, 1, 1)
    assert (k["answered_in_sl"], k["abandoned_in_sl"]) == (1, 2)  # a; d and e
    assert k["abandon_rate"] == pytest.approx(3 / 6)  # abandoned / (offered 7 - short 1)
    assert k["asa"] == pytest.approx((10 + 30) / 2)
    assert (k["handled"], k["wrapup_estimated"]) == (2, 1)
    assert k["avg_talk"] == pytest.approx((120 + 200) / 2)  # a's survey time after talk is not talk
    assert k["avg_wrapup"] == pytest.approx((30 + 10) / 2)  # b: the queue's configured 10 s
    assert k["aht"] == pytest.approx(160 + 20)  # talk + hold (0, no hold in Unico) + wrap-up


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("answered", 1 / 2),  # answered in SL 1 / answered 2
        ("offered", 1 / 6),  # answered in SL 1 / (offered 7 - short abandons 1)
        ("app_queue_sl2", (1 + 2) / (2 + 3)),  # (answered 1 + abandoned 2 in SL) / (answered 2 + abandoned 3)
    ],
)
def test_given_each_sl_definition_when_computed_then_service_level_matches(
    definition: SlDefinition, expected: float
) -> None:
    k = kpis(one_hour(MIXED, options=KpiOptions(queues=RULES, sl_definition=definition)))

    assert k["service_level"] == pytest.approx(expected)


def test_given_waits_on_the_thresholds_when_computed_then_sl_inclusive_and_short_abandon_strict() -> None:
    calls = [
        answered("at-sl", rome(2, 9, 0), 20),  # 20 <= 20: in SL (app_queue compares with <=)
        answered("over-sl", rome(2, 9, 1), 20.5),
        gave_up("at-short", rome(2, 9, 2), 5),  # 5 is not < 5: a real abandon, within SL
        gave_up("under-short", rome(2, 9, 3), 4.9),  # short
        gave_up("vip-zero", rome(2, 9, 4), 0, queue="vip"),  # short_abandon 0 disables short abandons
        answered("vip", rome(2, 9, 5), 15, queue="vip"),  # vip's SL is 10 s: not in SL
    ]

    k = kpis(one_hour(calls))

    assert (k["answered"], k["answered_in_sl"]) == (3, 1)
    assert (k["abandoned"], k["short_abandoned"], k["abandoned_in_sl"]) == (2, 1, 2)


def test_given_a_quiet_period_when_computed_then_zero_counts_and_null_ratios() -> None:
    report = compute(
        [], start=rome(2, 9), end=rome(2, 12), interval="60m", by="total", as_of=rome(23, 12), options=OPTIONS
    )

    assert [row.start for row in report.rows] == [rome(2, 9), rome(2, 10), rome(2, 11)]
    for row in report.rows:
        assert row.kpis["offered"] == row.kpis["contacts"] == row.kpis["complaints_opened"] == 0
        for name in ("service_level", "asa", "aht", "occupancy", "ivr_containment", "fcr", "ewt_mae", "survey_score"):
            assert row.kpis[name] is None
    body = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert body["rows"][0]["service_level"] is None and body["rows"][0]["offered"] == 0
    assert body["columns"] == ["start", "end", "key", *KPI_COLUMNS]


def test_given_calls_spanning_buckets_when_computed_then_counted_where_they_entered_the_queue() -> None:
    calls = [
        # entered 09:59:50, answered 10:00:20: offered, answered and ASA 30 s all in the 09:00 bucket
        answered("late", rome(2, 9, 59, 50), 30),
        # started in the IVR at 10:59:40 (a contact of 10:00), queued 11:00:10 (offered at 11:00)
        replace(answered("split", rome(2, 11, 0, 10), 5), started_at=rome(2, 10, 59, 40)),
        # started before the report (08:59:50) and queued inside it: offered, but not a contact of it
        replace(answered("before", rome(2, 9, 0, 5), 5), started_at=rome(2, 8, 59, 50)),
    ]

    report = compute(
        calls, start=rome(2, 9), end=rome(2, 12), interval="60m", by="total", as_of=rome(23, 12), options=OPTIONS
    )

    nine, ten, eleven = (row.kpis for row in report.rows)
    assert (nine["offered"], nine["answered"]) == (2, 2)
    assert nine["asa"] == pytest.approx((30 + 5) / 2)
    assert (nine["contacts"], ten["contacts"], eleven["contacts"]) == (1, 1, 0)  # late (09:59:20); split
    assert (ten["offered"], eleven["offered"]) == (0, 1)


def test_given_autumn_dst_day_when_hourly_then_25_buckets_and_two_local_2am_hours() -> None:
    day = datetime(2026, 10, 25, tzinfo=ROME)
    calls = [
        answered("cest", datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 5),  # 02:30 CEST (+02:00)
        answered("cet", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), 5),  # 02:30 CET (+01:00), an hour later
    ]

    report = compute(calls, start=day, end=day + timedelta(days=1), interval="60m", by="total", as_of=rome(23, 12))

    assert len(report.rows) == 25  # the day has 25 hours
    starts = [row.start.isoformat() for row in report.rows[1:5]]
    assert starts == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert [row.kpis["offered"] for row in report.rows[1:5]] == [0, 1, 1, 0]
    assert all(row.end.astimezone(UTC) - row.start.astimezone(UTC) == timedelta(hours=1) for row in report.rows)


def test_given_spring_dst_day_when_hourly_then_23_buckets_and_no_2am() -> None:
    day = datetime(2026, 3, 29, tzinfo=ROME)
    calls = [answered("x", datetime(2026, 3, 29, 1, 30, tzinfo=UTC), 5)]  # 03:30 CEST

    report = compute(calls, start=day, end=day + timedelta(days=1), interval="60m", by="total", as_of=rome(23, 12))

    assert len(report.rows) == 23
    assert [row.start.strftime("%H:%M%z") for row in report.rows[:4]] == [
        "00:00+0100",
        "01:00+0100",
        "03:00+0200",
        "04:00+0200",
    ]
    assert report.rows[2].kpis["offered"] == 1
    assert report.rows[-1].end == datetime(2026, 3, 30, tzinfo=ROME)


def test_given_dst_days_when_daily_then_buckets_are_local_days_of_23_and_25_hours() -> None:
    spring = compute(
        [], start=rome(28, 0, month=3), end=rome(31, 0, month=3), interval="day", by="total", as_of=rome(23, 12)
    )
    autumn = compute(
        [], start=rome(25, 0, month=10), end=rome(26, 0, month=10), interval="day", by="total", as_of=rome(23, 12)
    )

    lengths = [row.end.astimezone(UTC) - row.start.astimezone(UTC) for row in spring.rows]
    assert lengths == [timedelta(hours=24), timedelta(hours=23), timedelta(hours=24)]
    (row,) = autumn.rows
    assert row.end.astimezone(UTC) - row.start.astimezone(UTC) == timedelta(hours=25)


def test_given_calls_around_local_midnight_when_monthly_then_calendar_months_in_rome() -> None:
    calls = [
        answered("october", datetime(2026, 10, 31, 22, 30, tzinfo=UTC), 5),  # 23:30 CET, 31 October
        answered("november", datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 5),  # 00:30 CET, 1 November
        answered("late-nov", datetime(2026, 11, 30, 22, 59, tzinfo=UTC), 5),  # 23:59 CET, 30 November
    ]

    report = compute(
        calls, start=rome(1, 0, month=10), end=rome(1, 0, month=12), interval="month", by="total", as_of=rome(23, 12)
    )

    assert [(row.start.isoformat(), row.kpis["offered"]) for row in report.rows] == [
        ("2026-10-01T00:00:00+02:00", 1),
        ("2026-11-01T00:00:00+01:00", 2),
    ]
    assert report.rows[0].end == rome(1, 0, month=11)


@pytest.mark.parametrize("interval", ["15m", "30m"])
def test_given_sub_hour_interval_when_computed_then_buckets_split_the_hour(interval: Any) -> None:
    calls = [answered("a", rome(2, 9, 14, 59), 5), answered("b", rome(2, 9, 15), 5), answered("c", rome(2, 9, 45), 5)]

    report = compute(calls, start=rome(2, 9), end=rome(2, 10), interval=interval, by="total", as_of=rome(23, 12))

    offered = [row.kpis["offered"] for row in report.rows]
    assert offered == ([1, 1, 0, 1] if interval == "15m" else [2, 1])  # 09:14:59 | 09:15 | - | 09:45


def test_given_dimensions_when_grouped_then_keys_sorted_none_last_and_configured_queues_listed() -> None:
    calls = [
        answered("a", rome(2, 9, 0), 5, operator="op2"),
        answered("b", rome(2, 9, 5), 5, queue="vip", tier="specialist", operator="op1"),
        gave_up("c", rome(2, 9, 10), 30),  # nobody answered: key None by operator
    ]
    options = KpiOptions(queues={**RULES, "mobile": QueueRules()})

    by_queue = one_hour(calls, by="queue", options=options)
    by_tier = one_hour(calls, by="tier")
    by_operator = one_hour(calls, by="operator")

    assert by_queue.keys == ("general", "mobile", "vip")  # mobile: configured, no traffic
    assert [row.kpis["offered"] for row in by_queue.rows] == [2, 0, 1]
    assert by_tier.keys == ("general", "specialist")
    assert by_operator.keys == ("op1", "op2", None)
    assert [row.kpis["answered"] for row in by_operator.rows] == [1, 1, 0]
    assert by_queue.rows[0].kpis["occupancy"] is None  # operator time is not split by queue


def test_given_ivr_contacts_when_computed_then_containment_over_every_contact() -> None:
    contacts = [
        ivr_only("c1", rome(2, 9, 1), "contained"),
        ivr_only("c2", rome(2, 9, 2), "contained"),
        ivr_only("c3", rome(2, 9, 3), "abandoned_ivr"),
        answered("c4", rome(2, 9, 5), 5),  # started 09:04:30, went to an operator
    ]

    k = kpis(one_hour(contacts))

    assert (k["contacts"], k["contained"], k["ivr_containment"]) == (4, 2, pytest.approx(2 / 4))


def test_given_repeat_contacts_when_fcr_computed_then_resolved_repeated_and_pending() -> None:
    week = timedelta(days=7)
    start = rome(2, 0)
    contacts = [
        # customer X answered on Monday, calls again Thursday (within 7 days): not resolved
        answered("x1", rome(2, 9), 5, customer_id="X", caller="+39061"),
        ivr_only("x2", rome(5, 9), "abandoned_ivr", customer_id="X", caller="+39062"),  # another number, same customer
        # customer Y: next contact 8 days later, after the window: resolved
        answered("y1", rome(2, 10), 5, customer_id="Y"),
        ivr_only("y2", rome(10, 10, 0, 1), "contained", customer_id="Y"),
        # caller Z, no customer: contained, a repeat exactly 7 days later still counts (<= window)
        ivr_only("z1", rome(2, 11), "contained", caller="+39333"),
        ivr_only("z2", rome(2, 11) + week, "contained", caller="+39333"),
        # withheld number, no customer: nobody to follow, not counted
        ivr_only("w1", rome(2, 12), "contained"),
        # an abandoned contact is not a candidate
        gave_up("v1", rome(2, 13), 60, caller="+39444"),
    ]

    report = compute(contacts, start=start, end=rome(3, 0), interval="day", by="total", as_of=rome(23, 12))
    k = kpis(report)

    # x1 repeated (x2 3 days later, other number); y1 resolved (y2 8 days later); z1 repeated (7 days
    # to the second: start to start, inclusive); w1 and v1 are not candidates; nothing pending (as_of 23 Nov)
    assert (k["fcr_resolved"], k["fcr_repeated"], k["fcr_pending"]) == (1, 2, 0)
    assert k["fcr"] == pytest.approx(1 / 3)


def test_given_window_not_over_when_fcr_computed_then_pending_not_resolved() -> None:
    contacts = [
        ivr_only("p1", rome(2, 9), "contained", caller="+39555"),  # window ends 9 Nov 09:00, after as_of
        answered("p2", rome(2, 10), 5, caller="+39666"),
        ivr_only("p3", rome(4, 10), "contained", caller="+39666"),  # a repeat already seen: decided
    ]

    report = compute(
        contacts, start=rome(2, 0), end=rome(3, 0), interval="day", by="total", as_of=rome(5, 12), options=OPTIONS
    )
    k = kpis(report)

    assert (k["fcr_resolved"], k["fcr_repeated"], k["fcr_pending"], k["fcr"]) == (0, 1, 1, 0.0)


def test_given_operator_spans_when_hourly_then_clipped_at_bucket_edges_and_ringing_busy() -> None:
    spans = [
        AgentSpan(agent="op1", state="ready", started_at=rome(2, 7, 30), ended_at=rome(2, 8, 10)),  # 600 s from 08:00
        AgentSpan(agent="op1", state="ready", started_at=rome(2, 8, 50), ended_at=rome(2, 9, 10)),  # 600 | 600
        AgentSpan(agent="op1", state="on_call", started_at=rome(2, 9, 10), ended_at=rome(2, 9, 40)),  # 1800
        AgentSpan(agent="op1", state="wrap_up", started_at=rome(2, 9, 40), ended_at=rome(2, 9, 45)),  # 300
        AgentSpan(agent="op1", state="ringing", started_at=rome(2, 9, 45), ended_at=rome(2, 9, 46)),  # 60
        AgentSpan(agent="op1", state="not_ready", started_at=rome(2, 9, 46), ended_at=rome(2, 10, 10)),  # ignored
        AgentSpan(agent="op1", state="ready", started_at=rome(2, 10, 10)),  # open: until as_of 10:30, 1200 s
        AgentSpan(agent="op2", state="on_call", started_at=rome(2, 9, 30), ended_at=rome(2, 10, 30)),  # 1800 | 1800
        AgentSpan(agent="op2", state="logged_out", started_at=rome(2, 10, 30)),
    ]

    def hourly(by: Any) -> Report:
        return compute([], start=rome(2, 8), end=rome(2, 11), interval="60m", by=by, as_of=rome(2, 10, 30), spans=spans)

    by_operator, total = hourly("operator"), hourly("total")

    op1 = [row.kpis for row in by_operator.rows if row.key == "op1"]
    assert [(k["busy_seconds"], k["ready_seconds"]) for k in op1] == [(0, 1200), (2160, 600), (0, 1200)]
    assert [k["occupancy"] for k in op1] == [0.0, pytest.approx(2160 / 2760), 0.0]  # 1800 + 300 + 60 = 2160
    op2 = [row.kpis for row in by_operator.rows if row.key == "op2"]
    assert [k["occupancy"] for k in op2] == [None, 1.0, 1.0]  # 08:00: no time in either state
    assert [k["occupancy"] for k in (row.kpis for row in total.rows)] == [
        0.0,
        pytest.approx((2160 + 1800) / (2160 + 1800 + 600)),
        pytest.approx(1800 / (1800 + 1200)),
    ]


def test_given_estimates_when_computed_then_ewt_errors_over_answered_calls_with_an_estimate() -> None:
    calls = [
        answered("a", rome(2, 9, 0), 10, estimated_wait=30),  # +20: said 30, waited 10
        answered("b", rome(2, 9, 1), 30, estimated_wait=20),  # -10
        answered("c", rome(2, 9, 2), 40),  # no estimate
        gave_up("d", rome(2, 9, 3), 100, estimated_wait=60),  # abandoned: no actual wait to compare
    ]

    k = kpis(one_hour(calls))

    assert k["ewt_calls"] == 2
    assert k["ewt_mae"] == pytest.approx((20 + 10) / 2)
    assert k["ewt_bias"] == pytest.approx((20 - 10) / 2)  # positive: we over-announce


def test_given_paths_when_computed_then_transfer_over_answered_and_escalation_over_offered() -> None:
    transfer = [{"node": "general", "kind": "transfer", "digits": None, "note": "op1 -> queue vip", "at": "x"}]
    escalate = [{"node": "general", "kind": "escalate", "digits": None, "note": "after 30s ...", "at": "x"}]
    t, e = path_flags(transfer), path_flags(escalate)
    calls = [
        answered("a", rome(2, 9, 0), 5, transferred=t[0]),
        answered("b", rome(2, 9, 1), 5, escalated=e[1]),
        answered("c", rome(2, 9, 2), 5),
        answered("d", rome(2, 9, 3), 5),
        gave_up("e", rome(2, 9, 4), 40),
    ]

    k = kpis(one_hour(calls))

    assert (t, e, path_flags(None, outcome="transferred")) == ((True, False), (False, True), (True, False))
    assert (k["transferred"], k["transfer_rate"]) == (1, pytest.approx(1 / 4))
    assert (k["escalated"], k["escalation_rate"]) == (1, pytest.approx(1 / 5))


def test_given_surveys_when_computed_then_average_score_and_solved_share_with_their_own_counts() -> None:
    calls = [answered(c, rome(2, 9, i), 5) for i, c in enumerate("abcd")]
    surveys = [
        SurveyRow(contact_id="a", score=4, solved=True),
        SurveyRow(contact_id="b", score=2, solved=None),
        SurveyRow(contact_id="c", score=None, solved=False),
        SurveyRow(contact_id="unknown", score=1, solved=False),  # not a contact of the period
    ]

    k = kpis(one_hour(calls, surveys=surveys))

    assert (k["surveys"], k["survey_score"], k["survey_solved"]) == (3, (4 + 2) / 2, 1 / 2)


def test_given_complaints_when_computed_then_opened_in_period_and_overdue_as_of_today() -> None:
    def complaint(received: datetime, due: date, status: str, **extra: Any) -> ComplaintRow:
        return ComplaintRow(contact_id=None, received_at=received, due_on=due, status=status, **extra)

    complaints = [
        complaint(rome(2, 9, 10), date(2026, 11, 20), "in_progress"),  # due before 23 Nov, open: overdue
        complaint(rome(2, 9, 20), date(2026, 11, 20), "resolved", resolved_at=rome(19, 9)),
        complaint(rome(2, 9, 30), date(2026, 11, 23), "received"),  # due today: not yet overdue
        complaint(rome(2, 10, 30), date(2026, 11, 20), "received"),  # outside the hour
    ]

    k = kpis(one_hour([], complaints=complaints))

    assert (k["complaints_opened"], k["complaints_overdue"]) == (3, 1)


def test_given_complaint_of_a_contact_when_by_queue_then_counted_under_the_contacts_queue() -> None:
    calls = [answered("a", rome(2, 9, 0), 5, queue="vip")]
    complaints = [
        ComplaintRow(contact_id="a", received_at=rome(2, 9, 5), due_on=date(2026, 12, 1), status="received"),
        ComplaintRow(contact_id=None, received_at=rome(2, 9, 6), due_on=date(2026, 12, 1), status="received"),
    ]

    report = one_hour(calls, by="queue", complaints=complaints)

    assert [(row.key, row.kpis["complaints_opened"]) for row in report.rows] == [("general", 0), ("vip", 1), (None, 1)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sl_definition": "all"}, "sl_definition"),
        ({"fcr_window": timedelta(0)}, "fcr_window"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_given_bad_options_when_built_then_value_error_names_the_option(options: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KpiOptions(**options)


def test_given_naive_or_reversed_period_when_computed_then_value_error() -> None:
    with pytest.raises(ValueError, match="naive"):
        compute([], start=datetime(2026, 11, 2), end=rome(3, 0), interval="day", by="total", as_of=rome(23, 0))
    with pytest.raises(ValueError, match="after"):
        compute([], start=rome(3, 0), end=rome(2, 0), interval="day", by="total", as_of=rome(23, 0))
    with pytest.raises(ValueError, match="interval"):
        compute([], start=rome(2, 0), end=rome(3, 0), interval="week", by="total", as_of=rome(23, 0))  # type: ignore[arg-type]


def test_given_buckets_when_stepping_over_october_dst_then_each_start_is_one_hour_apart() -> None:
    hours = Buckets("60m", ROME)
    first = hours.start_of(datetime(2026, 10, 24, 22, 0, tzinfo=UTC).timestamp())  # local midnight

    starts = [first]
    for _ in range(4):
        starts.append(hours.next_start(starts[-1]))

    assert [b - first for b in starts] == [0, 3600, 7200, 10800, 14400]
    assert [hours.local(b).strftime("%H%z") for b in starts] == ["00+0200", "01+0200", "02+0200", "02+0100", "03+0100"]


def test_given_configured_queues_when_options_built_then_rules_and_tiers_come_from_the_specs() -> None:
    from acd.queues import QueueSpec, ServiceLevel

    spec = QueueSpec(
        name="VIP", tier="enterprise", calendar="customers", service_level=ServiceLevel(threshold=15), short_abandon=3
    )
    options = KpiOptions.from_queues({"vip": spec}, sl_definition="offered")

    assert options.rules_for("vip") == QueueRules(sl_threshold=15, short_abandon=3, wrapup=10, tier="enterprise")
    assert options.rules_for("gone") == options.rules_for(None) == QueueRules()
    report = one_hour([answered("a", rome(2, 9), 5)], by="tier", options=options)
    assert report.keys == ("enterprise", "general")  # enterprise: configured, quiet


def test_given_stored_record_when_converted_then_path_summarised_into_flags() -> None:
    from contacts.records import ContactRecord, make_step

    record = ContactRecord(
        id="c-1",
        channel_id="1.1",
        caller="+39061",
        dialled="800",
        language="it",
        started_at=rome(2, 9),
        queued_at=rome(2, 9, 1),
        queue="general",
        outcome="answered",
        estimated_wait=40,
        ivr_path=(
            make_step("main", "menu", "1", at=rome(2, 9)),
            make_step("general", "escalate", None, at=rome(2, 9, 2)),
        ),
    )

    row = ContactRow.from_record(record)

    assert (row.id, row.queued_at, row.queue, row.estimated_wait) == ("c-1", rome(2, 9, 1), "general", 40)
    assert (row.transferred, row.escalated) == (False, True)
