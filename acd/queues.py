"""Queue definitions from ``skills/*.yaml``, with time-stepped escalation in plain words.

A queue belongs to a tier, opens by a calendar (``dialplan/hours.yaml``) and asks for minimum skill
levels. Admins write escalation as short sentences, parsed here once into ``EscalationStep``::

    queues:
      bancoposta:
        name: BancoPosta
        tier: specialist
        calendar: customers
        required_skills: {bancoposta: 7, italiano: 6}
        escalation:
          - at 0s need bancoposta >= 7
          - after 30s need bancoposta >= 4
          - after 90s overflow to enterprise

Accepted sentences (keywords lower-case; seconds as ``30s``/``30 s``, minutes as ``2m``/``2 min``)::

    at|after <time> need <skill> >= <level> [and <skill> >= <level> ...]
    at|after <time> overflow to <tier or queue>     (a tier name means the tier)
    at|after <time> overflow to [the] <tier> tier
    at|after <time> overflow to queue <queue>

A ``need`` step changes the minimum level of the skills it names and keeps the others; an
``overflow`` step lets the call also be offered to another queue's or tier's operators from then
on, the caller keeping their place: to a tier, any of its operators (the tier above is trusted with
whatever reaches it, no minimum levels); to a queue, its operators meeting that queue's levels.
``requirements_at`` answers "what does this call need now".
Whether skills, targets and the order of steps make sense is checked by the config loader, which
knows every file (``ivr.config``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from acd.skills import MAX_LEVEL, MIN_LEVEL, Level

Tier = Literal["general", "specialist", "enterprise"]
TIERS: tuple[str, ...] = get_args(Tier)
Strategy = Literal["best_skill", "longest_idle"]
_NAME = r"[A-Za-z][A-Za-z0-9_]*"

ACCEPTED_FORMS = (
    "'at 0s need bancoposta >= 7', 'after 30s need bancoposta >= 4 and inglese >= 5', "
    "'after 90s overflow to enterprise' (a tier), 'after 2m overflow to queue mobile'"
)
_STEP = re.compile(r"^(?:at|after)\s+(\d+)\s*(s|sec|seconds|m|min|minutes)\s+(.*)$")
_NEED = re.compile(r"^need\s+(.+)$")
_REQUIREMENT = re.compile(r"^([a-z][a-z0-9_]*)\s*>=\s*(\d+)$")
_OVERFLOW = re.compile(rf"^overflow\s+to\s+(?:queue\s+({_NAME})|(?:the\s+)?({_NAME})(\s+tier)?)$")


class OverflowTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["queue", "tier"]
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class EscalationStep(BaseModel):
    """One parsed sentence: from ``after_seconds`` on, either new minimum levels or an overflow."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    after_seconds: int
    need: dict[str, int] | None = None
    overflow: OverflowTarget | None = None
    #: the sentence as written, for logs and the contact record ("why was this call offered to ...")
    text: str = ""


def parse_step(sentence: str) -> EscalationStep:
    """Parse one escalation sentence; raise ``ValueError`` with the accepted forms if it does not fit.

    Example::

        parse_step("after 30s need bancoposta >= 4").need   # {'bancoposta': 4}
    """
    text = " ".join(sentence.split())
    match = _STEP.match(text)
    if match is None:
        raise ValueError(f"cannot read escalation step {sentence!r}; write for example {ACCEPTED_FORMS}")
    amount, unit, rest = int(match[1]), match[2], match[3]
    seconds = amount * 60 if unit.startswith("m") else amount
    if need := _NEED.match(rest):
        levels: dict[str, int] = {}
        for part in re.split(r"\s+and\s+", need[1]):
            requirement = _REQUIREMENT.match(part)
            if requirement is None:
                raise ValueError(
                    f"cannot read requirement {part!r} in {sentence!r}; write '<skill> >= <level>', "
                    f"for example {ACCEPTED_FORMS}"
                )
            skill, level = requirement[1], int(requirement[2])
            if skill in levels:
                raise ValueError(f"skill {skill!r} is named twice in {sentence!r}")
            if not MIN_LEVEL <= level <= MAX_LEVEL:
                raise ValueError(f"level for {skill!r} must be between {MIN_LEVEL} and {MAX_LEVEL}, not {level}")
            levels[skill] = level
        return EscalationStep(after_seconds=seconds, need=levels, text=text)
    if overflow := _OVERFLOW.match(rest):
        queue_name, name, tier_word = overflow[1], overflow[2], overflow[3]
        if queue_name is not None:
            target = OverflowTarget(kind="queue", name=queue_name)
        elif tier_word is not None and name not in TIERS:
            raise ValueError(f"{name!r} is not a tier (tiers: {', '.join(TIERS)}) in {sentence!r}")
        else:
            target = OverflowTarget(kind="tier" if name in TIERS else "queue", name=name)
        return EscalationStep(after_seconds=seconds, overflow=target, text=text)
    raise ValueError(f"cannot read escalation step {sentence!r}; write for example {ACCEPTED_FORMS}")


def _step(value: Any) -> Any:
    if isinstance(value, EscalationStep):
        return value
    if not isinstance(value, str):
        raise ValueError(f"each escalation step is one sentence, for example {ACCEPTED_FORMS}")
    return parse_step(value)


class PriorityRule(BaseModel):
    """``{segment: vip, add: 10}``: callers in the customer segment get ``add`` on top of the base."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    segment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    add: int


class ServiceLevel(BaseModel):
    """``threshold`` seconds and ``target`` share, for example 80 % answered within 20 s."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: Annotated[int, Field(ge=1, le=3600)] = 20
    target: Annotated[float, Field(gt=0, le=1)] = 0.8


class QueueSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    tier: Tier
    #: calendar (in ``dialplan/hours.yaml``) giving the queue's operator hours
    calendar: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    description: str = ""
    #: minimum level per skill when the call arrives (escalation ``need`` steps change them)
    required_skills: dict[str, Level] = {}
    #: best_skill: skill match, then proficiency, then longest idle; longest_idle: idle time only
    strategy: Strategy = "best_skill"
    priority: int = 0
    priority_rules: tuple[PriorityRule, ...] = ()
    #: seconds a caller may wait before the queue's "unavailable" treatment; None = no limit
    max_wait: Annotated[int | None, Field(ge=1)] = None
    #: callers waiting at most; a caller beyond it gets the "unavailable" treatment at once
    max_length: Annotated[int | None, Field(ge=1)] = None
    moh_class: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "default"
    ring_timeout: Annotated[int, Field(ge=1, le=300)] = 15
    wrapup: Annotated[int, Field(ge=0, le=3600)] = 10
    #: seconds between position/wait announcements; None = only at entry
    announce_every: Annotated[int | None, Field(ge=10)] = None
    escalation: tuple[Annotated[EscalationStep, BeforeValidator(_step)], ...] = ()
    #: offer a known caller first to the operator who handled their last contact, if that
    #: operator is ready and eligible (otherwise the strategy decides as usual)
    prefer_last_operator: bool = False
    #: service level: the share of calls answered within ``threshold`` seconds the queue aims at
    #: (the definition, which calls count in the denominator, is a report option: docs/reports.md)
    service_level: ServiceLevel = ServiceLevel()
    #: callers hanging up within this many seconds of entering the queue are short abandons
    #: (misdials, changed minds), counted apart and left out of abandonment and service level
    short_abandon: Annotated[int, Field(ge=0, le=120)] = 5


class Requirements(NamedTuple):
    skills: dict[str, int]
    overflow: OverflowTarget | None


def requirements_at(queue: QueueSpec, waited_seconds: float) -> Requirements:
    """What a call that has waited ``waited_seconds`` needs: minimum levels and overflow target.

    Pure: the caller passes the waited time from its own (injectable) clock.

    Example::

        skills, overflow = requirements_at(queue, 45)   # ({'bancoposta': 4}, None)
    """
    skills = dict(queue.required_skills)
    overflow: OverflowTarget | None = None
    for step in queue.escalation:
        if step.after_seconds > waited_seconds:
            break
        if step.need is not None:
            skills.update(step.need)
        if step.overflow is not None:
            overflow = step.overflow
    return Requirements(skills, overflow)


def next_change(queue: QueueSpec, waited_seconds: float) -> int | None:
    """Seconds of waiting at which the requirements next change (to arm a timer), or None."""
    return next((s.after_seconds for s in queue.escalation if s.after_seconds > waited_seconds), None)


def misordered_steps(queue: QueueSpec) -> list[int]:
    """Indexes of escalation steps that do not come strictly later than the step before."""
    steps = queue.escalation
    return [i for i in range(1, len(steps)) if steps[i].after_seconds <= steps[i - 1].after_seconds]


def priority_for(queue: QueueSpec, segments: Collection[str]) -> int:
    """Base priority plus every rule whose segment the caller is in (higher is served first)."""
    return queue.priority + sum(rule.add for rule in queue.priority_rules if rule.segment in segments)


__all__ = [
    "ACCEPTED_FORMS",
    "TIERS",
    "EscalationStep",
    "OverflowTarget",
    "PriorityRule",
    "QueueSpec",
    "Requirements",
    "ServiceLevel",
    "Strategy",
    "Tier",
    "misordered_steps",
    "next_change",
    "parse_step",
    "priority_for",
    "requirements_at",
]
