"""How late the event loop runs: a ticker that measures its own lateness.

Asterisk drops an ARI websocket whose client does not read for ``websocket_write_timeout`` (100 ms
by default, raised in our ari.conf); a blocked event loop is the way a Python controller gets
there. The watch sleeps ``interval`` seconds at a time and records by how much each wake-up came
late: the worst since start, how many wake-ups were later than ``stall`` seconds, and the worst of
the last minute. ``/health`` shows them; a stall over ``warn`` seconds is logged.

Example::

    watch = LoopWatch()
    watch.start()
    ...
    watch.stats()   # {"max_ms": 3.1, "last_minute_max_ms": 1.2, "stalls": 0, ...}
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)


class LoopWatch:
    def __init__(
        self,
        *,
        interval: float = 0.05,
        stall: float = 0.1,
        warn: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.stall = stall
        self.warn = warn
        self.clock = clock
        self.max_lag = 0.0
        self.stalls = 0
        self.ticks = 0
        self._recent: deque[tuple[float, float]] = deque()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-watch")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def note(self, lag: float, now: float) -> None:
        """One wake-up ``lag`` seconds late, at ``now``."""
        self.ticks += 1
        self.max_lag = max(self.max_lag, lag)
        if lag > self.stall:
            self.stalls += 1
            if lag > self.warn:
                log.warning("event loop stalled for %.0f ms", lag * 1000)
        self._recent.append((now, lag))
        while self._recent and self._recent[0][0] < now - 60.0:
            self._recent.popleft()

    def stats(self) -> dict[str, float | int]:
        recent = max((lag for _, lag in self._recent), default=0.0)
        return {
            "max_ms": round(self.max_lag * 1000, 1),
            "last_minute_max_ms": round(recent * 1000, 1),
            "stalls": self.stalls,
            "stall_ms": self.stall * 1000,
            "ticks": self.ticks,
        }

    async def _run(self) -> None:
        while True:
            expected = self.clock() + self.interval
            await asyncio.sleep(self.interval)
            now = self.clock()
            self.note(max(0.0, now - expected), now)


__all__ = ["LoopWatch"]
