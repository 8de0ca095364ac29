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


def _skill_sum(operator: Skilled, call: WaitingCall) -> int:
    route = route_for(operator, call)
    requirements = route.requirements if route is not None else call.requirements
    return sum(operator.skills.get(skill, 0) for skill in requirements)


def _skills_text(operator: Skilled, call: WaitingCall) -> str:
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
        chosen = preferred
    elif strategy is RoutingStrategy.BEST_SKILL:
        chosen = min(eligible, key=lambda op: (-_skill_sum(op, call), op.idle_since, op.id))
    else:
        chosen = min(eligible, key=lambda op: (op.idle_since, op.id))
    return Decision(chosen.id, operator_reason(chosen, call, strategy, eligible=len(eligible), now=now))


def operator_reason(
    chosen: OperatorView, call: WaitingCall, strategy: RoutingStrategy, *, eligible: int, now: float
) -> str:
    """Why ``chosen`` got ``call`` (``best_operator``'s reason), ``eligible`` operators being free and fit."""
    if chosen.id == call.preferred:
        return (
            f"{chosen.id}: handled this caller's last contact; {_skills_text(chosen, call)} "
            f"(preferred over {eligible - 1} other eligible)"
        )
    return (
        f"{chosen.id}: {_skills_text(chosen, call)}, idle {_seconds(now - chosen.idle_since)} "
        f"(best of {eligible} eligible, strategy {strategy.value})"
    )


def rank_operators(call: WaitingCall, fitting: Mapping[str, Skilled], strategy: RoutingStrategy) -> list[list[str]]:
    """The operators of ``fitting`` (who fit ``call``) in rank groups, best first: what
    ``best_operator`` decides from the roster alone, before any live state is read.

    The call's preferred operator is a group of their own, first; with ``best_skill`` the others are
    grouped by proficiency sum, highest first; with ``longest_idle`` they are one group. Within a
    group, the free operator idle longest wins, then the smallest id (``LiveState.claim_best_agent``
    applies that part inside Redis). Example::

        rank_operators(call, {"op1": spec1, "op2": spec2, "op3": spec3}, RoutingStrategy.BEST_SKILL)
        # [["op3"], ["op1", "op2"]]  (op3 is the preferred one; op1 and op2 share a proficiency sum)
    """
    groups: list[list[str]] = []
    rest = list(fitting)
    if call.preferred is not None and call.preferred in fitting:
        groups.append([call.preferred])
        rest.remove(call.preferred)
    if strategy is RoutingStrategy.BEST_SKILL:
        by_sum: dict[int, list[str]] = {}
        for operator_id in rest:
            by_sum.setdefault(_skill_sum(fitting[operator_id], call), []).append(operator_id)
        groups += [by_sum[total] for total in sorted(by_sum, reverse=True)]
    elif rest:
        groups.append(rest)
    return groups


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
    return Decision(chosen.call_id, call_reason(operator, chosen, servable=len(servable), now=now))


def call_reason(operator: Skilled, chosen: WaitingCall, *, servable: int, now: float, operator_id: str = "") -> str:
    """Why ``chosen`` went to ``operator`` (``best_call``'s reason), ``servable`` calls fitting them.

    ``operator_id`` names a roster entry (which has no id of its own); an ``OperatorView`` names itself.
    """
    name = operator_id or getattr(operator, "id", "")
    return (
        f"{chosen.call_id} (queue {chosen.queue}, priority {chosen.priority}, "
        f"waited {_seconds(now - chosen.enqueued_at)}) for {name}: {_skills_text(operator, chosen)} "
        f"(first of {servable} servable calls across all queues)"
    )
