"""Hostile YAML: what no admin writes by hand is refused with the file's name, quickly and cheaply.

reference/reliability.md F10 asks for "yaml.safe_load with size/alias limits". Without the bounds
in ``ivr.source`` an alias bomb of eight lines expands to 43 million values (minutes of CPU and
gigabytes in the controller that reloads it), and ``[[[[...`` 3,000 deep raises RecursionError
(a traceback from ``unico check``, an unexpected exception in a reload). The hypothesis fuzzing of
the loader (tests/unit/test_fuzz.py) cannot find these: they need structure, not random text.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ivr.source import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, ConfigError, load_yaml
from tests.unit.config_copy import copy_shipped_config, errors_of

ROOT = Path(__file__).resolve().parents[2]


def alias_bomb(levels: int) -> str:
    """``levels`` lines, each a list of nine aliases of the line before: 9**levels values."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_shipped_config(tmp_path)


def test_given_an_alias_bomb_when_loaded_then_refused_naming_the_file_without_expanding_it(tmp_path: Path) -> None:
    # 9**6 = 531,441 values: well over the bound, yet small enough to expand if the bound is gone
    # (so a regression fails here instead of hanging the suite)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(6))

    with pytest.raises(ConfigError) as refused:
        load_yaml(bomb)

    assert str(refused.value).startswith(f"{bomb}:")
    assert f"more than {MAX_VALUES} values" in str(refused.value)


def test_given_an_alias_bomb_in_the_dialplan_when_checked_then_exit_1_naming_the_file(folder: Path) -> None:
    bomb = folder / "dialplan" / "zz_bomb.yaml"
    bomb.write_text(alias_bomb(8))  # 43 million values if expanded

    result = subprocess.run(
        [sys.executable, "-m", "unico.cli", "check", str(folder)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{bomb}:1: more than {MAX_VALUES} values" in result.stderr
    assert "Traceback" not in result.stderr


def test_given_nesting_deeper_than_any_config_when_loaded_then_an_error_not_a_recursion_error(folder: Path) -> None:
    deep = folder / "dialplan" / "zz_deep.yaml"
    deep.write_text("nodes: " + "[" * 3000 + "]" * 3000 + "\n")

    errors = errors_of(folder)

    assert errors == [f"{deep}:1: nested more than {MAX_DEPTH} levels deep"]


def test_given_nesting_within_the_bound_when_loaded_then_accepted(tmp_path: Path) -> None:
    nested = tmp_path / "nested.yaml"
    nested.write_text("a: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n")

    value = load_yaml(nested).data["a"]

    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == 1


def test_given_a_file_larger_than_the_bound_when_loaded_then_refused_before_parsing(folder: Path) -> None:
    huge = folder / "dialplan" / "zz_huge.yaml"
    with huge.open("w") as handle:
        handle.write("# padding\n" * (MAX_FILE_BYTES // 10 + 1))

    errors = errors_of(folder)

    assert errors == [f"{huge}:1: file too large: {huge.stat().st_size} bytes, at most {MAX_FILE_BYTES}"]


def test_given_a_roster_of_3000_operators_when_loaded_then_within_the_bounds(tmp_path: Path) -> None:
    roster = tmp_path / "operators.yaml"
    entries = [
        f"  op{n}: {{name: Operator {n}, skills: {{general: 5, postal: 3}}, max_contacts: 1}}" for n in range(3000)
    ]
    roster.write_text("operators:\n" + "\n".join(entries) + "\n")

    doc = load_yaml(roster)

    assert len(doc.data["operators"]) == 3000
    assert roster.stat().st_size < MAX_FILE_BYTES
