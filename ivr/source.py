"""YAML that remembers where every value came from.

Admins edit the YAML under ``dialplan/`` and ``skills/`` by hand, so every error must name the file
and the line. PyYAML's composer keeps a ``Mark`` on every node; we build plain Python values from the
node tree and record ``path -> (file, line)`` on the side, so a later schema error at
``("nodes", "main", "choices", "7")`` can still point at the line the admin wrote.

Example::

    doc = load_yaml(Path("dialplan/main.yaml"))
    doc.data["nodes"]["main"]["type"]        # 'menu'
    doc.where(("nodes", "main", "type"))     # Location(file=..., line=12)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]

# Bounds for one admin-edited file (reference/reliability.md F10: "yaml.safe_load with size/alias
# limits"). The shipped files hold a few hundred values in a few KB; these stop what no admin
# writes by hand before it takes the memory or the stack of the controller that (re)loads it:
# - a pasted dump: MAX_FILE_BYTES;
# - an alias bomb ("billion laughs"): a few lines where each list repeats the previous one nine
#   times expand to 9^n values, so values are counted as they are built (MAX_VALUES);
# - nesting deeper than any config ("[[[[..."): PyYAML composes recursively and would raise
#   RecursionError, so depth is checked on the parser's events first (MAX_DEPTH).
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_VALUES = 200_000
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Location:
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class ConfigError(Exception):
    """One problem in an admin-edited file, with its place."""

    def __init__(self, location: Location | None, message: str) -> None:
        self.location = location
        self.message = message
        super().__init__(f"{location}: {message}" if location else message)


class ConfigErrors(Exception):
    """Every problem found in one load, so an admin can fix them all in one go."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class YamlDocument:
    file: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def where(self, path: Iterable[str | int]) -> Location:
        """The line of ``path``, or of its nearest parent that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return Location(self.file, self.lines[key])
            key = key[:-1]
        return Location(self.file, self.lines.get((), 1))


def load_yaml(file: Path) -> YamlDocument:
    """Parse one YAML file into plain values plus a line map; raise ConfigError on bad YAML.

    Mapping keys are kept as written (``01`` stays ``"01"``, ``1`` becomes ``"1"``) because DTMF keys
    and phone numbers are strings, whatever YAML's implicit typing thinks. Duplicate keys, which
    PyYAML silently accepts, are an error: the second one would otherwise win without a word.
    """
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(Location(file, 1), f"file too large: {size} bytes, at most {MAX_FILE_BYTES}")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(Location(file, 1), f"cannot read file: {exc}") from None
    try:
        # the reader checks the text when it is built: a control character raises here already
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise ConfigError(Location(file, _line_of(exc, text)), f"YAML error: {_first_line(exc)}") from None
    try:
        _check_depth(file, text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(Location(file, line), f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(Location(file, _line_of(exc, text)), f"YAML error: {_first_line(exc)}") from None
    finally:
        loader.dispose()
    doc = YamlDocument(file=file, data={})
    if root is None:
        return doc
    doc.data = _build(root, (), doc, loader)
    return doc


def _check_depth(file: Path, text: str) -> None:
    """Raise ConfigError at the first collection nested more than MAX_DEPTH deep.

    The parser yields events without recursion, so this is safe on any input; its YAML errors
    propagate as they would from composing.
    """
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise ConfigError(Location(file, line), f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _line_of(exc: yaml.YAMLError, text: str) -> int:
    """The 1-based line of a reader error (it gives a character position, not a mark), else 1."""
    position = getattr(exc, "position", None)
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else 1


def _first_line(exc: yaml.YAMLError) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _build(node: yaml.Node, path: PathKey, doc: YamlDocument, loader: yaml.SafeLoader) -> Any:
    if len(doc.lines) >= MAX_VALUES:  # one entry per value built, aliases expanded
        raise ConfigError(
            Location(doc.file, node.start_mark.line + 1),
            f"more than {MAX_VALUES} values (aliases that repeat aliases expand to a huge document)",
        )
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(Location(doc.file, key_node.start_mark.line + 1), "keys must be plain text")
            key = str(key_node.value)
            if key in result:
                raise ConfigError(
                    Location(doc.file, key_node.start_mark.line + 1),
                    f"duplicate key {key!r} (first at line {doc.lines[(*path, key)]})",
                )
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*path, key), doc, loader)
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc, loader) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise ConfigError(Location(doc.file, node.start_mark.line + 1), str(exc)) from None
