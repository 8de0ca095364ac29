"""``make bench-events`` (bench/event_replay.py) runs: a short replay through the real controller
with the contact records counted in memory. It broke unnoticed once, when the controller's record
writes became plans on a write-behind queue and the bench's stand-in store did not follow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_given_a_short_stream_when_replayed_flat_out_then_every_call_is_handled_and_results_written(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.event_replay", "--quick", "--speed", "0", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "event_replay.json").read_text())
    (run,) = result["runs"]
    assert run["mode"] == "flat_out"
    assert run["calls_started"] == run["calls_finished"] == result["settings"]["calls"] == 300
    assert run["handler_errors"] == 0 and run["command_errors"] == 0
    assert run["handled"] > 0 and run["events_per_cpu_s"] > 0
    assert (tmp_path / "event_replay.csv").stat().st_size > 0 and (tmp_path / "event_replay.png").stat().st_size > 0
