"""Security defaults that need no running Asterisk (issue 6, row 10).

- no default passwords: every secret setting is required, and no literal password sits in the
  Asterisk config, the code or the admin YAML;
- secrets masked in the config dump (``unico settings``), also inside URLs;
- what ``unico.pbx`` generates for Asterisk: the carrier trunk and the operators' endpoints deny
  everything but their networks, the ARI user is loopback only, the AMI user gets no dangerous
  class.

What the running Asterisk makes of it (refusals, security events, bindings) is shown end to end
in tests/e2e/test_security.py; API tokens hashed at rest in tests/unit/test_users_db.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from unico.cli import settings_dump
from unico.pbx.config import AMI_READ, AMI_WRITE, generated_files
from unico.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
CODE = ("unico", "ivr", "acd", "contacts", "wfm", "reports", "bench", "scripts")
DANGEROUS_AMI = {"system", "command", "originate", "config", "all"}
# a name that holds a credential, assigned a literal that is neither a mask ("****") nor a
# placeholder ("...")
LITERAL_SECRET = re.compile(
    r"""\b\w*(?:password|passwd|secret|token|api_key)\b["']?(?:\s*:\s*[\w\[\]|., ]+?)?\s*[:=]\s*"""
    r"""(?P<q>["'])(?P<value>[^"'*]*[A-Za-z0-9][^"'*]*)(?P=q)""",
    re.IGNORECASE,
)


def settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        home=ROOT,
        state_dir=tmp_path / "state",
        asterisk_root=tmp_path / "root",
        ari_password=SecretStr("ari-" + "x" * 20),
        ami_secret=SecretStr("ami-" + "y" * 20),
        admin_token=SecretStr("admin-" + "z" * 20),
        **extra,  # type: ignore[arg-type]
    )


# --- no default passwords ------------------------------------------------------------------------


def test_given_settings_model_when_secret_fields_inspected_then_each_is_required_without_default() -> None:
    secret_fields = {name: f for name, f in Settings.model_fields.items() if f.annotation is SecretStr}

    assert set(secret_fields) == {"ari_password", "ami_secret", "admin_token"}
    assert all(f.is_required() for f in secret_fields.values()), secret_fields


def test_given_no_secrets_anywhere_when_settings_built_then_refused_naming_each_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("UNICO_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("UNICO_STATE_DIR", str(tmp_path))  # no secrets.env there

    with pytest.raises(SettingsError) as refused:
        load_settings(create_secrets=False)

    for key in ("UNICO_ARI_PASSWORD", "UNICO_AMI_SECRET", "UNICO_ADMIN_TOKEN"):
        assert key in str(refused.value)


def test_given_repository_when_scanned_then_no_literal_password_in_asterisk_conf_code_or_admin_yaml() -> None:
    found: list[str] = []
    for path in sorted((ROOT / "asterisk-conf").iterdir()):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            setting = line.split(";", 1)[0]
            if re.match(r"\s*(secret|password|md5_cred)\s*=\s*\S", setting):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    sources = [p for folder in CODE for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".sh")]
    sources += [*(ROOT / "dialplan").glob("*.yaml"), *(ROOT / "skills").glob("*.yaml")]
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if LITERAL_SECRET.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")

    assert len(sources) > 50, "the scan found (almost) no files: wrong folder?"
    assert found == []


def test_given_the_scanner_when_shown_a_literal_password_then_it_finds_it() -> None:
    assert LITERAL_SECRET.search('ami_secret: str = "changeme"')
    assert LITERAL_SECRET.search("password='hunter2'")
    assert LITERAL_SECRET.search('{"admin_token": "abc123"}')
    assert LITERAL_SECRET.search("secret = 'letmein'")
    assert not LITERAL_SECRET.search("password='****'")
    assert not LITERAL_SECRET.search('PASSWORDS_FILE = "operators.env"')
    assert not LITERAL_SECRET.search('send {"token": "..."} first')


# --- secrets masked in the config dump -----------------------------------------------------------


def test_given_secrets_in_environment_when_unico_settings_runs_then_each_prints_as_stars(tmp_path: Path) -> None:
    values = {
        "UNICO_ARI_PASSWORD": "ari-" + "q" * 20,
        "UNICO_AMI_SECRET": "ami-" + "w" * 20,
        "UNICO_ADMIN_TOKEN": "adm-" + "e" * 20,
    }
    db_password = "db-" + "r" * 12
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNICO_")}
    env |= values | {
        "UNICO_STATE_DIR": str(tmp_path),
        "UNICO_HOME": str(ROOT),
        "UNICO_DATABASE_URL": f"postgresql+asyncpg://unico:{db_password}@db.example:5432/unico",
        "UNICO_REDIS_URL": f"redis://:{db_password}@127.0.0.1:6379/0",
    }

    result = subprocess.run(
        [sys.executable, "-m", "unico.cli", "settings"], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert {key: lines[key] for key in values} == dict.fromkeys(values, "****")
    assert lines["UNICO_DATABASE_URL"] == "postgresql+asyncpg://unico:****@db.example:5432/unico"
    assert lines["UNICO_REDIS_URL"] == "redis://:****@127.0.0.1:6379/0"
    assert lines["UNICO_WEB_HOST"] == "127.0.0.1" and lines["UNICO_OPERATOR_NETWORKS"] == "127.0.0.1/32"
    for secret in [*values.values(), db_password]:
        assert secret not in result.stdout + result.stderr


def test_given_settings_when_dumped_then_every_field_once_and_no_secret_value(tmp_path: Path) -> None:
    given = settings(tmp_path, ari_url="https://unico:pa55word-in-url@pbx.example:8089")

    text = settings_dump(given)

    names = [line.split("=", 1)[0] for line in text.splitlines()]
    assert names == sorted(f"UNICO_{name.upper()}" for name in Settings.model_fields)
    assert "UNICO_ARI_URL=https://unico:****@pbx.example:8089" in text.splitlines()
    for secret in ("pa55word-in-url", "x" * 20, "y" * 20, "z" * 20):
        assert secret not in text


# --- what Asterisk is given ----------------------------------------------------------------------


def test_given_default_settings_when_config_generated_then_trunk_and_operators_deny_all_but_loopback(
    tmp_path: Path,
) -> None:
    files = generated_files(settings(tmp_path))

    expected = "deny = 0.0.0.0/0.0.0.0\ndeny = ::/0\npermit = 127.0.0.1/32\n"
    assert files["pjsip_operator_acl.conf"].endswith(expected)
    assert files["pjsip_carrier_acl.conf"].endswith(expected)
    assert files["pjsip_carrier_match.conf"].splitlines()[1:] == ["match = 127.0.0.1/32"]
    assert files["ari.conf"].endswith(expected)  # ARI's own user ACL, on top of the loopback bind
    assert "bindaddr = 127.0.0.1\n" in files["http.conf"]


def test_given_operator_and_carrier_networks_when_config_generated_then_only_those_are_permitted(
    tmp_path: Path,
) -> None:
    files = generated_files(
        settings(tmp_path, operator_networks="10.20.0.0/16, 192.168.7.9", carrier_networks="203.0.113.0/28")
    )

    operators = files["pjsip_operator_acl.conf"].splitlines()[1:]
    assert operators == ["deny = 0.0.0.0/0.0.0.0", "deny = ::/0", "permit = 10.20.0.0/16", "permit = 192.168.7.9/32"]
    assert files["pjsip_carrier_acl.conf"].splitlines()[-1] == "permit = 203.0.113.0/28"
    assert files["pjsip_carrier_match.conf"].splitlines()[1:] == ["match = 203.0.113.0/28"]


@pytest.mark.parametrize("key", ["UNICO_OPERATOR_NETWORKS", "UNICO_CARRIER_NETWORKS"])
@pytest.mark.parametrize("value", ["", "10.0.0.300/8", "anywhere", "10.0.0.0/8;permit=0.0.0.0/0"])
def test_given_a_bad_network_setting_when_loaded_then_refused_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv("UNICO_STATE_DIR", str(tmp_path))
    monkeypatch.setenv(key, value)

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert key in str(refused.value)


def test_given_generated_ami_user_then_loopback_only_and_no_dangerous_class(tmp_path: Path) -> None:
    users = generated_files(settings(tmp_path))["manager_users.conf"]

    read = re.search(r"^read = (.*)$", users, re.MULTILINE)
    write = re.search(r"^write = (.*)$", users, re.MULTILINE)
    assert read and write and (read[1], write[1]) == (AMI_READ, AMI_WRITE)
    classes = {c.strip() for c in f"{read[1]},{write[1]}".split(",") if c.strip()}
    assert classes and not classes & DANGEROUS_AMI, classes
    assert users.index("deny = 0.0.0.0/0.0.0.0") < users.index("permit = 127.0.0.1/255.255.255.255")
