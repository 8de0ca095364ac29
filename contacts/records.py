"""The values the records layer hands out: plain frozen data, never ORM objects.

Callers (the IVR, the ACD, the CLI, the web views) only ever see these, so a session closing or
an object expiring can never bite them, and they can be passed across tasks freely.

Example::

    step = make_step("main", "menu", "1", at=datetime.now(UTC))
    record = await store.get("c-1")
    print(json.dumps(record.to_json_dict()))
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypedDict


class Outcome(StrEnum):
    """How a contact ended. Stored as plain text, so later work may add values freely."""

    CONTAINED = "contained"  # self-service finished the job inside the IVR
    ABANDONED_IVR = "abandoned_ivr"
    OPERATORS_UNAVAILABLE = "operators_unavailable"
    COMPLAINT = "complaint"
    TRANSFERRED = "transferred"
    ANSWERED = "answered"
    ABANDONED_QUEUE = "abandoned_queue"
    CALLBACK = "callback"
    CLOSED = "closed"  # out of office hours / holiday
    OVERLOAD = "overload"  # over the controller's max_calls: asked to call again later
    ERROR = "error"  # also used to close records a crashed controller left open


class IvrStep(TypedDict):
    """One step of the IVR path, as stored in ``contacts.ivr_path``.

    ``at`` is an ISO 8601 timestamp with offset (UTC), ``digits`` what the caller keyed, if any,
    ``note`` how the IVR took it (``choice``, ``invalid``, ``timeout``, an action's result ...).
    """

    node: str
    kind: str
    digits: str | None
    note: str | None
    at: str


def make_step(node: str, kind: str, digits: str | None, *, at: datetime, note: str | None = None) -> IvrStep:
    """Build a step from typed values: ``make_step("main", "input", "1", at=now, note="choice")``."""
    return {"node": node, "kind": kind, "digits": digits, "note": note, "at": require_aware("at", at).isoformat()}


def parse_step(raw: Mapping[str, object]) -> IvrStep:
    """Check one step coming from outside and return it as an :class:`IvrStep`.

    Raises ``ValueError`` naming the offending key, so a bad step fails where it was built
    and not later inside a flush.
    """
    node, kind, digits, at = raw.get("node"), raw.get("kind"), raw.get("digits"), raw.get("at")
    note = raw.get("note")
    if note is not None and not isinstance(note, str):
        raise ValueError(f"ivr step: 'note' must be a string or None, got {note!r}")
    if not isinstance(node, str) or not node:
        raise ValueError(f"ivr step: 'node' must be a non-empty string, got {node!r}")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"ivr step: 'kind' must be a non-empty string, got {kind!r}")
    if digits is not None and not isinstance(digits, str):
        raise ValueError(f"ivr step: 'digits' must be a string or None, got {digits!r}")
    if isinstance(at, datetime):
        at = require_aware("at", at).isoformat()
    if not isinstance(at, str):
        raise ValueError(f"ivr step: 'at' must be an ISO timestamp, got {at!r}")
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        raise ValueError(f"ivr step: 'at' is not an ISO timestamp: {at!r}") from None
    require_aware("at", parsed)
    return {"node": node, "kind": kind, "digits": digits, "note": note, "at": at}


def require_aware(name: str, value: datetime) -> datetime:
    """Return ``value`` in UTC; a naive datetime is a bug in the caller, so it raises."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {value!r}; pass a timezone-aware one")
    return value.astimezone(UTC)


def require_json(name: str, value: object) -> None:
    """Raise ``ValueError`` if ``value`` would not survive the JSON column."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not JSON-serialisable ({exc})") from None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, kw_only=True, slots=True)
class ContactRecord:
    """One call leg as recorded; timestamps are aware UTC datetimes."""

    id: str
    channel_id: str
    caller: str | None
    dialled: str
    language: str
    started_at: datetime
    ivr_ended_at: datetime | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    ivr_path: tuple[IvrStep, ...] = ()
    queue: str | None = None
    tier: str | None = None
    operator: str | None = None
    routing_reason: str | None = None
    disposition: str | None = None
    wrapup_code: str | None = None
    recording: str | None = None
    outcome: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    node: str | None = None
    customer_id: str | None = None
    talk_ended_at: datetime | None = None
    wrapup_ended_at: datetime | None = None
    estimated_wait: int | None = None

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-safe copy: ISO 8601 timestamps, plain lists and dicts."""
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "caller": self.caller,
            "dialled": self.dialled,
            "language": self.language,
            "started_at": _iso(self.started_at),
            "ivr_ended_at": _iso(self.ivr_ended_at),
            "queued_at": _iso(self.queued_at),
            "answered_at": _iso(self.answered_at),
            "ended_at": _iso(self.ended_at),
            "ivr_path": [dict(step) for step in self.ivr_path],
            "queue": self.queue,
            "tier": self.tier,
            "operator": self.operator,
            "routing_reason": self.routing_reason,
            "disposition": self.disposition,
            "wrapup_code": self.wrapup_code,
            "recording": self.recording,
            "outcome": self.outcome,
            "data": dict(self.data),
            "node": self.node,
            "customer_id": self.customer_id,
            "talk_ended_at": _iso(self.talk_ended_at),
            "wrapup_ended_at": _iso(self.wrapup_ended_at),
            "estimated_wait": self.estimated_wait,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ParcelStatus:
    """What the parcel-tracking self-service reads back to the caller."""

    code: str
    status: str
    updated_at: datetime
    detail: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.status,
            "updated_at": self.updated_at.isoformat(),
            "detail": self.detail,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class SurveyRecord:
    """A post-call survey: ``score`` 1 (bad) to 5 (good), ``solved`` as the caller said; ``None``
    where the caller gave no answer."""

    contact_id: str
    score: int | None
    solved: bool | None
    recorded_at: datetime

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "score": self.score,
            "solved": self.solved,
            "recorded_at": self.recorded_at.isoformat(),
        }
