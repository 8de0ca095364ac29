"""Skills from ``skills/skills.yaml``: product lines and languages an operator can be good at.

A skill is only a name with a kind; what an operator can do is a proficiency from 1 (can take the
call) to 10 (the best we have) per skill, given in the roster (``acd.roster``). Queues ask for a
minimum level per skill (``acd.queues``). The config loader checks every skill named anywhere
exists here.

Example::

    skills:
      bancoposta: {kind: product, description: Conto BancoPosta, carte, bollettini}
      inglese: {kind: language, description: Clienti in lingua inglese}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SkillKind = Literal["product", "language"]
#: skill names are lower-case words so that escalation sentences can name them unambiguously
SKILL_NAME = r"^[a-z][a-z0-9_]*$"
MIN_LEVEL = 1
MAX_LEVEL = 10


def _level(value: int) -> int:
    if not MIN_LEVEL <= value <= MAX_LEVEL:
        raise ValueError(f"level must be between {MIN_LEVEL} and {MAX_LEVEL}, not {value}")
    return value


#: a proficiency (operator) or minimum level (queue), 1..10; YAML must give a plain integer
Level = Annotated[int, Field(strict=True), AfterValidator(_level)]


class SkillSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: SkillKind
    description: str = ""


__all__ = ["MAX_LEVEL", "MIN_LEVEL", "SKILL_NAME", "Level", "SkillKind", "SkillSpec"]
