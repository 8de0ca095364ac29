"""Admin YAML is rejected with file, line and a plain message; the default config is valid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.source import ConfigErrors, Location
from tests.unit.config_copy import copy_shipped_config, errors_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dialplan(tmp_path: Path) -> Path:
    """A copy of the shipped dialplan and skills to break."""
    return copy_shipped_config(tmp_path)


def replace_line(file: Path, old: str, new: str) -> int:
    lines = file.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if old in line:
            lines[number - 1] = line.replace(old, new)
            file.write_text("\n".join(lines) + "\n")
            return number
    raise AssertionError(f"{old!r} not in {file}")


def test_given_shipped_config_when_loaded_then_valid() -> None:
    config = load_config(ROOT / "dialplan", ROOT / "skills")
    assert config.numbers["803160"].entry == "welcome"
    assert config.numbers["803161"].area == "internal"
    assert {"general", "spedizioni", "bancoposta", "mobile", "enterprise"} <= set(config.queues)


def test_given_yaml_syntax_error_when_loaded_then_file_and_line(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    line = replace_line(file, "    type: menu", "    type: [menu")
    (error,) = errors_of(dialplan)
    assert error.startswith(f"{file}:")
    assert "YAML syntax error" in error
    reported = int(error.split(":")[1])
    assert line <= reported <= line + 2


def test_given_unknown_node_reference_when_loaded_then_named_with_line(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    line = replace_line(file, '"1": info', '"1": informazioni')
    (error,) = errors_of(dialplan)
    assert error == f"{file}:{line}: node 'main' goes to 'informazioni', which is not defined"


def test_given_bad_dtmf_key_when_loaded_then_named_with_line(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    line = replace_line(file, '"8": italian', '"A": italian')
    (error,) = errors_of(dialplan)
    assert error.startswith(f"{file}:")
    assert "choice key 'A' is not a single DTMF key" in error
    assert abs(int(error.split(":")[1]) - line) <= 8  # the choices block


def test_given_missing_prompt_when_loaded_then_named_with_line(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    line = replace_line(file, "prompt: [main_menu]", "prompt: [menu_principale]")
    (error,) = errors_of(dialplan)
    assert error == f"{file}:{line}: prompt 'menu_principale' is not defined in any 'prompts:' section"


def test_given_prompt_without_english_when_loaded_then_error(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "prompts.yaml"
    line = replace_line(file, '    en: "Thank you for calling. Goodbye."', "")
    (error,) = errors_of(dialplan)
    assert error == f"{file}:{line - 2}: prompt 'goodbye' has no 'en' text"


def test_given_duplicate_key_when_loaded_then_both_lines_named(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    text = file.read_text().replace('      "9": english\n', '      "9": english\n      "9": italian\n', 1)
    file.write_text(text)
    (error,) = errors_of(dialplan)
    assert "duplicate key '9'" in error and error.startswith(f"{file}:")


def test_given_unknown_field_and_type_when_loaded_then_each_reported(dialplan: Path) -> None:
    extra = dialplan / "dialplan" / "extra.yaml"
    extra.write_text("nodes:\n  x:\n    type: menuu\n  y:\n    type: play\n    prompt: [goodbye]\n    nxt: main\n")
    errors = errors_of(dialplan)
    assert any(e.startswith(f"{extra}:3:") and "node type" in e for e in errors), errors
    assert any(e.startswith(f"{extra}:7:") and "unknown field" in e for e in errors), errors
    assert any(e.startswith(f"{extra}:4:") and "y.next: required field is missing" in e for e in errors), errors


def test_given_node_defined_in_two_files_when_loaded_then_both_places_named(dialplan: Path) -> None:
    extra = dialplan / "dialplan" / "extra.yaml"
    extra.write_text("nodes:\n  goodbye:\n    type: hangup\n")
    (error,) = errors_of(dialplan)
    # files load in name order, so the copy in main.yaml is the second one
    assert error.startswith(f"{dialplan / 'dialplan' / 'main.yaml'}:")
    assert f"node 'goodbye' is already defined at {extra}:2" in error


def test_given_unknown_handler_queue_and_calendar_when_loaded_then_all_reported(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    replace_line(file, "handler: parcel_tracking", "handler: parcel_track")
    replace_line(file, "queue: general,", "queue: generale,")
    replace_line(
        file, "postal_hours: {type: hours, calendar: customers", "postal_hours: {type: hours, calendar: clienti"
    )
    errors = errors_of(dialplan)
    assert len(errors) == 3, errors
    assert any("unknown action handler 'parcel_track'" in e for e in errors)
    assert any("queue 'generale' is not defined" in e for e in errors)
    assert any("calendar 'clienti' is not defined" in e for e in errors)


def test_given_bad_regex_when_loaded_then_reported_without_knock_on_errors(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    line = replace_line(file, 'pattern: "[0-9]{12}"', 'pattern: "[0-9"')
    (error,) = errors_of(dialplan)
    assert error.startswith(f"{file}:{line}: nodes tracking_code.pattern:")
    assert "not a valid regular expression" in error


def test_given_min_above_max_when_loaded_then_reported(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    replace_line(file, "min_length: 12", "min_length: 13")
    (error,) = errors_of(dialplan)
    assert "min_length is larger than max_length" in error


def test_given_unset_variable_when_loaded_then_reported(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "main.yaml"
    line = replace_line(file, "args: {code: $parcel_code}", "args: {code: $parcel_code}")
    text = file.read_text().replace("    value: $parcel_code\n", "    value: $codice\n", 1)
    file.write_text(text)
    errors = errors_of(dialplan)
    assert any("variable $codice is never set" in e for e in errors), errors
    assert line > 0


def test_given_bad_hours_when_loaded_then_reported(dialplan: Path) -> None:
    file = dialplan / "dialplan" / "hours.yaml"
    line = replace_line(file, 'mon-sat: "08:00-20:00"', 'mon-sat: "20:00-08:00"')
    (error,) = errors_of(dialplan)
    assert error.startswith((f"{file}:{line}:", f"{file}:{line - 1}:")), error  # the value or its 'hours:' block
    assert "'20:00-08:00' ends before it starts" in error


def test_given_non_utf8_file_when_loaded_then_reported(dialplan: Path) -> None:
    bad = dialplan / "dialplan" / "bad.yaml"
    bad.write_bytes(b"nodes:\n  x: \xff\xfe\n")
    (error,) = errors_of(dialplan)
    assert error.startswith(f"{bad}:1:") and "cannot read file" in error


def test_given_a_control_character_in_a_menu_file_when_loading_then_error_names_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "dialplan", tmp_path / "dialplan")
    main = tmp_path / "dialplan" / "main.yaml"
    main.write_text(main.read_text() + "\n# pasted from a mail:\x1f\n")
    lines = main.read_text().count("\n")

    with pytest.raises(ConfigErrors) as caught:
        load_config(tmp_path / "dialplan")

    (error,) = caught.value.errors
    assert error.location == Location(main, lines)
    assert "special characters are not allowed" in error.message
