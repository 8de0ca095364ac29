"""Load and check the whole admin configuration: ``dialplan/*.yaml`` and ``skills/*.yaml``.

Every file is parsed with line numbers (``ivr.source``), each item is validated by its pydantic
model, then cross references are checked with all files known: node targets, prompts (with a text
for every language), calendars, queues, action handlers and ``$variables``; for the ACD, skills named
by queues and operators, escalation steps and overflow targets, and that every queue has at least one
operator who could take its calls. All problems are
collected and raised together as ``ConfigErrors``, each naming file and line. The result is an
immutable ``IvrConfig``; a running controller swaps it atomically on reload, and calls in progress
keep the object they started with, so a reload never drops or disturbs a call.

Example::

    config = load_config(Path("dialplan"), Path("skills"))   # raises ConfigErrors
    config.numbers["803160"].entry                            # 'main'
    config.operators["op1001"].skills                         # {'bancoposta': 9, ...}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from acd.queues import QueueSpec, misordered_steps, requirements_at
from acd.roster import OperatorSpec, SupervisorSpec, is_sip_username
from acd.skills import SKILL_NAME, SkillSpec
from ivr.actions import Registry, registry
from ivr.hours import Calendar, CalendarSpec
from ivr.schema import (
    NUMBER_KEY,
    ActionNode,
    CollectNode,
    DialplanSettings,
    HoursNode,
    LanguageNode,
    MenuNode,
    Node,
    NumberSpec,
    QueueNode,
    RecordNode,
    SayNode,
    SetNode,
    variable_of,
)
from ivr.source import ConfigError, ConfigErrors, Location, YamlDocument, load_yaml

DIALPLAN_SECTIONS = ("settings", "numbers", "prompts", "calendars", "nodes")
SKILLS_SECTIONS = ("skills", "operators", "supervisors", "queues")
_NODE = TypeAdapter[Node](Node)
_PROMPT = TypeAdapter(dict[str, str])


@dataclass(frozen=True)
class IvrConfig:
    settings: DialplanSettings
    numbers: dict[str, NumberSpec]
    nodes: dict[str, Node]
    prompts: dict[str, dict[str, str]]
    calendars: dict[str, Calendar]
    queues: dict[str, QueueSpec]
    version: str
    locations: dict[str, Location] = field(default_factory=dict)
    skills: dict[str, SkillSpec] = field(default_factory=dict)
    operators: dict[str, OperatorSpec] = field(default_factory=dict)
    #: never routed calls; they monitor conversations (``unico.supervision``)
    supervisors: dict[str, SupervisorSpec] = field(default_factory=dict)

    def prompt_stem(self, name: str, language: str) -> str:
        """File stem of a text prompt's rendering: a hash of voice and text, so edits re-render."""
        voice = self.settings.voices.get(language, language)
        text = self.prompts[name][language]
        digest = hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()[:16]
        return f"{language}/{name}-{digest}"

    def text_prompts(self) -> Iterator[tuple[str, str, str, str]]:
        """(stem, language, voice, text) for every prompt text to render."""
        for name, texts in self.prompts.items():
            for language, text in texts.items():
                voice = self.settings.voices.get(language, language)
                yield self.prompt_stem(name, language), language, voice, text


def node_targets(node: Node) -> Iterator[tuple[tuple[str, ...], str]]:
    """(field path, target node) for every node reference in ``node``."""
    for name in ("next", "fallback", "on_error", "open", "closed", "unavailable", "after_call", "too_short"):
        value = getattr(node, name, None)
        if value is not None:
            yield (name,), value
    if isinstance(node, MenuNode):
        for key, target in node.choices.items():
            yield ("choices", key), target
    if isinstance(node, ActionNode):
        for key, target in node.results.items():
            yield ("results", key), target


def prompt_items(node: Node) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for name in ("prompt", "invalid", "no_input", "before", "after"):
        for i, item in enumerate(getattr(node, name, None) or []):
            yield (name, i), item
    if isinstance(node, SayNode):
        yield ("value",), f"{node.say_as}:{node.value}"


class _Collector:
    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        # section -> name -> (value, document, path in document)
        self.items: dict[str, dict[str, tuple[Any, YamlDocument, tuple[str, ...]]]] = {}
        # names that exist but failed validation: references to them are not errors of their own
        self.invalid: dict[str, dict[str, Any]] = {}

    def error(self, location: Location | None, message: str) -> None:
        self.errors.append(ConfigError(location, message))

    def add_file(self, doc: YamlDocument, sections: tuple[str, ...]) -> None:
        if doc.data in (None, {}):
            return
        if not isinstance(doc.data, dict):
            self.error(doc.where(()), "the file must be a mapping of sections")
            return
        for section, body in doc.data.items():
            if section not in sections:
                self.error(
                    doc.where((section,)),
                    f"unknown section {section!r}; expected one of: {', '.join(sections)}",
                )
                continue
            if section == "settings":
                if "settings" in self.items:
                    _, other, _ = self.items["settings"]["settings"]
                    self.error(doc.where((section,)), f"settings already given in {other.file}")
                self.items.setdefault("settings", {})["settings"] = (body, doc, (section,))
                continue
            if not isinstance(body, dict):
                self.error(doc.where((section,)), f"{section!r} must be a mapping of names")
                continue
            bucket = self.items.setdefault(section, {})
            for name, value in body.items():
                if name in bucket:
                    _, other, path = bucket[name]
                    self.error(
                        doc.where((section, name)),
                        f"{section[:-1]} {name!r} is already defined at {other.where(path)}",
                    )
                    continue
                bucket[name] = (value, doc, (section, name))

    def validate(self, section: str, model: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, (value, doc, path) in self.items.get(section, {}).items():
            try:
                if isinstance(model, TypeAdapter):
                    result[name] = model.validate_python(value)
                else:
                    result[name] = model.model_validate(value)
            except ValidationError as exc:
                self.invalid.setdefault(section, {})[name] = value
                for err in exc.errors():
                    # list indexes stay ints: the line map knows ("escalation", 1), not ("escalation", "1")
                    loc = tuple(p if isinstance(p, int) else str(p) for p in err["loc"] if not _is_union_tag(p, value))
                    if err["type"].startswith("union_tag"):
                        loc = (*loc, "type")
                    where = ".".join((name, *map(str, loc)))
                    self.error(doc.where((*path, *loc)), f"{section} {where}: {_message(err)}")
        return result

    def where(self, section: str, name: str, *sub: str | int) -> Location | None:
        entry = self.items.get(section, {}).get(name)
        return entry[1].where((*entry[2], *sub)) if entry else None


def _is_union_tag(part: Any, value: Any) -> bool:
    # pydantic puts the discriminator value ('menu') into loc for tagged unions; drop it
    return isinstance(value, dict) and part == value.get("type")


def _message(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] == "union_tag_invalid":
        return msg.replace("Input tag", "node type")
    if err["type"] == "union_tag_not_found":
        return (
            "every node needs a 'type' (play, menu, collect, say, action, hours, record, queue, language, set, hangup)"
        )
    if err["type"] == "extra_forbidden":
        return "unknown field (check the spelling)"
    if err["type"] == "missing":
        return "required field is missing"
    return msg.removeprefix("Value error, ")


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def load_config(dialplan_dir: Path, skills_dir: Path | None = None, *, handlers: Registry = registry) -> IvrConfig:
    """Load, validate and cross-check every file; raise ``ConfigErrors`` listing all problems."""
    collector = _Collector()
    digest = hashlib.sha256()
    if not dialplan_dir.is_dir():
        raise ConfigErrors([ConfigError(None, f"{dialplan_dir}: dialplan folder not found")])
    for folder, sections in ((dialplan_dir, DIALPLAN_SECTIONS), (skills_dir, SKILLS_SECTIONS)):
        if folder is None or not folder.is_dir():
            continue
        for file in _yaml_files(folder):
            digest.update(file.name.encode() + b"\0")
            try:
                digest.update(file.read_bytes())
                collector.add_file(load_yaml(file), sections)
            except ConfigError as exc:
                collector.errors.append(exc)
            except OSError as exc:
                collector.error(Location(file, 1), f"cannot read file: {exc}")
    if collector.errors:
        raise ConfigErrors(collector.errors)

    settings_items = collector.items.get("settings", {})
    settings = DialplanSettings()
    if settings_items:
        value, doc, path = settings_items["settings"]
        try:
            settings = DialplanSettings.model_validate(value or {})
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(str(p) for p in err["loc"])
                collector.error(doc.where((*path, *loc)), f"settings {'.'.join(loc)}: {_message(err)}")

    numbers: dict[str, NumberSpec] = collector.validate("numbers", NumberSpec)
    prompts: dict[str, dict[str, str]] = collector.validate("prompts", _PROMPT)
    specs: dict[str, CalendarSpec] = collector.validate("calendars", CalendarSpec)
    nodes: dict[str, Node] = collector.validate("nodes", _NODE)
    queues: dict[str, QueueSpec] = collector.validate("queues", QueueSpec)
    skills: dict[str, SkillSpec] = collector.validate("skills", SkillSpec)
    operators: dict[str, OperatorSpec] = collector.validate("operators", OperatorSpec)
    supervisors: dict[str, SupervisorSpec] = collector.validate("supervisors", SupervisorSpec)
    calendars = {name: Calendar.from_spec(spec) for name, spec in specs.items()}

    _check_references(collector, settings, numbers, prompts, calendars, nodes, queues, handlers)
    if not numbers and not collector.invalid.get("numbers"):
        # an emptied numbers.yaml must still be named, so the admin knows where to look
        numbers_file = dialplan_dir / "numbers.yaml"
        collector.error(
            Location(numbers_file if numbers_file.exists() else dialplan_dir, 1),
            "no numbers defined: add a 'numbers:' section mapping a number to an entry node",
        )
    _check_acd(collector, skills, operators, queues)
    _check_supervisors(collector)
    if collector.errors:
        raise ConfigErrors(collector.errors)
    locations = {name: where for name in nodes if (where := collector.where("nodes", name))}
    return IvrConfig(
        settings=settings,
        numbers=numbers,
        nodes=nodes,
        prompts=prompts,
        calendars=calendars,
        queues=queues,
        version=digest.hexdigest()[:12],
        locations=locations,
        skills=skills,
        operators=operators,
        supervisors=supervisors,
    )


def _check_references(
    c: _Collector,
    settings: DialplanSettings,
    numbers: dict[str, NumberSpec],
    prompts: dict[str, dict[str, str]],
    calendars: dict[str, Calendar],
    nodes: dict[str, Node],
    queues: dict[str, QueueSpec],
    handlers: Registry,
) -> None:
    languages = set(settings.languages)
    broken = {section: set(names) for section, names in c.invalid.items()}
    node_names = set(nodes) | broken.get("nodes", set())
    prompt_names = set(prompts) | broken.get("prompts", set())
    calendar_names = set(calendars) | broken.get("calendars", set())
    queue_names = set(queues) | broken.get("queues", set())
    for number, spec in numbers.items():
        if not NUMBER_KEY.match(number):
            c.error(c.where("numbers", number), f"number {number!r} must be 2-32 digits")
        if spec.entry not in node_names:
            c.error(c.where("numbers", number, "entry"), f"entry node {spec.entry!r} is not defined")
        if spec.area is not None and spec.area not in calendar_names:
            c.error(c.where("numbers", number, "area"), f"calendar {spec.area!r} is not defined")
        if spec.language is not None and spec.language not in languages:
            c.error(c.where("numbers", number, "language"), f"language {spec.language!r} is not in settings.languages")
    for key in ("unknown_number", "overload"):
        name = getattr(settings, key)
        if name is not None and name not in node_names:
            c.error(c.where("settings", "settings", key), f"node {name!r} is not defined")

    for name, texts in prompts.items():
        for language in sorted(languages - set(texts)):
            c.error(c.where("prompts", name), f"prompt {name!r} has no {language!r} text")
        for language in sorted(set(texts) - languages):
            c.error(
                c.where("prompts", name, language),
                f"prompt {name!r}: language {language!r} is not in settings.languages",
            )
        for language, text in texts.items():
            if not text.strip():
                c.error(c.where("prompts", name, language), f"prompt {name!r} {language!r} text is empty")

    produced: set[str] = set()
    for node in nodes.values():
        if isinstance(node, CollectNode | RecordNode):
            produced.add(node.var)
        if isinstance(node, SetNode):
            produced.update(node.vars)
        if isinstance(node, ActionNode) and (handler := handlers.get(node.handler)):
            produced.update(handler.sets)
    for raw in c.invalid.get("nodes", {}).values():
        if isinstance(raw, dict):
            produced.add(str(raw.get("var", "recording")))
            if (handler := handlers.get(str(raw.get("handler")))) is not None:
                produced.update(handler.sets)

    for name, node in nodes.items():
        for field_path, target in node_targets(node):
            if target not in node_names:
                c.error(c.where("nodes", name, *field_path), f"node {name!r} goes to {target!r}, which is not defined")
        for path, item in prompt_items(node):
            var = variable_of(item)
            if var is not None and var not in produced:
                c.error(
                    c.where("nodes", name, *path), f"variable ${var} is never set by a collect, record or action node"
                )
            elif ":" not in item and item not in prompt_names:
                c.error(c.where("nodes", name, *path), f"prompt {item!r} is not defined in any 'prompts:' section")
        if isinstance(node, HoursNode) and node.calendar not in calendar_names:
            c.error(c.where("nodes", name, "calendar"), f"calendar {node.calendar!r} is not defined")
        if isinstance(node, QueueNode) and node.queue not in queue_names:
            c.error(c.where("nodes", name, "queue"), f"queue {node.queue!r} is not defined in skills/")
        if isinstance(node, LanguageNode) and node.language not in languages:
            c.error(c.where("nodes", name, "language"), f"language {node.language!r} is not in settings.languages")
        if isinstance(node, ActionNode):
            _check_action(c, name, node, handlers)
    for name, queue in queues.items():
        if queue.calendar not in calendar_names:
            c.error(c.where("queues", name, "calendar"), f"calendar {queue.calendar!r} is not defined")


def _check_acd(
    c: _Collector, skills: dict[str, SkillSpec], operators: dict[str, OperatorSpec], queues: dict[str, QueueSpec]
) -> None:
    """Skills, operators and queues against each other.

    A check that depends on something already reported broken (an invalid operator, an unknown
    skill) is skipped, so each mistake is reported once, where it was made.
    """
    broken = {section: set(names) for section, names in c.invalid.items()}
    skill_names = set(skills) | broken.get("skills", set())
    queue_names = set(queues) | broken.get("queues", set())
    roster_complete = not broken.get("operators") and not broken.get("skills")
    for name in skills:
        if not re.match(SKILL_NAME, name):
            c.error(c.where("skills", name), f"skill name {name!r} must be a lower-case word (a-z, 0-9, _)")

    for op_id, operator in operators.items():
        if not is_sip_username(op_id):
            roster_complete = False
            c.error(
                c.where("operators", op_id),
                f"operator id {op_id!r} is not a valid SIP username (1-40 letters, digits, '.', '_', '-')",
            )
        for skill in operator.skills:
            if skill not in skill_names:
                roster_complete = False
                c.error(c.where("operators", op_id, "skills", skill), f"skill {skill!r} is not defined in 'skills:'")

    for name, queue in queues.items():
        known = True
        for skill in queue.required_skills:
            if skill not in skill_names:
                known = False
                c.error(
                    c.where("queues", name, "required_skills", skill), f"skill {skill!r} is not defined in 'skills:'"
                )
        for i, step in enumerate(queue.escalation):
            where = c.where("queues", name, "escalation", i)
            for skill in step.need or {}:
                if skill not in skill_names:
                    known = False
                    c.error(where, f"queue {name!r}: skill {skill!r} is not defined in 'skills:'")
            target = step.overflow
            if target is None:
                continue
            if target.kind == "queue" and target.name not in queue_names:
                c.error(where, f"queue {name!r} overflows to {target.name!r}, which is neither a queue nor a tier")
            elif target.kind == "queue" and target.name == name:
                c.error(where, f"queue {name!r} overflows to itself")
            elif (
                target.kind == "tier"
                and roster_complete
                and not any(target.name in o.tiers for o in operators.values())
            ):
                c.error(where, f"queue {name!r} overflows to tier {target.name!r}, which has no operators")
        for i in misordered_steps(queue):
            before, step = queue.escalation[i - 1], queue.escalation[i]
            c.error(
                c.where("queues", name, "escalation", i),
                f"queue {name!r}: step {step.text!r} ({step.after_seconds}s) must come later than the step before "
                f"({before.after_seconds}s); list the steps in increasing time order",
            )
        if known and roster_complete:
            needed, _ = requirements_at(queue, 0)
            if not any(queue.tier in o.tiers and o.has_skills(needed) for o in operators.values()):
                wanted = " and ".join(f"{skill} >= {level}" for skill, level in sorted(needed.items()))
                c.error(
                    c.where("queues", name),
                    f"queue {name!r} can never be served: no operator in tier {queue.tier!r}"
                    + (f" has {wanted}" if wanted else ""),
                )


def _check_supervisors(c: _Collector) -> None:
    """Supervisor ids are SIP usernames too, and share the PJSIP namespace with the operators."""
    operator_ids = set(c.items.get("operators", {}))
    for sup_id in c.items.get("supervisors", {}):
        if not is_sip_username(sup_id):
            c.error(
                c.where("supervisors", sup_id),
                f"supervisor id {sup_id!r} is not a valid SIP username (1-40 letters, digits, '.', '_', '-')",
            )
        elif sup_id in operator_ids:
            c.error(
                c.where("supervisors", sup_id),
                f"supervisor {sup_id!r} is also an operator (at {c.where('operators', sup_id)}); "
                "one softphone cannot be both",
            )


def _check_action(c: _Collector, name: str, node: ActionNode, handlers: Registry) -> None:
    spec = handlers.get(node.handler)
    if spec is None:
        known = ", ".join(handlers.names()) or "none"
        c.error(c.where("nodes", name, "handler"), f"unknown action handler {node.handler!r} (known: {known})")
        return
    for missing in sorted(spec.args - set(node.args)):
        c.error(c.where("nodes", name, "args"), f"handler {node.handler!r} needs argument {missing!r}")
    for extra in sorted(set(node.args) - spec.args):
        c.error(c.where("nodes", name, "args", extra), f"handler {node.handler!r} takes no argument {extra!r}")
    for result in node.results:
        if result != "default" and result not in spec.results:
            c.error(
                c.where("nodes", name, "results", result),
                f"handler {node.handler!r} never returns {result!r} (it returns: {', '.join(sorted(spec.results))})",
            )
    for arg, value in node.args.items():
        if value.startswith("$") and not value[1:].isidentifier():
            c.error(c.where("nodes", name, "args", arg), f"bad variable reference {value!r}")


__all__ = [
    "ConfigError",
    "ConfigErrors",
    "IvrConfig",
    "load_config",
    "node_targets",
    "prompt_items",
]
