"""Skill-based automatic call distribution: queues, tiers and (soon) operators."""

from acd.queues import QueueSpec, Tier

__all__ = ["QueueSpec", "Tier"]
