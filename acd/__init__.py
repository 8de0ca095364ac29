"""Skill-based automatic call distribution: skills, the operator roster, queues and escalation."""

from acd.agents import Agent, AgentState, IllegalTransition, apply, heal
from acd.live import AgentChange, LiveState
from acd.queues import (
    TIERS,
    EscalationStep,
    OverflowTarget,
    PriorityRule,
    QueueSpec,
    Requirements,
    ServiceLevel,
    Strategy,
    Tier,
    next_change,
    parse_step,
    priority_for,
    requirements_at,
)
from acd.roster import OperatorSpec, SupervisorSpec, is_sip_username
from acd.routing import OperatorView, WaitingCall, best_call, best_operator
from acd.skills import Level, SkillKind, SkillSpec

__all__ = [
    "TIERS",
    "Agent",
    "AgentChange",
    "AgentState",
    "EscalationStep",
    "IllegalTransition",
    "Level",
    "LiveState",
    "OperatorSpec",
    "OperatorView",
    "OverflowTarget",
    "PriorityRule",
    "QueueSpec",
    "Requirements",
    "ServiceLevel",
    "SkillKind",
    "SkillSpec",
    "Strategy",
    "SupervisorSpec",
    "Tier",
    "WaitingCall",
    "apply",
    "best_call",
    "best_operator",
    "heal",
    "is_sip_username",
    "next_change",
    "parse_step",
    "priority_for",
    "requirements_at",
]
