"""Text prompts are rendered once to 8 kHz mono WAV, and again only when their text changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ivr.config import load_config
from ivr.tts import prune, render_prompts

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
