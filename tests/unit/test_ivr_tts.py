"""Text prompts are rendered once to 8 kHz mono WAV, and again only when their text changes."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.tts import prune, render_one, render_prompts

CONFIG = """
settings: {languages: [it, en]}
numbers: {"100": {name: t, entry: bye}}
prompts:
  hello: {it: "Buongiorno.", en: "Good morning."}
nodes:
  bye: {type: hangup, prompt: [hello]}
"""


def soxi(flag: str, path: Path) -> str:
    return subprocess.run(["soxi", flag, str(path)], capture_output=True, text=True, check=True).stdout.strip()


def test_given_text_prompts_when_rendered_then_8khz_mono_files_cached_and_rerendered_on_change(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "d.yaml").write_text(CONFIG)
    out = tmp_path / "tts"
    config = load_config(tmp_path / "d")

    first = render_prompts(config, out)
    assert sorted(p.relative_to(out).parts[0] for p in first) == ["en", "it"]
    italian = out / f"{config.prompt_stem('hello', 'it')}.wav"
    assert soxi("-r", italian) == "8000" and soxi("-c", italian) == "1"
    assert float(soxi("-D", italian)) > 0.3
    assert render_prompts(config, out) == []  # cached

    (tmp_path / "d" / "d.yaml").write_text(CONFIG.replace("Buongiorno.", "Buonasera."))
    changed = load_config(tmp_path / "d")
    again = render_prompts(changed, out)
    assert [p.name for p in again] == [f"{changed.prompt_stem('hello', 'it').split('/')[1]}.wav"]
    assert prune(changed, out) == [italian]
    assert not italian.exists()


def test_given_two_processes_rendering_the_same_prompt_at_once_then_both_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two controllers (or test workers) starting together on one host render the same files: both
    # have staged their file before either renames it into place (the barrier makes it so)
    target = tmp_path / "it" / "welcome-0123456789abcdef.wav"
    staged = threading.Barrier(2, timeout=10)
    move = shutil.move

    def move_then_wait(src: str, dst: Path) -> object:
        result = move(src, dst)
        staged.wait()
        return result

    monkeypatch.setattr("ivr.tts.shutil.move", move_then_wait)
    errors: list[BaseException] = []

    def render() -> None:
        try:
            render_one("Benvenuti.", "it", target)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=render) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.stat().st_size > 1000
    assert [p.name for p in target.parent.iterdir()] == [target.name], "no staging file left behind"
