"""The secrets file: generated once, never changed, private, safe when processes start together."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from unico.settings import SECRET_KEYS, _read_env_file, ensure_secrets


def test_given_no_file_when_ensured_then_every_secret_generated_private_and_kept_on_rerun(tmp_path: Path) -> None:
    path = ensure_secrets(tmp_path)
    first = _read_env_file(path)
    assert set(first) == set(SECRET_KEYS) and all(len(v) >= 24 for v in first.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    ensure_secrets(tmp_path)
    assert _read_env_file(path) == first, "running again never changes a password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_given_processes_starting_together_then_one_set_of_secrets_and_no_leftovers(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:
        paths = pool.map(ensure_secrets, [tmp_path] * 12)
    assert {Path(p) for p in paths} == {tmp_path / "secrets.env"}
    assert set(_read_env_file(tmp_path / "secrets.env")) == set(SECRET_KEYS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".secrets.lock", "secrets.env"]
