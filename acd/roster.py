"""The operator roster from ``skills/operators.yaml``: who can take which calls.

Each operator is keyed by an id that is also their SIP username (and the name of their generated
PJSIP endpoint, see ``unico.pbx.operators``), belongs to one or more tiers, sits at a site and has a
proficiency 1..10 per skill. Skill names are checked against ``skills:`` by the config loader.

Supervisors (``supervisors:``) get softphones the same way but are never routed calls: they listen
to, whisper to or barge into operators' conversations (``unico.supervision``).

Example::

    operators:
      op1001:
        name: Giulia Rossi
        site: roma
        tiers: [general, specialist]
        skills: {bancoposta: 9, italiano: 10}
    supervisors:
      sup9001: {name: Elena Greco, site: roma}
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from acd.queues import Tier
from acd.skills import Level

#: SIP usernames we accept: letters, digits, '.', '_', '-' (RFC 3261 allows more, but the id is also
#: an Asterisk section name, where ';', '[' and ']' would break the generated file)
OPERATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
# the name goes into callerid = "<name>" <id>: no quotes, angle brackets or config syntax
_DISPLAY_NAME = r"^[^\"<>;\[\]\r\n\\]+$"
_ENDPOINT = r"^[A-Za-z]+/[A-Za-z0-9_.@:-]+$"


class OperatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=_DISPLAY_NAME, max_length=60)]
    site: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    tiers: Annotated[tuple[Tier, ...], Field(min_length=1)]
    skills: dict[str, Level] = {}
    #: dial string of the softphone; None means the generated ``PJSIP/<id>``
    endpoint: Annotated[str | None, Field(pattern=_ENDPOINT)] = None
    #: calls at once; the ACD offers one call at a time, so only 1 is supported for now
    max_contacts: Annotated[int, Field(ge=1, le=1)] = 1

    @field_validator("tiers")
    @classmethod
    def _distinct(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if len(set(tiers)) != len(tiers):
            raise ValueError("a tier is listed twice")
        return tiers

    def dial_string(self, operator_id: str) -> str:
        """``PJSIP/op1001`` unless the roster names another endpoint."""
        return self.endpoint or f"PJSIP/{operator_id}"

    def has_skills(self, needed: dict[str, int]) -> bool:
        """True if every needed skill is at or above its minimum level."""
        return all(self.skills.get(skill, 0) >= level for skill, level in needed.items())


class SupervisorSpec(BaseModel):
    """A supervisor's softphone: ``PJSIP/<id>`` (generated like an operator's) unless ``endpoint``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=_DISPLAY_NAME, max_length=60)]
    site: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    endpoint: Annotated[str | None, Field(pattern=_ENDPOINT)] = None

    def dial_string(self, supervisor_id: str) -> str:
        return self.endpoint or f"PJSIP/{supervisor_id}"


def is_sip_username(value: str) -> bool:
    return OPERATOR_ID.match(value) is not None


__all__ = ["OPERATOR_ID", "OperatorSpec", "SupervisorSpec", "is_sip_username"]
