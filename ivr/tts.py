"""Render the YAML's text prompts to 8 kHz mono WAV with espeak-ng, cached by text hash.

File names come from ``IvrConfig.prompt_stem`` (a hash of voice and text), so an unchanged prompt is
never rendered twice and an edited one gets a new file: a reload can never play a stale text.
Rendering goes to a temporary file first and is renamed into place, so Asterisk never reads a half
written WAV. espeak-ng writes 22.05 kHz; sox resamples to the 8 kHz 16-bit mono that Asterisk's
``wav`` format expects (anything else is transcoded on every playback, or refused).

Example::

    rendered = render_prompts(config, Path("recordings/tts"))   # files written this time
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ivr.config import IvrConfig

log = logging.getLogger(__name__)


class TtsError(Exception):
    """espeak-ng or sox is missing or failed."""


def render_prompts(config: IvrConfig, out_dir: Path) -> list[Path]:
    """Render every missing prompt; return the files written. Raise TtsError on failure."""
    written: list[Path] = []
    for stem, _language, voice, text in config.text_prompts():
        target = out_dir / f"{stem}.wav"
        if target.exists() and target.stat().st_size > 44:
            continue
        render_one(text, voice, target)
        written.append(target)
    if written:
        log.info("rendered %d prompt(s) into %s", len(written), out_dir)
    return written


def render_one(text: str, voice: str, target: Path) -> None:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise TtsError(f"{tool} is not installed (apt-get install espeak-ng sox)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unico-tts-") as tmp:
        raw = Path(tmp) / "raw.wav"
        out = Path(tmp) / "out.wav"
        _run(["espeak-ng", "-v", voice, "-s", "155", "-w", str(raw), "--", text])
        _run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out)])
        # a temporary name of this process's own: two controllers starting together on one host
        # render the same prompt at once, and the second rename must not find the first's gone
        staging = target.with_name(f".{target.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        shutil.move(str(out), staging)
        staging.replace(target)


def prune(config: IvrConfig, out_dir: Path) -> list[Path]:
    """Delete rendered files no prompt refers to any more; return them."""
    keep = {f"{stem}.wav" for stem, *_ in config.text_prompts()}
    removed = [p for p in _wavs(out_dir) if str(p.relative_to(out_dir)) not in keep]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _wavs(folder: Path) -> Iterable[Path]:
    return folder.rglob("*.wav") if folder.is_dir() else []


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise TtsError(f"{argv[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TtsError(f"{argv[0]} failed: {exc}") from None
