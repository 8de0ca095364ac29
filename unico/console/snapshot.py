"""The wallboard's numbers, built from data passed in: no Redis, no database, no clock.

Theory of operation
-------------------
``build_snapshot`` takes what the live adapter read (the config, every operator's live state,
the calls waiting, today's counts per queue from the contact records, the office-hours state of
each area) and the time, and returns one frozen ``Wallboard``. Everything here is arithmetic, so
the unit tests hand-make the inputs and jump the time.

Definitions (the page states them too):

* **waiting**: calls in the queue's line now (not yet offered; a call ringing an operator has
  left the line). **longest wait**: seconds since the earliest of them arrived.
* **service level today** = calls answered within the queue's ``service_level.threshold``
  seconds of entering the queue / calls answered, over today's contacts (Europe/Rome day): the
  reports' default definition (docs/reports.md). Short abandons (callers gone in less than
  ``short_abandon`` seconds) are counted apart and are not in the abandoned figure. A tier's
  service level adds up its queues' counts, each against its own threshold. No call answered
  yet: no service level (``None``), not 100 %.
* **operators by state**: for a queue, the operators who could take one of its calls at some
  step of its escalation (its tier, and the skill levels of some step); overflow to other tiers
  is not counted. For a tier, every operator of that tier. An operator Redis does not know is
  logged out.
* **office hours per area** (a calendar of ``dialplan/hours.yaml``): open, closing soon (closes
  within ``closing_soon``, 15 minutes by default), or closed, with the time of the next change
  (``area_status``, which also works out when that is).

The **floor** (``build_floor``) is the supervisors' panel under the numbers: every operator with
state, reason, time in state and current call; the conversations in progress (what
``POST /api/calls/{id}/monitor`` accepts); the calls waiting, per queue. It names callers, so only
supervisors and admins receive it (``unico.console.live.Watch.floor``), and even then the numbers
are masked (``contacts.mask_number``): the panel needs to tell calls apart, not to call back.

Example::

    board = build_snapshot(config, agents, waiting, today, now, areas=areas)
    json.dumps(board.to_json_dict())
    floor = build_floor(config, agents, waiting, details, now)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from acd.agents import Agent, AgentState
from acd.queues import TIERS, QueueSpec, requirements_at
from acd.roster import OperatorSpec
from acd.routing import WaitingCall
from contacts.phones import mask_number
from ivr.config import IvrConfig
from ivr.hours import Calendar

#: the states the wallboard counts, in the order it shows them
OPERATOR_STATES: tuple[str, ...] = (
    AgentState.READY.value,
    AgentState.RINGING.value,
    AgentState.ON_CALL.value,
    AgentState.WRAP_UP.value,
    AgentState.NOT_READY.value,
    AgentState.LOGGED_OUT.value,
)
CLOSING_SOON = timedelta(minutes=15)
#: the contact centre's day: "today" starts at midnight here
ROME: Final = ZoneInfo("Europe/Rome")
#: how far ahead ``next_change`` looks for the next opening or closing (a long closure shows none)
HORIZON_DAYS = 14

SL_DEFINITION = (
    "Service level today = calls answered within the queue's threshold of entering the queue / calls answered, "
    "since midnight (Europe/Rome). Short abandons (caller gone in less than the queue's short-abandon seconds) "
    "are counted apart and left out of the abandoned figure."
)

AreaState = Literal["open", "closing_soon", "closed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCounts:
    """Today's contacts of one queue, from the contact records (``unico.console.today``)."""

    answered: int = 0
    answered_in_threshold: int = 0
    abandoned: int = 0
    short_abandoned: int = 0

    def __add__(self, other: QueueCounts) -> QueueCounts:
        return QueueCounts(
            answered=self.answered + other.answered,
            answered_in_threshold=self.answered_in_threshold + other.answered_in_threshold,
            abandoned=self.abandoned + other.abandoned,
            short_abandoned=self.short_abandoned + other.short_abandoned,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LineStats:
    """One queue's (or one tier's) row on the wallboard."""

    name: str
    title: str
    tier: str
    waiting: int
    longest_wait: float
    today: QueueCounts
    service_level: float | None
    #: seconds and share the service level aims at; None for a tier whose queues differ
    sl_threshold: int | None
    sl_target: float | None
    operators: Mapping[str, int]
    queues: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "tier": self.tier,
            "waiting": self.waiting,
            "longest_wait": round(self.longest_wait, 1),
            "answered": self.today.answered,
            "answered_in_threshold": self.today.answered_in_threshold,
            "abandoned": self.today.abandoned,
            "short_abandoned": self.today.short_abandoned,
            "service_level": None if self.service_level is None else round(self.service_level, 4),
            "sl_threshold": self.sl_threshold,
            "sl_target": self.sl_target,
            "operators": dict(self.operators),
            "queues": list(self.queues),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaStatus:
    """Whether operators are on duty in an area now, and until when."""

    name: str
    state: AreaState
    #: the next opening or closing, within ``HORIZON_DAYS``; None if there is none that soon
    next_change: datetime | None
    #: why it is closed when that is not the weekly hours: the holiday's or the closure's name
    note: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "next_change": self.next_change.isoformat() if self.next_change is not None else None,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Wallboard:
    at: datetime
    day: date
    queues: tuple[LineStats, ...]
    tiers: tuple[LineStats, ...]
    areas: tuple[AreaStatus, ...]
    definitions: Mapping[str, str] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "type": "wallboard",
            "at": self.at.isoformat(),
            "day": self.day.isoformat(),
            "queues": [q.to_json_dict() for q in self.queues],
            "tiers": [t.to_json_dict() for t in self.tiers],
            "areas": [a.to_json_dict() for a in self.areas],
            "definitions": dict(self.definitions),
        }


def day_bounds(now: datetime, zone: ZoneInfo = ROME) -> tuple[datetime, datetime]:
    """Start and end (aware) of the local day holding ``now``: 23 or 25 hours on DST days."""
    day = now.astimezone(zone).date()
    return datetime.combine(day, time(0), tzinfo=zone), datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


# --- office hours -------------------------------------------------------------------------------


def _local_instant(calendar: Calendar, day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=calendar.zone)


def _boundaries(calendar: Calendar, now: datetime, days: int) -> list[datetime]:
    """Every instant at which ``calendar.is_open`` may change, after ``now``, in order.

    Between two of these the answer is constant: the weekly ranges start and end here, a holiday
    starts and ends at midnight, and closures start and end where they say.
    """
    first = calendar.local(now).date()
    found: set[datetime] = set()
    for offset in range(days + 1):
        day = first + timedelta(days=offset)
        found.add(_local_instant(calendar, day, time(0)))
        for start, end in calendar.weekly[day.weekday()]:
            found.add(_local_instant(calendar, day, start))
            # a range written up to 24:00 ends at the next midnight
            found.add(
                _local_instant(calendar, day + timedelta(days=1), time(0))
                if end == time.max
                else _local_instant(calendar, day, end)
            )
    for closure in calendar.closures:
        for edge in (closure.start, closure.end):
            found.add(edge if edge.tzinfo is not None else edge.replace(tzinfo=calendar.zone))
    horizon = now + timedelta(days=days)
    return sorted(instant for instant in found if now < instant <= horizon)


def next_change(calendar: Calendar, now: datetime, *, horizon_days: int = HORIZON_DAYS) -> datetime | None:
    """When ``calendar.is_open`` next differs from its answer at ``now`` (aware), or None within
    ``horizon_days``.

    ``ivr.hours.Calendar`` only answers "open now?"; the candidate instants are tried in order and
    the first that answers differently wins, so the holiday rules stay in one place (each answer
    builds the year's holiday table: about a millisecond; the first change is usually the first or
    second candidate).

    Example::

        next_change(customers, datetime(2026, 3, 2, 19, 50, tzinfo=ROME))   # 2026-03-02 20:00+01:00
    """
    is_open = calendar.is_open(now)
    for instant in _boundaries(calendar, now, horizon_days):
        if calendar.is_open(instant) != is_open:
            return instant
    return None


def area_status(name: str, calendar: Calendar, now: datetime, *, closing_soon: timedelta = CLOSING_SOON) -> AreaStatus:
    """Open, closing soon or closed at ``now``, with the next change.

    Example::

        area_status("customers", calendar, now).state    # 'closing_soon' at 19:50 on a Monday
    """
    change = next_change(calendar, now)
    if calendar.is_open(now):
        # in UTC: between two times of one zone Python subtracts wall clocks, wrong across a DST change
        soon = change is not None and change.astimezone(UTC) - now.astimezone(UTC) <= closing_soon
        return AreaStatus(name=name, state="closing_soon" if soon else "open", next_change=change)
    local = calendar.local(now)
    closure = calendar.closure_at(now)
    note = calendar.holiday_name(local.date()) or (closure.reason or "closure" if closure is not None else None)
    return AreaStatus(name=name, state="closed", next_change=change, note=note)


def area_statuses(
    calendars: Mapping[str, Calendar], now: datetime, *, closing_soon: timedelta = CLOSING_SOON
) -> tuple[AreaStatus, ...]:
    return tuple(
        area_status(name, calendar, now, closing_soon=closing_soon) for name, calendar in sorted(calendars.items())
    )


# --- queues and tiers ---------------------------------------------------------------------------


def eligible(operator: OperatorSpec, queue: QueueSpec) -> bool:
    """True if the operator could take one of the queue's calls at some step of its escalation."""
    if queue.tier not in operator.tiers:
        return False
    moments = [0.0, *(float(step.after_seconds) for step in queue.escalation)]
    return any(operator.has_skills(requirements_at(queue, moment).skills) for moment in moments)


def queue_members(config: IvrConfig, queue: str) -> tuple[str, ...]:
    """The operators counted for ``queue`` on the wallboard (``eligible``), in roster order."""
    spec = config.queues[queue]
    return tuple(op_id for op_id, op in config.operators.items() if eligible(op, spec))


def all_queue_members(config: IvrConfig) -> dict[str, tuple[str, ...]]:
    """``queue_members`` of every queue: worth keeping while the config stays the same (a
    thousand operators and twenty queues are tens of thousands of skill checks)."""
    return {name: queue_members(config, name) for name in config.queues}


def _states(agent_ids: Iterable[str], agents: Mapping[str, Agent]) -> dict[str, int]:
    counts = dict.fromkeys(OPERATOR_STATES, 0)
    for agent_id in agent_ids:
        agent = agents.get(agent_id)
        counts[agent.state.value if agent is not None else AgentState.LOGGED_OUT.value] += 1
    return counts


def _tier_order(tier: str) -> tuple[int, str]:
    """general, specialist, enterprise: the order calls escalate in."""
    return (TIERS.index(tier) if tier in TIERS else len(TIERS), tier)


def _service_level(counts: QueueCounts) -> float | None:
    return counts.answered_in_threshold / counts.answered if counts.answered else None


def _same(values: Iterable[Any]) -> Any:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def build_snapshot(
    config: IvrConfig,
    agents: Mapping[str, Agent],
    waiting: Iterable[WaitingCall],
    today: Mapping[str, QueueCounts],
    now: datetime,
    *,
    areas: Iterable[AreaStatus] | None = None,
    members: Mapping[str, Sequence[str]] | None = None,
    closing_soon: timedelta = CLOSING_SOON,
) -> Wallboard:
    """The wallboard at ``now`` (aware): one row per queue and per tier (tiers in escalation order,
    queues by tier, then name), and the areas' hours.

    ``agents`` maps operator ids to their live state (missing: logged out); ``waiting`` are the
    calls in the lines (``LiveState.snapshot_waiting``), their ``enqueued_at`` in seconds of the
    same clock as ``now.timestamp()``; ``today`` maps queue names to today's counts. ``areas``
    and ``members`` (``queue_members``) may be given when the caller caches them, else they are
    worked out here.

    Example::

        board = build_snapshot(config, {"op1001": agent}, [], {}, now)
        board.queues[0].operators["ready"]
    """
    stamp = now.timestamp()
    lines: dict[str, list[WaitingCall]] = {}
    for call in waiting:
        if call.queue in config.queues:
            lines.setdefault(call.queue, []).append(call)

    queue_rows: list[LineStats] = []
    for name, spec in sorted(config.queues.items(), key=lambda item: (_tier_order(item[1].tier), item[0])):
        line = lines.get(name, [])
        counts = today.get(name, QueueCounts())
        eligible_ids = members[name] if members is not None and name in members else queue_members(config, name)
        queue_rows.append(
            LineStats(
                name=name,
                title=spec.name,
                tier=spec.tier,
                waiting=len(line),
                longest_wait=max((max(0.0, stamp - c.enqueued_at) for c in line), default=0.0),
                today=counts,
                service_level=_service_level(counts),
                sl_threshold=spec.service_level.threshold,
                sl_target=spec.service_level.target,
                operators=_states(eligible_ids, agents),
            )
        )

    tier_rows: list[LineStats] = []
    tiers = sorted(
        {row.tier for row in queue_rows} | {t for op in config.operators.values() for t in op.tiers}, key=_tier_order
    )
    for tier in tiers:
        rows = [row for row in queue_rows if row.tier == tier]
        counts = sum((row.today for row in rows), QueueCounts())
        staff = [op_id for op_id, op in config.operators.items() if tier in op.tiers]
        tier_rows.append(
            LineStats(
                name=tier,
                title=tier,
                tier=tier,
                waiting=sum(row.waiting for row in rows),
                longest_wait=max((row.longest_wait for row in rows), default=0.0),
                today=counts,
                service_level=_service_level(counts),
                sl_threshold=_same(row.sl_threshold for row in rows),
                sl_target=_same(row.sl_target for row in rows),
                operators=_states(staff, agents),
                queues=tuple(row.name for row in rows),
            )
        )

    area_rows = tuple(areas) if areas is not None else area_statuses(config.calendars, now, closing_soon=closing_soon)
    return Wallboard(
        at=now,
        day=now.astimezone(ROME).date(),
        queues=tuple(queue_rows),
        tiers=tuple(tier_rows),
        areas=area_rows,
        definitions={
            "service_level": SL_DEFINITION,
            "closing_soon": f"closes within {int(closing_soon.total_seconds() // 60)} minutes",
            "operators": "operators who could take the queue's calls (its tier, skill levels of some escalation step)",
        },
    )


# --- the floor: the supervisors' panel -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDetails:
    """What the contact record says of a live call (``unico.console.today.call_details``)."""

    queue: str | None = None
    #: the raw number: masked before it leaves ``build_floor``
    caller: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorRow:
    id: str
    name: str
    site: str
    state: str
    reason: str | None
    since: float | None
    #: seconds in the current state at the snapshot's time (None: Redis never saw them)
    in_state: float | None
    registered: bool
    call_id: str | None
    queue: str | None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "site": self.site,
            "state": self.state,
            "reason": self.reason,
            "since": self.since,
            "in_state": None if self.in_state is None else round(self.in_state, 1),
            "registered": self.registered,
            "call_id": self.call_id,
            "queue": self.queue,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkingRow:
    call_id: str
    operator: str
    operator_name: str
    queue: str | None
    caller: str
    #: seconds since the operator answered
    talking: float

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "operator": self.operator,
            "operator_name": self.operator_name,
            "queue": self.queue,
            "caller": self.caller,
            "talking": round(self.talking, 1),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingRow:
    call_id: str
    queue: str
    priority: int
    caller: str
    waited: float

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "queue": self.queue,
            "priority": self.priority,
            "caller": self.caller,
            "waited": round(self.waited, 1),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Floor:
    """The supervisors' panel: operators, conversations, waiting calls, and who may monitor."""

    operators: tuple[OperatorRow, ...]
    talking: tuple[TalkingRow, ...]
    waiting: tuple[WaitingRow, ...]
    #: the roster's supervisors (softphone id, name): whose phone a monitor request rings
    supervisors: tuple[tuple[str, str], ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "operators": [row.to_json_dict() for row in self.operators],
            "talking": [row.to_json_dict() for row in self.talking],
            "waiting": [row.to_json_dict() for row in self.waiting],
            "supervisors": [{"id": sup_id, "name": name} for sup_id, name in self.supervisors],
        }


def held_calls(agents: Mapping[str, Agent]) -> dict[str, str]:
    """Call id -> operator id of every call an operator holds (ringing, talking, wrap-up)."""
    return {agent.call_id: agent_id for agent_id, agent in agents.items() if agent.call_id}


def build_floor(
    config: IvrConfig,
    agents: Mapping[str, Agent],
    waiting: Iterable[WaitingCall],
    details: Mapping[str, CallDetails],
    now: datetime,
) -> Floor:
    """The floor at ``now`` (aware), from the same reads as ``build_snapshot`` plus ``details``
    (queue and caller of the calls, by call id; a call without details shows no queue and
    ``***``). Operators in roster order, conversations longest first, waiting calls by queue
    then line order. ``since`` and ``enqueued_at`` are seconds of the clock of ``now.timestamp()``.

    Example::

        floor = build_floor(config, {"op1001": agent}, waiting, {"c-1": CallDetails(queue="general")}, now)
        floor.talking[0].caller      # '+39 333 ***4567'
    """
    stamp = now.timestamp()
    rows: list[OperatorRow] = []
    talking: list[TalkingRow] = []
    for op_id, spec in config.operators.items():
        agent = agents.get(op_id)
        call = details.get(agent.call_id) if agent is not None and agent.call_id else None
        rows.append(
            OperatorRow(
                id=op_id,
                name=spec.name,
                site=spec.site,
                state=agent.state.value if agent is not None else AgentState.LOGGED_OUT.value,
                reason=agent.reason.value if agent is not None and agent.reason is not None else None,
                since=agent.since if agent is not None else None,
                in_state=max(0.0, stamp - agent.since) if agent is not None else None,
                registered=agent.registered if agent is not None else False,
                call_id=agent.call_id if agent is not None else None,
                queue=call.queue if call is not None else None,
            )
        )
        # only a conversation in progress can be monitored (wrap-up keeps the id of a call over)
        if agent is not None and agent.state is AgentState.ON_CALL and agent.call_id:
            talking.append(
                TalkingRow(
                    call_id=agent.call_id,
                    operator=op_id,
                    operator_name=spec.name,
                    queue=call.queue if call is not None else None,
                    caller=_masked(call),
                    talking=max(0.0, stamp - agent.since),
                )
            )
    talking.sort(key=lambda row: (-row.talking, row.call_id))
    order = {name: index for index, name in enumerate(sorted(config.queues))}
    lines = sorted(
        (c for c in waiting if c.queue in config.queues), key=lambda c: (order[c.queue], c.enqueued_at, c.call_id)
    )
    return Floor(
        operators=tuple(rows),
        talking=tuple(talking),
        waiting=tuple(
            WaitingRow(
                call_id=c.call_id,
                queue=c.queue,
                priority=c.priority,
                caller=_masked(details.get(c.call_id)),
                waited=max(0.0, stamp - c.enqueued_at),
            )
            for c in lines
        ),
        supervisors=tuple((sup_id, sup.name) for sup_id, sup in config.supervisors.items()),
    )


def _masked(call: CallDetails | None) -> str:
    return mask_number(call.caller) if call is not None else "***"


__all__ = [
    "CLOSING_SOON",
    "OPERATOR_STATES",
    "ROME",
    "SL_DEFINITION",
    "AreaStatus",
    "CallDetails",
    "Floor",
    "LineStats",
    "OperatorRow",
    "QueueCounts",
    "TalkingRow",
    "WaitingRow",
    "Wallboard",
    "all_queue_members",
    "area_status",
    "area_statuses",
    "build_floor",
    "build_snapshot",
    "day_bounds",
    "eligible",
    "held_calls",
    "next_change",
    "queue_members",
]
