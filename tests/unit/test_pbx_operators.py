"""Operator PJSIP endpoints are generated from the roster; passwords are stable, private and hidden."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from ivr.config import IvrConfig, load_config
from unico.pbx.operators import ensure_operator_passwords, operator_pjsip, write_operators
from unico.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> IvrConfig:
    return load_config(ROOT / "dialplan", ROOT / "skills")


def sections(text: str) -> dict[str, list[str]]:
    """Section header -> its non-empty lines."""
    result: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line
            result[current] = []
        elif line.strip() and current:
            result[current].append(line)
    return result


def test_given_roster_when_rendered_then_endpoint_auth_and_aor_per_operator(config: IvrConfig) -> None:
    passwords = {op_id: SecretStr(f"pw-{op_id}-0123456789abcdef") for op_id in config.operators}
    text = operator_pjsip(config, passwords)
    found = sections(text)
    assert found["[op1001](operator-endpoint)"] == [
        "auth = op1001",
        "aors = op1001",
        'callerid = "Giulia Rossi" <op1001>',
    ]
    assert found["[op1001](operator-auth)"] == ["username = op1001", "password = pw-op1001-0123456789abcdef"]
    assert found["[op1001](operator-aor)"] == ["max_contacts = 1"]
    assert len(found) == 3 * len(config.operators)
    for op_id in config.operators:
        holders = [header for header, lines in found.items() if any(f"pw-{op_id}-" in line for line in lines)]
        assert holders == [f"[{op_id}](operator-auth)"]
        assert text.count(f"pw-{op_id}-") == 1


def test_given_state_dir_when_passwords_ensured_twice_then_stable_and_private(tmp_path: Path) -> None:
    first = ensure_operator_passwords(tmp_path, ["op1001", "op1002"])
    second = ensure_operator_passwords(tmp_path, ["op1002", "op1001", "op1003"])
    assert {k: v.get_secret_value() for k, v in first.items()} == {
        k: second[k].get_secret_value() for k in ("op1001", "op1002")
    }
    assert second["op1003"].get_secret_value() not in {v.get_secret_value() for v in first.values()}
    assert "op1003" not in ensure_operator_passwords(tmp_path, ["op1001"])
    assert stat.S_IMODE((tmp_path / "operators.env").stat().st_mode) == 0o600
    assert first["op1001"].get_secret_value() not in repr(first)


def test_given_settings_when_operators_written_then_generated_file_private_and_nothing_logged(
    tmp_path: Path, config: IvrConfig, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        home=tmp_path,
        state_dir=tmp_path / "state",
        asterisk_root=tmp_path / "root",
        ari_password=SecretStr("ari-test"),
        ami_secret=SecretStr("ami-test"),
        admin_token=SecretStr("admin-test"),
    )
    caplog.set_level(logging.DEBUG)
    path = write_operators(settings, config)
    assert path.name == "pjsip_operators.conf"
    assert path.parent.name == "generated"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = ensure_operator_passwords(settings.state_dir, ["op1004"])["op1004"].get_secret_value()
    assert f"password = {password}" in path.read_text()
    assert password not in caplog.text
