"""A writable copy of the shipped ``dialplan/`` and ``skills/`` for the config checker's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.source import ConfigErrors

ROOT = Path(__file__).resolve().parents[2]


def copy_shipped_config(target: Path) -> Path:
    shutil.copytree(ROOT / "dialplan", target / "dialplan")
    shutil.copytree(ROOT / "skills", target / "skills")
    return target


def errors_of(folder: Path) -> list[str]:
    """Every error the checker reports for ``folder``, as ``file:line: message`` strings."""
    with pytest.raises(ConfigErrors) as info:
        load_config(folder / "dialplan", folder / "skills")
    return [str(e) for e in info.value.errors]
