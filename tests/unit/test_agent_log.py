"""The operators' state history (``agent_states``) on SQLite and PostgreSQL (``store`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from acd.agents import AgentState, NotReadyReason
from acd.live import AgentChange
from contacts import AgentStateLog, ContactStore
from contacts.agent_log import _CLOSE_UNLESS_SAME, _CURRENT
from contacts.models import AgentStateSpan

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def at(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp()


async def spans(store: ContactStore) -> list[tuple[str, str, str | None, str | None, float, float | None]]:
    async with store.sessions() as session:
        rows = (await session.execute(select(AgentStateSpan).order_by(AgentStateSpan.id))).scalars().all()
    return [
        (
            row.agent,
            row.state,
            row.reason,
            row.call_id,
            (row.started_at - T0).total_seconds(),
            None if row.ended_at is None else (row.ended_at - T0).total_seconds(),
        )
        for row in rows
    ]


async def test_given_a_working_day_when_states_change_then_one_closed_span_each_and_wrapup_end_on_contact(
    store: ContactStore,
) -> None:
    await store.start_contact(
        contact_id="c1", channel_id="c1", caller=None, dialled="803160", language="it", started_at=T0
    )
    log = AgentStateLog(store.sessions, node="roma-a")
    changes = [
        AgentChange("op1", AgentState.NOT_READY, NotReadyReason.BREAK, None, at(0)),
        AgentChange("op1", AgentState.READY, None, None, at(10)),
        AgentChange("op1", AgentState.READY, None, None, at(12)),  # a re-registration: no new span
        AgentChange("op1", AgentState.RINGING, None, "c1", at(40)),
        AgentChange("op1", AgentState.ON_CALL, None, "c1", at(43)),
        AgentChange("op1", AgentState.WRAP_UP, None, None, at(163)),
        AgentChange("op2", AgentState.READY, None, None, at(170)),
        AgentChange("op1", AgentState.READY, None, None, at(180)),
    ]
    log.start()
    for change in changes:
        log.note(change)
    await log.close()

    assert await spans(store) == [
        ("op1", "not_ready", "break", None, 0.0, 10.0),
        ("op1", "ready", None, None, 10.0, 40.0),
        ("op1", "ringing", None, "c1", 40.0, 43.0),
        ("op1", "on_call", None, "c1", 43.0, 163.0),
        ("op1", "wrap_up", None, None, 163.0, 180.0),
        ("op2", "ready", None, None, 170.0, None),
        ("op1", "ready", None, None, 180.0, None),
    ]
    assert (log.written, log.queue.failed, log.queue.dropped) == (7, 0, 0)
    record = await store.get("c1")
    assert record is not None and record.wrapup_ended_at == T0 + timedelta(seconds=180)


async def test_given_another_process_continues_the_history_then_it_closes_the_open_span(store: ContactStore) -> None:
    first, second = AgentStateLog(store.sessions, node="a"), AgentStateLog(store.sessions, node="b")
    assert await first.record(AgentChange("op1", AgentState.READY, None, None, at(0)))
    assert not await second.record(AgentChange("op1", AgentState.READY, None, None, at(5))), "same state: a repeat"
    assert await second.record(AgentChange("op1", AgentState.NOT_READY, NotReadyReason.LUNCH, None, at(60)))

    assert await spans(store) == [
        ("op1", "ready", None, None, 0.0, 60.0),
        ("op1", "not_ready", "lunch", None, 60.0, None),
    ]


async def test_given_a_long_history_when_a_state_changes_then_only_the_open_spans_are_searched(
    store: ContactStore,
) -> None:
    """Each state change closes the operator's open span: Asterisk-fed operators change state
    four times a call, so that search goes through the index of open spans (one row each), not
    through every span the operator ever had, which grows every day (``ix_agent_states_open``)."""
    closed = [
        {"agent": f"op{i % 20}", "state": "ready", "started_at": T0 + timedelta(seconds=i), "ended_at": T0}
        for i in range(4_000)
    ]
    opened = [{"agent": f"op{i}", "state": "ready", "started_at": T0 + timedelta(hours=2)} for i in range(20)]
    async with store.sessions.begin() as session:
        await session.execute(insert(AgentStateSpan), closed + opened)
    sqlite = store.url.startswith("sqlite")
    binds = {"b_agent": "op1", "b_state": "on_call", "b_reason": None, "b_call": "c1", "ended_at": T0}
    async with store.sessions() as session:
        connection = await session.connection()
        await connection.exec_driver_sql("ANALYZE" if sqlite else "ANALYZE agent_states")
        plans = []
        for statement in (_CLOSE_UNLESS_SAME, _CURRENT):  # what the log runs, with its parameters
            compiled = statement.compile(dialect=connection.dialect, column_keys=["ended_at"])
            values = compiled.construct_params(binds)
            ordered = tuple(values[name] for name in compiled.positiontup or ())
            explain = ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + str(compiled)
            rows = await connection.exec_driver_sql(explain, ordered)
            plans.append(" ".join(str(row[-1]) for row in rows))
        await session.rollback()
    assert all("ix_agent_states_open" in plan for plan in plans), plans
