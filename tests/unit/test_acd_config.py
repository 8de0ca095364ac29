"""Skills, roster and queues: the shipped files load, each admin mistake is named with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from acd import OverflowTarget, QueueSpec, next_change, parse_step, priority_for, requirements_at
from ivr.config import load_config
from tests.unit.config_copy import copy_shipped_config, errors_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A copy of the shipped dialplan and skills to break."""
    return copy_shipped_config(tmp_path)


def line_of(file: Path, text: str) -> int:
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {file}")


def replace_line(file: Path, old: str, new: str) -> int:
    number = line_of(file, old)
    lines = file.read_text().splitlines()
    lines[number - 1] = lines[number - 1].replace(old, new)
    file.write_text("\n".join(lines) + "\n")
    return number


def test_given_shipped_skills_when_loaded_then_skills_operators_and_queues_parsed() -> None:
    config = load_config(ROOT / "dialplan", ROOT / "skills")
    assert {"spedizioni", "bancoposta", "postemobile"} == {n for n, s in config.skills.items() if s.kind == "product"}
    assert {"italiano", "inglese"} == {n for n, s in config.skills.items() if s.kind == "language"}
    assert len(config.operators) >= 6
    assert {tier for op in config.operators.values() for tier in op.tiers} == {"general", "specialist", "enterprise"}
    assert len({op.site for op in config.operators.values()}) >= 2
    assert config.operators["op1001"].dial_string("op1001") == "PJSIP/op1001"
    queue = config.queues["bancoposta"]
    assert queue.strategy == "best_skill"
    assert (queue.moh_class, queue.ring_timeout) == ("default", 15)
    assert [step.after_seconds for step in queue.escalation] == [0, 30, 90]


def test_given_shipped_bancoposta_queue_when_requirements_asked_over_time_then_relaxed_then_overflow() -> None:
    queue = load_config(ROOT / "dialplan", ROOT / "skills").queues["bancoposta"]
    assert requirements_at(queue, 0) == ({"bancoposta": 7, "italiano": 5}, None)
    assert requirements_at(queue, 45) == ({"bancoposta": 4, "italiano": 5}, None)
    assert requirements_at(queue, 120) == (
        {"bancoposta": 4, "italiano": 5},
        OverflowTarget(kind="tier", name="enterprise"),
    )
    assert next_change(queue, 45) == 90
    assert next_change(queue, 120) is None


def test_given_vip_rule_when_priority_computed_then_rule_added_to_base() -> None:
    queue = QueueSpec.model_validate(
        {
            "name": "Q",
            "tier": "general",
            "calendar": "c",
            "priority": 5,
            "priority_rules": [{"segment": "vip", "add": 10}],
        }
    )
    assert priority_for(queue, {"vip"}) == 15
    assert priority_for(queue, set()) == 5


@pytest.mark.parametrize(
    ("sentence", "seconds", "need", "overflow"),
    [
        ("at 0s need bancoposta >= 7", 0, {"bancoposta": 7}, None),
        ("after  2 min   need bancoposta>=4 and inglese >= 5", 120, {"bancoposta": 4, "inglese": 5}, None),
        ("after 90s overflow to enterprise", 90, None, OverflowTarget(kind="tier", name="enterprise")),
        ("after 90s overflow to the specialist tier", 90, None, OverflowTarget(kind="tier", name="specialist")),
        ("after 90 s overflow to mobile", 90, None, OverflowTarget(kind="queue", name="mobile")),
        ("after 1m overflow to queue enterprise", 60, None, OverflowTarget(kind="queue", name="enterprise")),
    ],
)
def test_given_escalation_sentence_when_parsed_then_typed_step(
    sentence: str, seconds: int, need: dict[str, int] | None, overflow: OverflowTarget | None
) -> None:
    step = parse_step(sentence)
    assert (step.after_seconds, step.need, step.overflow) == (seconds, need, overflow)


@pytest.mark.parametrize(
    "sentence",
    [
        "after 30 need bancoposta >= 4",
        "after 30s need bancoposta > 4",
        "after 30s need bancoposta >= 11",
        "after 30s overflow to the mobile tier",
        "dopo 30s overflow to enterprise",
    ],
)
def test_given_bad_escalation_sentence_when_parsed_then_value_error(sentence: str) -> None:
    with pytest.raises(ValueError):
        parse_step(sentence)


def test_given_unreadable_escalation_step_when_loaded_then_line_and_accepted_forms(home: Path) -> None:
    file = home / "skills" / "queues.yaml"
    line = replace_line(file, "after 30s need bancoposta >= 4", "after 30s want bancoposta 4")
    (error,) = errors_of(home)
    assert error.startswith(f"{file}:{line}: queues bancoposta.escalation.1: cannot read escalation step")
    assert "'at 0s need bancoposta >= 7'" in error
    assert "overflow to enterprise" in error


def test_given_steps_out_of_order_when_loaded_then_later_step_named(home: Path) -> None:
    file = home / "skills" / "queues.yaml"
    replace_line(file, "after 30s need bancoposta >= 4", "after 120s need bancoposta >= 4")
    line = line_of(file, "after 90s overflow to enterprise")
    (error,) = errors_of(home)
    assert error.startswith(f"{file}:{line}: queue 'bancoposta': step 'after 90s overflow to enterprise' (90s)")
    assert "increasing time order" in error


def test_given_operator_with_unknown_skill_when_loaded_then_one_error_at_its_line(home: Path) -> None:
    file = home / "skills" / "operators.yaml"
    line = replace_line(file, "{spedizioni: 7, postemobile: 4,", "{spedizioni: 7, postemobil: 4,")
    assert errors_of(home) == [f"{file}:{line}: skill 'postemobil' is not defined in 'skills:'"]


def test_given_queue_with_unknown_skill_when_loaded_then_one_error_at_its_line(home: Path) -> None:
    file = home / "skills" / "queues.yaml"
    line = replace_line(file, "{bancoposta: 7, italiano: 5}", "{bancoposta: 7, francese: 5}")
    assert errors_of(home) == [f"{file}:{line}: skill 'francese' is not defined in 'skills:'"]


def test_given_proficiency_eleven_when_loaded_then_range_error(home: Path) -> None:
    file = home / "skills" / "operators.yaml"
    line = replace_line(file, "{bancoposta: 9, spedizioni: 5,", "{bancoposta: 11, spedizioni: 5,")
    assert errors_of(home) == [
        f"{file}:{line}: operators op1001.skills.bancoposta: level must be between 1 and 10, not 11"
    ]


def test_given_unknown_overflow_target_when_loaded_then_error_at_step(home: Path) -> None:
    file = home / "skills" / "queues.yaml"
    line = replace_line(file, "after 90s overflow to enterprise", "after 90s overflow to enterprize")
    assert errors_of(home) == [
        f"{file}:{line}: queue 'bancoposta' overflows to 'enterprize', which is neither a queue nor a tier"
    ]


def test_given_queue_nobody_can_serve_when_loaded_then_queue_named(home: Path) -> None:
    file = home / "skills" / "queues.yaml"
    replace_line(file, "{bancoposta: 7, italiano: 5}", "{bancoposta: 7, inglese: 10}")
    line = line_of(file, "  bancoposta:")
    assert errors_of(home) == [
        f"{file}:{line}: queue 'bancoposta' can never be served: "
        "no operator in tier 'specialist' has bancoposta >= 7 and inglese >= 10"
    ]


def test_given_operator_id_in_two_files_when_loaded_then_duplicate_named(home: Path) -> None:
    first = home / "skills" / "operators.yaml"
    extra = home / "skills" / "zz_more_operators.yaml"
    extra.write_text("operators:\n  op1003:\n    name: Altra Persona\n    site: roma\n    tiers: [general]\n")
    assert errors_of(home) == [
        f"{extra}:2: operator 'op1003' is already defined at {first}:{line_of(first, 'op1003:')}"
    ]


def test_given_operator_id_not_a_sip_username_when_loaded_then_error(home: Path) -> None:
    file = home / "skills" / "operators.yaml"
    line = replace_line(file, "  op1002:", '  "op 1002":')
    assert errors_of(home) == [
        f"{file}:{line}: operator id 'op 1002' is not a valid SIP username (1-40 letters, digits, '.', '_', '-')"
    ]
