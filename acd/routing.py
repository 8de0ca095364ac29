"""Routing decisions: which operator gets a new call, which waiting call goes to a freed operator.

Pure and deterministic: the functions read plain snapshots (``OperatorView``, ``WaitingCall``) and the
time ``now`` from the injected clock, and return the choice with a plain-words reason for the
contact record ("why did this call go to this operator"). They never touch Redis; the chosen pair is
then claimed atomically with ``LiveState.claim``, and if the claim loses a race the caller simply
routes again on a fresh snapshot.

Eligibility (both directions): the operator is ``ready`` with a registered softphone, belongs to the
call's tier, and meets every required skill's minimum level.

Order, call arrives (``best_operator``):
  ``best_skill``    highest proficiency sum over the call's required skills, then longest idle, then id
  ``longest_idle``  longest idle, then id

Order, operator frees up (``best_call``): highest priority, then longest wait, then call id, across
every queue the operator can serve (global fairness: one line per operator, not one per queue).

Example::

    decision = best_operator(call, operators, RoutingStrategy.BEST_SKILL, now=clock())
    if decision is not None:
        operator_id, reason = decision
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from acd.agents import AgentState


class RoutingStrategy(enum.StrEnum):
    BEST_SKILL = "best_skill"
    LONGEST_IDLE = "longest_idle"


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorView:
    """What routing needs to know about one operator (built from the roster and live state)."""

    id: str
    tiers: frozenset[str]
    skills: Mapping[str, int]
    state: AgentState
    #: when the operator became idle (clock seconds); smaller means idle longer
    idle_since: float
    registered: bool


@dataclass(frozen=True, slots=True)
class Route:
    """Another way a call may be served: operators of ``tier`` meeting ``requirements``.

    Overflow steps add routes ("after 90s overflow to enterprise"): the call stays in its own line
    and keeps its place, and operators matching any route may take it.
    """

    tier: str
    requirements: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingCall:
    """One caller waiting in a queue; ``requirements`` maps skill -> minimum level right now."""

    call_id: str
    queue: str
    #: larger is more urgent (a VIP segment, an escalated transfer)
    priority: int
    enqueued_at: float
    requirements: Mapping[str, int]
    tier: str
    #: overflow routes in force (see ``Route``)
    also: tuple[Route, ...] = ()
    #: id of the controller whose process holds the caller's channel (it rings and bridges)
    owner: str = ""
    #: the operator who handled this caller's last contact, preferred when ready and eligible
    preferred: str | None = None

    def routes(self) -> tuple[Route, ...]:
        return (Route(self.tier, self.requirements), *self.also)


class Decision(NamedTuple):
    choice: str
    reason: str


def is_available(operator: OperatorView) -> bool:
    """Ready with a registered softphone: the only operators ever offered a call."""
    return operator.state is AgentState.READY and operator.registered


class Skilled(Protocol):
    """Tiers and skill levels: an ``OperatorView``, or a roster entry (no live state needed)."""

    @property
    def tiers(self) -> Collection[str]: ...

    @property
    def skills(self) -> Mapping[str, int]: ...


def _fits(operator: Skilled, route: Route) -> bool:
    return route.tier in operator.tiers and all(
        operator.skills.get(skill, 0) >= level for skill, level in route.requirements.items()
    )


def route_for(operator: Skilled, call: WaitingCall) -> Route | None:
    """The first of the call's routes the operator fits (its own queue's first), or None."""
    return next((route for route in call.routes() if _fits(operator, route)), None)


def can_serve(operator: Skilled, call: WaitingCall) -> bool:
    """The operator belongs to the call's tier (or an overflow's) and meets its minimum levels.

    Reads only tiers and skills, so a roster entry can be checked before any live state is read.
    """
    return route_for(operator, call) is not None


def _skill_sum(operator: OperatorView, call: WaitingCall) -> int:
    route = route_for(operator, call)
    requirements = route.requirements if route is not None else call.requirements
    return sum(operator.skills.get(skill, 0) for skill in requirements)


def _skills_text(operator: OperatorView, call: WaitingCall) -> str:
    route = route_for(operator, call)
    requirements = route.requirements if route is not None else call.requirements
    via = f"overflow to tier {route.tier}, " if route is not None and route.tier != call.tier else ""
    if not requirements:
        return f"{via}no skill required"
    return via + ", ".join(
        f"{skill} {operator.skills.get(skill, 0)} >= {level}" for skill, level in sorted(requirements.items())
    )


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.0f} s"


def best_operator(
    call: WaitingCall,
    operators: Iterable[OperatorView],
    strategy: RoutingStrategy,
    *,
    now: float,
) -> Decision | None:
    """Pick the operator for ``call``, or ``None`` when nobody eligible is ready.

    Example::

        best_operator(call, operators, RoutingStrategy.BEST_SKILL, now=100.0)
        # Decision("op1003", "op1003: bancoposta 8 >= 7, idle 42 s (best of 3 eligible, strategy best_skill)")
    """
    eligible = [op for op in operators if is_available(op) and can_serve(op, call)]
    if not eligible:
        return None
    preferred = next((op for op in eligible if op.id == call.preferred), None)
    if preferred is not None:
        reason = (
            f"{preferred.id}: handled this caller's last contact; {_skills_text(preferred, call)} "
            f"(preferred over {len(eligible) - 1} other eligible)"
        )
        return Decision(preferred.id, reason)
    if strategy is RoutingStrategy.BEST_SKILL:
        chosen = min(eligible, key=lambda op: (-_skill_sum(op, call), op.idle_since, op.id))
    else:
        chosen = min(eligible, key=lambda op: (op.idle_since, op.id))
    reason = (
        f"{chosen.id}: {_skills_text(chosen, call)}, idle {_seconds(now - chosen.idle_since)} "
        f"(best of {len(eligible)} eligible, strategy {strategy.value})"
    )
    return Decision(chosen.id, reason)


def best_call(operator: OperatorView, waiting_calls: Iterable[WaitingCall], *, now: float) -> Decision | None:
    """Pick the waiting call for ``operator`` across all queues, or ``None`` when none fits.

    Example::

        best_call(operator, waiting, now=100.0)
        # Decision("c7", "c7 (queue bancoposta, priority 5, waited 30 s) for op1003: bancoposta 8 >= 7 ...")
    """
    if not is_available(operator):
        return None
    servable = [call for call in waiting_calls if can_serve(operator, call)]
    if not servable:
        return None
    chosen = min(servable, key=lambda call: (-call.priority, call.enqueued_at, call.call_id))
    reason = (
        f"{chosen.call_id} (queue {chosen.queue}, priority {chosen.priority}, "
        f"waited {_seconds(now - chosen.enqueued_at)}) for {operator.id}: {_skills_text(operator, chosen)} "
        f"(first of {len(servable)} servable calls across all queues)"
    )
    return Decision(chosen.call_id, reason)
