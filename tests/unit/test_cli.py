"""The ``unico`` command as an admin runs it: exit codes and messages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def unico(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unico.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_given_shipped_config_when_checked_then_ok_and_exit_0() -> None:
    result = unico("check", str(ROOT))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 2 numbers,")


def test_given_one_yaml_file_when_checked_then_its_folder_is_checked() -> None:
    result = unico("check", str(ROOT / "dialplan" / "main.yaml"))
    assert result.returncode == 0, result.stderr


def test_given_broken_yaml_when_checked_then_exit_1_with_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "dialplan", tmp_path / "dialplan")
    shutil.copytree(ROOT / "skills", tmp_path / "skills")
    main = tmp_path / "dialplan" / "main.yaml"
    lines = main.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if '"0": operator' in line)
    lines[number - 1] = lines[number - 1].replace('"0": operator', '"0": operatore')
    main.write_text("\n".join(lines) + "\n")
    result = unico("check", str(tmp_path))
    assert result.returncode == 1
    assert f"{main}:{number}: node 'main' goes to 'operatore', which is not defined" in result.stderr
    assert "1 problem(s) found" in result.stderr


def test_given_missing_folder_when_checked_then_exit_1(tmp_path: Path) -> None:
    result = unico("check", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "dialplan folder not found" in result.stderr


def test_given_no_command_when_run_then_help_and_exit_2() -> None:
    result = unico()
    assert result.returncode == 2 and "asterisk" in result.stdout
