"""``reports.load_report`` on SQLite and PostgreSQL (``store`` fixture): what it reads and what not.

The seeded Monday, 2 Nov 2026 (CET, UTC+1), report 09:00-11:00 in Rome, hourly; queue general
(SL 20 s, short abandon 5 s) and vip (SL 10 s, wrap-up 30 s):

    early    started 08:59:40 (before the period), queued 09:00:10, answered 09:00:25, talk to
             09:02:25, wrap-up to 09:02:45, estimate 30 s, one escalation; survey 5/solved
    abandon  queued 09:10:30, hung up 09:11:30 (60 s); a complaint, due 20 Nov, still open
    short    queued 09:20:30, hung up 09:20:32 (short abandon)
    vip      queued 10:05:20, answered 10:05:50 (30 s > 10 s), ended 10:08:50, no talk or wrap-up
             end (old row: talk to ended_at, wrap-up 30 s assumed), transferred; customer cust2
    ivr      started 10:30, contained, caller +39063; the same caller again at 11:30 (a repeat)
    outside  a call the day before and one on 20 Nov, neither in the period
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contacts import ContactStore
from contacts.models import AgentStateSpan, Complaint, Contact, Survey
from reports import KpiOptions, QueueRules, Report, load_report

ROME = ZoneInfo("Europe/Rome")
OPTIONS = KpiOptions(
    queues={
        "general": QueueRules(sl_threshold=20, short_abandon=5, wrapup=10),
        "vip": QueueRules(sl_threshold=10, short_abandon=0, wrapup=30),
    }
)
START, END = datetime(2026, 11, 2, 9, tzinfo=ROME), datetime(2026, 11, 2, 11, tzinfo=ROME)


def rome(hour: int, minute: int = 0, second: int = 0, *, day: int = 2) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=ROME)


def step(kind: str) -> dict[str, Any]:
    return {"node": "general", "kind": kind, "digits": None, "note": None, "at": rome(9).isoformat()}


def contact(cid: str, started: datetime, **values: Any) -> Contact:
    base: dict[str, Any] = {"channel_id": cid, "caller": None, "dialled": "800", "language": "it", "ivr_path": []}
    return Contact(id=cid, started_at=started, data={}, **{**base, **values})


async def seed(store: ContactStore) -> None:
    async with store.sessions.begin() as session:
        session.add_all(
            [
                contact(
                    "early",
                    rome(8, 59, 40),
                    queued_at=rome(9, 0, 10),
                    answered_at=rome(9, 0, 25),
                    talk_ended_at=rome(9, 2, 25),
                    wrapup_ended_at=rome(9, 2, 45),
                    ended_at=rome(9, 2, 40),
                    queue="general",
                    tier="general",
                    operator="op1",
                    outcome="answered",
                    customer_id="cust1",
                    caller="+39061",
                    estimated_wait=30,
                    ivr_path=[step("queue"), step("escalate"), step("answered")],
                ),
                contact(
                    "abandon",
                    rome(9, 10),
                    queued_at=rome(9, 10, 30),
                    ended_at=rome(9, 11, 30),
                    queue="general",
                    tier="general",
                    outcome="abandoned_queue",
                    caller="+39062",
                ),
                contact(
                    "short",
                    rome(9, 20),
                    queued_at=rome(9, 20, 30),
                    ended_at=rome(9, 20, 32),
                    queue="general",
                    tier="general",
                    outcome="abandoned_queue",
                ),
                contact(
                    "vip",
                    rome(10, 5),
                    queued_at=rome(10, 5, 20),
                    answered_at=rome(10, 5, 50),
                    ended_at=rome(10, 8, 50),
                    queue="vip",
                    tier="specialist",
                    operator="op2",
                    outcome="answered",
                    customer_id="cust2",
                    ivr_path=[step("queue"), step("answered"), step("transfer")],
                ),
                contact("ivr", rome(10, 30), ended_at=rome(10, 31), outcome="contained", caller="+39063"),
                contact("again", rome(11, 30), ended_at=rome(11, 31), outcome="contained", caller="+39063"),
                contact("yesterday", rome(10, day=1), queued_at=rome(10, 0, 5, day=1), queue="general"),
                contact("later", rome(10, day=20), customer_id="cust2", outcome="contained"),
            ]
        )
        await session.flush()  # the surveys' foreign key needs the contacts first
        session.add(Survey(contact_id="early", score=5, solved=True, recorded_at=rome(9, 3)))
        session.add(
            Complaint(
                number="100000001",
                category="payments",
                status="received",
                channel="ivr",
                contact_id="abandon",
                received_at=rome(9, 15),
                due_on=date(2026, 11, 20),
                updated_at=rome(9, 15),
            )
        )
        spans = [
            ("op1", "ready", rome(8, 30), rome(9, 0, 25)),
            ("op1", "on_call", rome(9, 0, 25), rome(9, 2, 25)),
            ("op1", "wrap_up", rome(9, 2, 25), rome(9, 2, 45)),
            ("op1", "ready", rome(9, 2, 45), rome(10, 30)),
            ("op1", "logged_out", rome(10, 30), None),
            ("op2", "ready", rome(10, 50), None),
            ("op3", "ready", rome(7), rome(8)),  # before the period: not read
        ]
        session.add_all(
            AgentStateSpan(agent=agent, state=state, started_at=begin, ended_at=end)
            for agent, state, begin, end in spans
        )


def cells(report: Report, *names: str) -> dict[tuple[str, str | None], tuple[Any, ...]]:
    return {(f"{row.start:%H}", row.key): tuple(row.kpis[n] for n in names) for row in report.rows}


async def test_given_seeded_day_when_loaded_by_queue_then_kpis_from_the_rows_in_range(store: ContactStore) -> None:
    await seed(store)

    report = await load_report(
        store.sessions, start=START, end=END, interval="60m", by="queue", options=OPTIONS, as_of=rome(12, day=23)
    )

    assert report.keys == ("general", "vip", None)
    queue_kpis = cells(report, "offered", "answered", "abandoned", "short_abandoned", "service_level", "asa", "aht")
    assert queue_kpis[("09", "general")] == (3, 1, 1, 1, 1.0, 15.0, 140.0)  # early: wait 15, talk 120 + wrap 20
    assert queue_kpis[("10", "vip")] == (1, 1, 0, 0, 0.0, 30.0, 180.0 + 30.0)  # talk to ended_at + vip's 30 s
    assert queue_kpis[("10", "general")] == (0, 0, 0, 0, None, None, None)
    extras = cells(report, "escalated", "transferred", "ewt_mae", "ewt_bias", "surveys", "survey_score")
    assert extras[("09", "general")] == (1, 0, 15.0, 15.0, 1, 5.0)  # said 30 s, waited 15 s
    assert extras[("10", "vip")][:2] == (0, 1)
    complaints = cells(report, "complaints_opened", "complaints_overdue")
    assert complaints[("09", "general")] == (1, 1)  # the abandoned caller's complaint, due 20 Nov
    # contacts started in the period: abandon and short at 09 (early started 08:59:40), vip and ivr at 10
    contact_kpis = cells(report, "contacts", "contained", "ivr_containment", "fcr_resolved", "fcr_repeated")
    assert contact_kpis[("09", "general")] == (2, 0, 0.0, 0, 0)
    assert contact_kpis[("10", "vip")] == (1, 0, 0.0, 1, 0)  # cust2's next contact is 18 days later
    assert contact_kpis[("10", None)] == (1, 1, 1.0, 0, 1)  # +39063 called again at 11:30
    assert all(row.kpis["occupancy"] is None for row in report.rows)


async def test_given_seeded_day_when_loaded_in_total_then_occupancy_from_clipped_spans(store: ContactStore) -> None:
    await seed(store)

    report = await load_report(
        store.sessions, start=START, end=END, interval="60m", by="total", options=OPTIONS, as_of=rome(12, day=23)
    )

    nine, ten = (row.kpis for row in report.rows)
    # 09: op1 busy 120 + 20, ready 25 + (3600 - 165); 10: op1 ready 1800, op2 ready 600 (open, to the end)
    assert (nine["busy_seconds"], nine["ready_seconds"]) == (140.0, 25.0 + 3435.0)
    assert nine["occupancy"] == pytest.approx(140 / 3600)
    assert (ten["busy_seconds"], ten["ready_seconds"], ten["occupancy"]) == (0.0, 2400.0, 0.0)
    assert (nine["offered"], ten["offered"], nine["contacts"], ten["contacts"]) == (3, 1, 2, 2)


async def test_given_report_as_of_mid_period_when_loaded_then_later_rows_unread_and_fcr_pending(
    store: ContactStore,
) -> None:
    await seed(store)

    report = await load_report(
        store.sessions, start=START, end=END, interval="60m", by="total", options=OPTIONS, as_of=rome(10, 40)
    )

    ten = report.rows[1].kpis
    # the repeat at 11:30 is not known yet: ivr and vip are pending; op2's span starts after 10:40
    assert (ten["fcr_resolved"], ten["fcr_repeated"], ten["fcr_pending"]) == (0, 0, 2)
    assert (ten["ready_seconds"], ten["busy_seconds"]) == (1800.0, 0.0)
    # a clock instead of as_of: the same report
    same = await load_report(
        store.sessions, start=START, end=END, interval="60m", by="total", options=OPTIONS, clock=lambda: rome(10, 40)
    )
    assert same == report


async def test_given_empty_database_when_loaded_then_zero_rows_per_bucket(store: ContactStore) -> None:
    report = await load_report(
        store.sessions,
        start=START,
        end=START + timedelta(days=1),
        interval="day",
        by="operator",
        as_of=datetime(2026, 11, 23, tzinfo=UTC),
    )

    assert report.rows == ()  # no key at all by operator: no rows (by total there would be one per day)
    total = await load_report(
        store.sessions, start=START, end=END, interval="60m", by="total", as_of=datetime(2026, 11, 23, tzinfo=UTC)
    )
    assert [row.kpis["offered"] for row in total.rows] == [0, 0]


async def test_given_naive_period_when_loaded_then_value_error(store: ContactStore) -> None:
    with pytest.raises(ValueError, match="aware"):
        await load_report(store.sessions, start=datetime(2026, 11, 2), end=END, interval="60m", by="total")
