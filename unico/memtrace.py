"""Finding where the controller's memory goes, in the field (``unico run``'s SIGUSR2).

Each SIGUSR2 logs the process's resident memory, then makes a full collection and asks glibc to
give back the heap pages it holds free (``malloc_trim``), and logs the memory again with the count
of Python's memory blocks. Memory a trim gives back was freed and kept by the allocator (it does
not grow without bound); memory that stays is live. Python blocks that keep growing are a leak of
Python objects.

With ``UNICO_TRACEMALLOC=<frames>`` (``Settings.tracemalloc``: stack frames kept per allocation,
1-50; 0 = off) ``unico run`` also starts Python's ``tracemalloc``, and each SIGUSR2 writes a
snapshot to ``<state_dir>/memory/<unix time>-<n>.snapshot`` and logs the twenty places (file:line)
whose memory changed most since the previous one. Tracing costs CPU (a soak at 4 calls/s took
five times the controller's CPU per call), so it is for a diagnosis, not for every day.
``compare`` reads two snapshot files offline, e.g. the first and last of a soak
(``bench/capacity.py --trace-memory``).

Example::

    UNICO_TRACEMALLOC=8 unico run &
    kill -USR2 $!                   # ... later, again: the log shows what grew in between
    python -m unico.memtrace OLD.snapshot NEW.snapshot
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
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


def resident_kib(status: Path = Path("/proc/self/status")) -> dict[str, int]:
    """This process's resident memory by kind, KiB (proc(5)): ``rss``, ``anon`` (heap), ``file``."""
    names = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    found = {}
    with contextlib.suppress(OSError):
        for line in status.read_text().splitlines():
            fields = line.split()
            if fields and fields[0] in names:
                found[names[fields[0]]] = int(fields[1])
    return found


def trim() -> tuple[dict[str, int], dict[str, int]]:
    """A full collection, then glibc's ``malloc_trim(0)``: the heap pages freed but kept by the
    allocator go back to the system. Returns the resident memory before and after, so what a trim
    gives back (freed memory the allocator held) tells apart from what stays (live memory)."""
    before = resident_kib()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    return before, resident_kib()


class Tracer:
    """Snapshots on demand (the controller's SIGUSR2), each compared with the one before."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._last: tracemalloc.Snapshot | None = None
        self._count = 0

    def on_signal(self) -> Path | None:
        """SIGUSR2: trim the heap and log the memory before and after; a snapshot when tracing."""
        before, after = trim()
        log.warning(
            "memory: resident %.1f MiB (heap %.1f), after a full collection and malloc_trim %.1f MiB "
            "(heap %.1f); %d Python memory blocks",
            before.get("rss", 0) / 1024,
            before.get("anon", 0) / 1024,
            after.get("rss", 0) / 1024,
            after.get("anon", 0) / 1024,
            sys.getallocatedblocks(),
        )
        return self.dump() if tracemalloc.is_tracing() else None

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
