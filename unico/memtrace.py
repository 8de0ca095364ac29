"""Finding where the controller's memory goes, in the field: ``UNICO_TRACEMALLOC=<frames>``.

With the variable set (``Settings.tracemalloc``: stack frames kept per allocation, 1-50; 0 = off), ``unico run`` starts
Python's ``tracemalloc`` before anything else is built, and each SIGUSR2 writes a snapshot to
``<state_dir>/memory/<unix time>-<n>.snapshot`` and logs the twenty places (file:line) whose memory grew
most since the previous one. Tracing costs CPU (about a third more per call), so it is for a
diagnosis, not for every day. ``compare`` reads two snapshot files offline, e.g. the first and last
of a soak (``bench/capacity.py --trace-memory``).

Example::

    UNICO_TRACEMALLOC=8 unico run &
    kill -USR2 $!                   # ... later, again: the log shows what grew in between
    python -m unico.memtrace OLD.snapshot NEW.snapshot
"""

from __future__ import annotations

import logging
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("unico.memtrace")

ENV = "UNICO_TRACEMALLOC"
#: frames of the tracer itself and of imports are noise in a comparison
_IGNORED = (tracemalloc.__file__, "<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def start(frames: int) -> bool:
    """Start tracing with ``frames`` frames per allocation (0 = off); True when tracing."""
    if frames and not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    return tracemalloc.is_tracing()


@dataclass(frozen=True, slots=True)
class Growth:
    """One place (its innermost frames) and what it holds more, or less, than before."""

    where: str
    size_bytes: int
    count: int

    def line(self) -> str:
        return f"{self.size_bytes / 1024:+10.1f} KiB {self.count:+8d} blocks  {self.where}"


def _clean(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    return snapshot.filter_traces([tracemalloc.Filter(False, name) for name in _IGNORED])


def growth(old: tracemalloc.Snapshot, new: tracemalloc.Snapshot, *, limit: int = 20) -> list[Growth]:
    """The ``limit`` places whose memory grew most from ``old`` to ``new`` (by traceback)."""
    stats = _clean(new).compare_to(_clean(old), "traceback")
    result = []
    for stat in stats[:limit]:
        # a Traceback runs from the oldest frame to the allocation: the allocation first here
        frames = [f"{frame.filename}:{frame.lineno}" for frame in reversed(stat.traceback)]
        result.append(Growth(" <- ".join(frames[:4]), stat.size_diff, stat.count_diff))
    return result


class Tracer:
    """Snapshots on demand (the controller's SIGUSR2), each compared with the one before."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._last: tracemalloc.Snapshot | None = None
        self._count = 0

    def dump(self) -> Path | None:
        """Write a snapshot and log what grew since the previous one; None when not tracing."""
        if not tracemalloc.is_tracing():
            log.warning("memory snapshot asked for, but %s is not set: nothing traced", ENV)
            return None
        snapshot = tracemalloc.take_snapshot()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._count += 1
        path = self.directory / f"{time.time():.0f}-{self._count:03d}.snapshot"
        snapshot.dump(str(path))
        current, peak = tracemalloc.get_traced_memory()
        log.warning("memory snapshot %s: %.1f MiB traced (peak %.1f MiB)", path, current / 2**20, peak / 2**20)
        if self._last is not None:
            for row in growth(self._last, snapshot):
                log.warning("memory growth %s", row.line())
        self._last = snapshot
        return path


def compare(old: Path, new: Path, *, limit: int = 20) -> list[Growth]:
    """``growth`` between two snapshot files."""
    return growth(tracemalloc.Snapshot.load(str(old)), tracemalloc.Snapshot.load(str(new)), limit=limit)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m unico.memtrace OLD.snapshot NEW.snapshot", file=sys.stderr)
        return 2
    for row in compare(Path(args[0]), Path(args[1])):
        print(row.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
