"""Queue definitions from ``skills/*.yaml`` (the ACD itself builds on these).

For now a queue has a tier and a calendar; skills, escalation steps and priorities come with the
skill-based ACD. The IVR's ``queue`` nodes must name a queue defined here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Tier = Literal["general", "specialist", "enterprise"]


class QueueSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    tier: Tier
    #: calendar (in ``dialplan/hours.yaml``) giving the queue's operator hours
    calendar: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    description: str = ""
