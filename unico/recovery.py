"""What a controller needs to pick up calls another process (or its own previous life) left.

Theory of operation
-------------------
Asterisk owns the calls; a controller that dies (``kill -9``), loses its websocket or its Redis
lease leaves every channel parked in Stasis: talking callers keep talking in their mixing bridge,
waiting callers keep their music on hold (both belong to Asterisk, not to the
websocket). What is lost is the controller's memory of each call: which queue and since when, who
was rung, what the IVR said, the contact record's pending columns.

So a queued call writes a **snapshot** to Redis at each step of its treatment (enters a queue, an
operator is rung, answers, the ring fails, a transfer or move; ``<prefix>session:<call id>``) and
deletes it when it leaves the ACD. IVR-only calls write nothing: re-entering their number's menu is
all a restarted controller can do for them (a prompt in flight cannot be taken over).

On every (re)connect the controller lists Asterisk's channels and bridges and ``plan`` decides,
without I/O, what becomes of each snapshot and each channel of our app:

``Resume``         the caller is still there: the call goes on in the state it was in (waiting in
                   its line with its original arrival time, ringing, talking), or, when its
                   operator's leg has gone meanwhile, as if the ring failed or the operator hung up
``Gone``           the caller hung up while nobody listened: close the record as the state says
                   (abandoned in the queue, or answered and over), free the operator, clear up
``Adopt``          a caller without a snapshot (in the IVR): their number's entry menu again
``HangupChannel``  a leg nobody can use any more (an operator or supervisor leg of a call that is
                   over, a snoop): hang it up
``DestroyBridge``  one of our bridges that no live call uses

Calls this process still knows (a websocket blip, not a restart) are left to the caller's own
actor and are not in the plan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from unico.ari import Bridge, Channel

#: bump when a field changes meaning; a snapshot of another version is not resumed
SNAPSHOT_VERSION = 1

#: leg, snoop and bridge ids derive from the caller's channel id (``unico.queued_call``,
#: ``unico.supervision``): ``<call>-op<n>``, ``<call>-mon<n>``, ``<call>-mon<n>-snoop<k>``,
#: ``<call>-hold<n>``, ``<call>-conv<n>``, ``<call>-mon<n>-bridge<k>``
_LEG = re.compile(r"^(?P<call>.+?)-(?:op|mon)\d+(?:-snoop\d+)?$")
_BRIDGE = re.compile(r"^(?P<call>.+?)-(?:(?:hold|conv)\d+|mon\d+-bridge\d+)$")


@dataclass(frozen=True, kw_only=True, slots=True)
class CustomerSnapshot:
    id: str
    segment: str | None = None
    language: str | None = None
    last_operator: str | None = None


def _fields(value: object) -> dict[str, Any]:
    """The JSON encoder's fallback for :meth:`CallSnapshot.to_json`: a snapshot dataclass as its
    fields (what ``asdict`` gives, without copying them), a read-only mapping as a dict."""
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: getattr(value, item.name) for item in fields(value)}
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a call snapshot holds a {type(value).__name__}, which JSON cannot carry")


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueSnapshot:
    """A ``QueuedCall`` between two events (``unico.queued_call``)."""

    queue: str
    request_id: str
    priority: int
    #: original arrival in the queue (the ACD's clock, seconds): the caller's place in the line
    enqueued_at: float
    state: str  # waiting | ringing | talking
    preferred: str | None = None
    agent_id: str | None = None
    agent_channel: str | None = None
    reason: str | None = None
    hold_bridge: str = ""
    conv_bridge: str = ""
    bridges: int = 0
    legs: int = 0
    offered_at: float | None = None
    answered_at: float | None = None
    announced_position: int | None = None
    estimated_wait: int | None = None
    #: the announcement playing on the caller's channel when saved (a controller taking over stops
    #: it: a channel playback holds up the caller's join to the operator until it ends)
    announcement: str | None = None
    announcements: int = 0
    #: ISO times of the call's clock for the contact record's ``queued_at`` and ``answered_at``
    queued_wall: str | None = None
    answered_wall: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CallSnapshot:
    """Everything a controller needs to go on with a queued call. JSON in Redis."""

    call_id: str
    #: the ARI application (one per Asterisk node) whose channel this is: only a controller of
    #: the same app can take the call over
    app: str
    owner: str
    saved_at: float
    #: ``ivr.engine.Session.snapshot()``
    session: Mapping[str, Any]
    started_at: str
    queue: QueueSnapshot
    ivr_ended_at: str | None = None
    customer: CustomerSnapshot | None = None
    version: int = SNAPSHOT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        # ``asdict`` deep-copied the whole IVR session first, at every step of every queued call
        # (179 us a snapshot, three or four a call: some 3 % of the controller's CPU per call);
        # the encoder walks the session itself and asks ``_fields`` only for the dataclasses
        return json.dumps(self, default=_fields, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> CallSnapshot:
        """Parse a stored snapshot; ``ValueError`` for anything malformed or of another version."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
                raise ValueError(f"snapshot version {data.get('version') if isinstance(data, dict) else '?'}")
            queue = QueueSnapshot(**data["queue"])
            customer = CustomerSnapshot(**data["customer"]) if data.get("customer") else None
            return cls(
                call_id=str(data["call_id"]),
                app=str(data["app"]),
                owner=str(data["owner"]),
                saved_at=float(data["saved_at"]),
                session=dict(data["session"]),
                started_at=str(data["started_at"]),
                queue=queue,
                ivr_ended_at=data.get("ivr_ended_at"),
                customer=customer,
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed call snapshot: {exc}") from None

    def moved_to(self, owner: str) -> CallSnapshot:
        return replace(self, owner=owner)


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resume:
    snapshot: CallSnapshot
    caller: Channel
    #: the operator's leg still exists (ringing or in the conversation)
    leg_alive: bool
    #: the snapshot's bridge (holding while waiting or ringing, mixing while talking) still exists
    #: with the caller in it
    bridge_alive: bool


@dataclass(frozen=True, slots=True)
class Gone:
    snapshot: CallSnapshot
    #: the operator's leg is still up (a talking operator left alone): hang it up
    leg_alive: bool


@dataclass(frozen=True, slots=True)
class Adopt:
    channel: Channel


@dataclass(frozen=True, slots=True)
class HangupChannel:
    channel_id: str
    why: str


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    bridge_id: str
    why: str


Action = Resume | Gone | Adopt | HangupChannel | DestroyBridge


def _kind(channel: Channel) -> str:
    """The first Stasis argument after the app (``inbound``, ``agent``, ``monitor``, ``snoop``,
    ``operator``), or ``""``."""
    parts = [p.strip() for p in channel.dialplan_app_data.split(",")]
    return parts[1] if len(parts) > 1 else ""


def plan(
    *,
    app: str,
    channels: Iterable[Channel],
    bridges: Iterable[Bridge],
    snapshots: Mapping[str, CallSnapshot],
    known: Iterable[str],
) -> list[Action]:
    """Decide what becomes of every snapshot and every channel of ``app`` (see the module doc).

    ``known`` are the calls this process still handles: neither they nor their legs and bridges
    are touched. Resumes and adoptions come first in the result, clean-up after.

    Example::

        for action in plan(app="unico", channels=await rest.list_channels(),
                           bridges=await rest.list_bridges(), snapshots=saved, known=calls):
            ...
    """
    by_id = {c.id: c for c in channels}
    bridge_list = list(bridges)
    members = {b.id: set(b.channels) for b in bridge_list}
    known_ids = set(known)
    actions: list[Action] = []
    live_calls: set[str] = set(known_ids)
    kept_legs: set[str] = set()
    kept_bridges: set[str] = set()

    for call_id, snap in snapshots.items():
        if call_id in known_ids:
            continue
        q = snap.queue
        caller = by_id.get(call_id)
        leg_id = q.agent_channel if q.state in ("ringing", "talking") else None
        leg_alive = leg_id is not None and leg_id in by_id
        if caller is None:
            actions.append(Gone(snap, leg_alive))
            continue
        bridge_id = q.conv_bridge if q.state == "talking" else q.hold_bridge
        bridge_alive = bool(bridge_id) and call_id in members.get(bridge_id, set())
        actions.append(Resume(snap, caller, leg_alive, bridge_alive))
        live_calls.add(call_id)
        if leg_alive and leg_id is not None:
            kept_legs.add(leg_id)
        if bridge_alive:
            kept_bridges.add(bridge_id)

    for channel in by_id.values():
        if channel.id in live_calls or channel.id in kept_legs:
            continue
        leg = _LEG.match(channel.id)
        if leg is not None:
            if leg.group("call") not in known_ids:
                actions.append(HangupChannel(channel.id, f"leg of call {leg.group('call')}, which is over"))
            continue
        if not channel.is_in_app(app) or channel.id in snapshots:
            continue
        kind = _kind(channel)
        if kind in ("agent", "monitor", "snoop"):
            actions.append(HangupChannel(channel.id, f"{kind} leg of a call that is over"))
        else:
            actions.append(Adopt(channel))
            live_calls.add(channel.id)

    for bridge in bridge_list:
        match = _BRIDGE.match(bridge.id)
        if match is None or bridge.id in kept_bridges or match.group("call") in known_ids:
            continue
        actions.append(DestroyBridge(bridge.id, f"left by call {match.group('call')}"))

    order = {Resume: 0, Adopt: 1, Gone: 2, HangupChannel: 3, DestroyBridge: 4}
    return sorted(actions, key=lambda action: order[type(action)])


__all__ = [
    "SNAPSHOT_VERSION",
    "Action",
    "Adopt",
    "CallSnapshot",
    "CustomerSnapshot",
    "DestroyBridge",
    "Gone",
    "HangupChannel",
    "QueueSnapshot",
    "Resume",
    "plan",
]
