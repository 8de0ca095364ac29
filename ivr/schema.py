"""The shapes of the admin-edited IVR YAML (``dialplan/*.yaml``), as pydantic models.

A dialplan folder holds any number of YAML files; each may carry these top-level sections, and
names must be unique across files:

``settings``   languages, default language, node for unknown numbers
``numbers``    dialled number -> entry node, area (calendar) and default language
``prompts``    name -> text per language, rendered to 8 kHz WAV by espeak-ng
``calendars``  office hours (see ``ivr.hours``)
``nodes``      the call flow; each node has a ``type`` (play, menu, collect, say, action, hours,
               record, queue, language, hangup)

A prompt list item is a prompt name, or ``sound:<asterisk sound>``, ``digits:<digits or $var>``,
``number:<number or $var>``. Cross references (nodes, prompts, calendars, queues, handlers,
variables) are checked by ``ivr.config``, which knows every file.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DTMF_KEYS = "0123456789*#"
NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
MEDIA_PREFIXES = ("sound:", "digits:", "number:")
_SOUND = re.compile(r"^[A-Za-z0-9_\-/]+$")
_VAR = re.compile(r"^\$([A-Za-z][A-Za-z0-9_]*)$")

NodeName = Annotated[str, Field(pattern=NAME)]
VarName = Annotated[str, Field(pattern=NAME)]
Seconds = Annotated[float, Field(gt=0, le=120)]
Retries = Annotated[int, Field(ge=0, le=9)]


def check_prompt_item(item: str) -> str:
    """Validate the form of one prompt-list item (names are resolved later)."""
    if item.startswith("sound:"):
        if not _SOUND.match(item[6:]) or ".." in item:
            raise ValueError(f"bad sound name in {item!r}")
    elif item.startswith(("digits:", "number:")):
        value = item.split(":", 1)[1]
        if not (_VAR.match(value) or (value.isdigit() and len(value) <= 32)):
            raise ValueError(f"{item!r}: expected digits or a $variable")
    elif not re.match(NAME, item):
        raise ValueError(f"{item!r} is neither a prompt name nor sound:/digits:/number:")
    return item


def variable_of(item: str) -> str | None:
    """The ``$var`` a prompt item reads, if any."""
    if item.startswith(("digits:", "number:")):
        match = _VAR.match(item.split(":", 1)[1])
        return match.group(1) if match else None
    return None


PromptList = list[Annotated[str, Field(min_length=1)]]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: sets the call's outcome when the node is visited (e.g. ``contained``); the last one wins
    outcome: Annotated[str, Field(pattern=NAME)] | None = None

    @field_validator("prompt", "invalid", "no_input", "before", "after", mode="after", check_fields=False)
    @classmethod
    def _items(cls, value: list[str]) -> list[str]:
        for item in value:
            check_prompt_item(item)
        return value


class PlayNode(_Node):
    type: Literal["play"]
    prompt: PromptList = Field(min_length=1)
    next: NodeName
    #: a key pressed during the prompt skips to ``next``
    barge_in: bool = False


class MenuNode(_Node):
    type: Literal["menu"]
    prompt: PromptList = Field(min_length=1)
    choices: dict[str, NodeName] = Field(min_length=1)
    timeout: Seconds = 5
    retries: Retries = 2
    invalid: PromptList = []
    no_input: PromptList = []
    fallback: NodeName

    @field_validator("choices")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if len(key) != 1 or key not in DTMF_KEYS:
                raise ValueError(f"choice key {key!r} is not a single DTMF key (0-9, * or #)")
        return value


class CollectNode(_Node):
    type: Literal["collect"]
    prompt: PromptList = Field(min_length=1)
    var: VarName
    min_length: Annotated[int, Field(ge=1, le=64)] = 1
    max_length: Annotated[int, Field(ge=1, le=64)]
    terminator: Literal["#", "*"] | None = "#"
    pattern: str | None = None
    timeout: Seconds = 7
    inter_digit_timeout: Seconds = 3
    retries: Retries = 2
    invalid: PromptList = []
    no_input: PromptList = []
    #: masked in contact records and logs (card numbers, customer codes)
    sensitive: bool = False
    next: NodeName
    fallback: NodeName

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _lengths(self) -> CollectNode:
        if self.min_length > self.max_length:
            raise ValueError("min_length is larger than max_length")
        return self


class SayNode(_Node):
    type: Literal["say"]
    before: PromptList = []
    value: str
    say_as: Literal["digits", "number"] = Field(alias="as")
    after: PromptList = []
    next: NodeName

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        check_prompt_item(f"digits:{value}")
        return value


class ActionNode(_Node):
    type: Literal["action"]
    handler: Annotated[str, Field(pattern=NAME)]
    args: dict[str, str] = {}
    #: handler result -> next node; ``default`` catches the others
    results: dict[str, NodeName] = Field(min_length=1)
    timeout: Seconds = 5
    on_error: NodeName


class HoursNode(_Node):
    type: Literal["hours"]
    calendar: Annotated[str, Field(pattern=NAME)]
    open: NodeName
    closed: NodeName


class RecordNode(_Node):
    type: Literal["record"]
    prompt: PromptList = Field(min_length=1)
    var: VarName = "recording"
    max_duration: Annotated[int, Field(ge=1, le=600)] = 120
    max_silence: Annotated[int, Field(ge=1, le=60)] = 5
    min_duration: Annotated[float, Field(ge=0, le=60)] = 1
    beep: bool = True
    terminate_on: Literal["#", "*", "none"] = "#"
    next: NodeName
    #: where to go when nothing (or less than min_duration) was recorded
    too_short: NodeName | None = None


class QueueNode(_Node):
    type: Literal["queue"]
    queue: Annotated[str, Field(pattern=NAME)]
    prompt: PromptList = []
    #: where the caller goes when the ACD cannot serve them: queue closed, full, nobody logged in
    #: who could take the call, or the queue's maximum wait reached (the path notes which)
    unavailable: NodeName
    #: where the caller goes when the operator hangs up first (a post-call survey); without it
    #: the call ends with the conversation
    after_call: NodeName | None = None


class LanguageNode(_Node):
    type: Literal["language"]
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")]
    next: NodeName


class SetNode(_Node):
    """Store fixed values in call variables (for example the complaint category a menu chose)."""

    type: Literal["set"]
    vars: Annotated[dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], str], Field(min_length=1)]
    next: NodeName


class HangupNode(_Node):
    type: Literal["hangup"]
    prompt: PromptList = []


Node = Annotated[
    PlayNode
    | MenuNode
    | CollectNode
    | SayNode
    | ActionNode
    | HoursNode
    | RecordNode
    | QueueNode
    | LanguageNode
    | SetNode
    | HangupNode,
    Field(discriminator="type"),
]


class NumberSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    entry: NodeName
    #: the calendar that gives this number's operator hours (customers, internal, ...)
    area: Annotated[str, Field(pattern=NAME)] | None = None
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")] | None = None


class DialplanSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]] = Field(default=["it", "en"], min_length=1)
    default_language: Annotated[str, Field(pattern=r"^[a-z]{2}$")] = "it"
    #: espeak-ng voice per language for text prompts
    voices: dict[str, str] = {"it": "it", "en": "en-gb"}
    #: node for numbers that reach the controller but are not in ``numbers``
    unknown_number: NodeName | None = None
    #: a flow that visits more nodes than this in one call is cut off (a loop in the YAML)
    max_node_visits: Annotated[int, Field(ge=10, le=10_000)] = 300
    #: calls one controller handles at once (IVR, queues, conversations); a caller beyond it hears
    #: the ``overload`` node (or is hung up) instead of the IVR: admission control for a burst
    max_calls: Annotated[int, Field(ge=1, le=100_000)] | None = None
    #: node for callers over ``max_calls`` (a short "please call again later")
    overload: NodeName | None = None

    @model_validator(mode="after")
    def _default_in_languages(self) -> DialplanSettings:
        if self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        return self


NUMBER_KEY = re.compile(r"^[0-9*#+]{2,32}$")
