"""What the KPIs read and what they give back: frozen input rows, options and the report.

The inputs are plain values, one class per source table (``contacts``, ``agent_states``,
``surveys``, ``complaints``), holding only the columns the KPIs read; :mod:`reports.load` builds
them from the database, tests and benchmarks build them directly. :class:`KpiOptions` fails fast
on a bad value, naming it. A :class:`Report` is immutable and turns into plain JSON with
:meth:`Report.to_json`. The computation is in :mod:`reports.kpi`.

Example::

    row = ContactRow(id="c-1", started_at=t0, queued_at=t1, answered_at=t2, queue="general")
    options = KpiOptions(sl_definition="offered", fcr_window=timedelta(days=3))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reports.buckets import Interval

if TYPE_CHECKING:
    from acd.queues import QueueSpec
    from contacts.records import ContactRecord

SlDefinition = Literal["answered", "offered", "app_queue_sl2"]
SL_DEFINITIONS: tuple[str, ...] = get_args(SlDefinition)
Dimension = Literal["total", "queue", "tier", "operator"]
DIMENSIONS: tuple[str, ...] = get_args(Dimension)
#: the key of the single row per bucket of ``by="total"``
TOTAL_KEY = "all"
#: operator states counted as handling work (numerator and denominator of occupancy): a ringing
#: operator is reserved for one call and cannot take another, so ringing is not available time
BUSY_STATES = frozenset({"on_call", "wrap_up", "ringing"})
#: states counted as available, idle time (denominator only); not_ready and logged_out count nowhere
AVAILABLE_STATES = frozenset({"ready"})
#: outcomes that end a contact with the caller served, the candidates of first-contact resolution
RESOLVING_OUTCOMES = frozenset({"answered", "contained"})
#: complaint statuses that count as answered (``contacts.complaint_rules.ANSWERED``)
ANSWERED_COMPLAINTS = frozenset({"resolved", "closed"})
#: no call stays in the IVR and a queue longer; the loader reads contacts started this long before
#: the period, so a call that started before it and entered a queue inside it is counted
MAX_CALL = timedelta(days=1)

#: every KPI of a row, in the order of the CSV columns
KPI_COLUMNS: tuple[str, ...] = (
    "contacts",
    "contained",
    "ivr_containment",
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "unanswered_other",
    "abandon_rate",
    "answered_in_sl",
    "abandoned_in_sl",
    "service_level",
    "asa",
    "handled",
    "avg_talk",
    "avg_wrapup",
    "aht",
    "wrapup_estimated",
    "transferred",
    "transfer_rate",
    "escalated",
    "escalation_rate",
    "busy_seconds",
    "ready_seconds",
    "occupancy",
    "fcr_resolved",
    "fcr_repeated",
    "fcr_pending",
    "fcr",
    "surveys",
    "survey_score",
    "survey_solved",
    "complaints_opened",
    "complaints_overdue",
    "ewt_calls",
    "ewt_mae",
    "ewt_bias",
)
#: KPIs that are shares between 0 and 1
RATIO_COLUMNS = frozenset(
    {
        "ivr_containment",
        "abandon_rate",
        "service_level",
        "transfer_rate",
        "escalation_rate",
        "occupancy",
        "fcr",
        "survey_solved",
    }
)
#: KPIs in seconds
SECONDS_COLUMNS = frozenset(
    {"asa", "avg_talk", "avg_wrapup", "aht", "busy_seconds", "ready_seconds", "ewt_mae", "ewt_bias"}
)

KpiValue = int | float | None


# -- inputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ContactRow:
    """The columns of one contact the KPIs read; timestamps are aware.

    ``transferred`` and ``escalated`` summarise the contact's path (:func:`path_flags`).
    """

    id: str
    started_at: datetime
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    talk_ended_at: datetime | None = None
    wrapup_ended_at: datetime | None = None
    ended_at: datetime | None = None
    queue: str | None = None
    tier: str | None = None
    operator: str | None = None
    outcome: str | None = None
    customer_id: str | None = None
    caller: str | None = None
    estimated_wait: int | None = None
    transferred: bool = False
    escalated: bool = False

    @classmethod
    def from_record(cls, record: ContactRecord) -> ContactRow:
        """The KPI view of a stored contact: ``ContactRow.from_record(await store.get("c-1"))``."""
        transferred, escalated = path_flags(record.ivr_path, outcome=record.outcome)
        return cls(
            id=record.id,
            started_at=record.started_at,
            queued_at=record.queued_at,
            answered_at=record.answered_at,
            talk_ended_at=record.talk_ended_at,
            wrapup_ended_at=record.wrapup_ended_at,
            ended_at=record.ended_at,
            queue=record.queue,
            tier=record.tier,
            operator=record.operator,
            outcome=record.outcome,
            customer_id=record.customer_id,
            caller=record.caller,
            estimated_wait=record.estimated_wait,
            transferred=transferred,
            escalated=escalated,
        )


def path_flags(path: Iterable[Mapping[str, Any]] | None, *, outcome: str | None = None) -> tuple[bool, bool]:
    """``(transferred, escalated)`` from a contact's path (``contacts.ivr_path``).

    The ACD writes a ``transfer`` step when an operator moves the caller to another queue or
    operator and an ``escalate`` step when a waiting call's requirements relax or overflow
    (``unico/queued_call.py``); no IVR node has either kind. Outcome ``transferred`` also counts.

    Example::

        path_flags([{"node": "general", "kind": "escalate"}])   # (False, True)
    """
    transferred = outcome == "transferred"
    escalated = False
    for step in path or ():
        kind = step.get("kind")
        if kind == "transfer":
            transferred = True
        elif kind == "escalate":
            escalated = True
    return transferred, escalated


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentSpan:
    """One operator state interval (``agent_states``); ``ended_at`` is ``None`` while it lasts."""

    agent: str
    state: str
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SurveyRow:
    """A post-call survey; either answer may be missing."""

    contact_id: str
    score: int | None
    solved: bool | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ComplaintRow:
    """What the complaint KPIs read of one complaint; ``due_on`` is an Italian date."""

    contact_id: str | None
    received_at: datetime
    due_on: date
    status: str
    resolved_at: datetime | None = None
    closed_at: datetime | None = None


# -- options ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueRules:
    """A queue's reporting settings, from ``skills/queues.yaml`` (the defaults are QueueSpec's)."""

    sl_threshold: int = 20  # seconds: answered within it counts for the service level
    short_abandon: int = 5  # seconds: hanging up sooner is a short abandon
    wrapup: int = 10  # seconds of wrap-up assumed when the record has no wrap-up end
    tier: str | None = None  # so a report by tier lists the configured tiers, quiet ones too

    @classmethod
    def from_spec(cls, spec: QueueSpec) -> QueueRules:
        return cls(
            sl_threshold=spec.service_level.threshold,
            short_abandon=spec.short_abandon,
            wrapup=spec.wrapup,
            tier=spec.tier,
        )


@dataclass(frozen=True, kw_only=True)
class KpiOptions:
    """How the KPIs are computed; a wrong value raises ``ValueError`` naming it.

    Example::

        KpiOptions(sl_definition="offered", fcr_window=timedelta(days=3))
        KpiOptions.from_queues(config.queues)    # thresholds per queue from the configuration
    """

    sl_definition: SlDefinition = "answered"
    fcr_window: timedelta = timedelta(days=7)
    timezone: str = "Europe/Rome"
    queues: Mapping[str, QueueRules] = field(default_factory=dict)
    #: for calls of a queue not (or no longer) in ``queues``
    default_rules: QueueRules = QueueRules()

    def __post_init__(self) -> None:
        if self.sl_definition not in SL_DEFINITIONS:
            raise ValueError(f"sl_definition: unknown {self.sl_definition!r}; use one of {', '.join(SL_DEFINITIONS)}")
        if self.fcr_window <= timedelta(0):
            raise ValueError(f"fcr_window: must be positive, got {self.fcr_window}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "queues", MappingProxyType(dict(self.queues)))

    @classmethod
    def from_queues(cls, queues: Mapping[str, QueueSpec], **options: Any) -> KpiOptions:
        """Options whose per-queue rules come from the configured queues (``IvrConfig.queues``)."""
        return cls(queues={name: QueueRules.from_spec(spec) for name, spec in queues.items()}, **options)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def rules_for(self, queue: str | None) -> QueueRules:
        return self.queues.get(queue, self.default_rules) if queue is not None else self.default_rules


# -- output ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ReportRow:
    """The KPIs of one key in one bucket; ``start``/``end`` are aware local times."""

    start: datetime
    end: datetime
    key: str | None
    kpis: Mapping[str, KpiValue]

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "key": self.key, **self.kpis}


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """A KPI table: one row per bucket and key, buckets in time order, keys sorted (``None`` last)."""

    start: datetime
    end: datetime
    interval: Interval
    by: Dimension
    as_of: datetime
    sl_definition: SlDefinition
    fcr_window: timedelta
    timezone: str
    rows: tuple[ReportRow, ...]

    @property
    def keys(self) -> tuple[str | None, ...]:
        return tuple(dict.fromkeys(row.key for row in self.rows))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-safe dicts: ISO 8601 local times with offsets, ``null`` for missing ratios.

        Example::

            json.dumps(report.to_json())
        """
        zone = ZoneInfo(self.timezone)
        return {
            "start": self.start.astimezone(zone).isoformat(),
            "end": self.end.astimezone(zone).isoformat(),
            "interval": self.interval,
            "by": self.by,
            "timezone": self.timezone,
            "sl_definition": self.sl_definition,
            "fcr_window_days": self.fcr_window / timedelta(days=1),
            "as_of": self.as_of.astimezone(zone).isoformat(),
            "columns": ["start", "end", "key", *KPI_COLUMNS],
            "rows": [row.to_json() for row in self.rows],
        }


__all__ = [
    "ANSWERED_COMPLAINTS",
    "AVAILABLE_STATES",
    "BUSY_STATES",
    "DIMENSIONS",
    "KPI_COLUMNS",
    "MAX_CALL",
    "RATIO_COLUMNS",
    "RESOLVING_OUTCOMES",
    "SECONDS_COLUMNS",
    "SL_DEFINITIONS",
    "TOTAL_KEY",
    "AgentSpan",
    "ComplaintRow",
    "ContactRow",
    "Dimension",
    "KpiOptions",
    "KpiValue",
    "QueueRules",
    "Report",
    "ReportRow",
    "SlDefinition",
    "SurveyRow",
    "path_flags",
]
