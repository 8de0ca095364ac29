"""One controller commands an ARI app at a time: a Redis lease with a fencing value.

Theory of operation
-------------------
Several controllers may be started for one Asterisk node's app (active and standby, on two hosts).
Only the holder of ``<prefix>lease:<app>`` connects the app's websocket and sends commands; the
others wait and take over when the holder stops renewing it:

* **acquire**: ``SET`` if absent, with a time to live (``ttl``). The value is
  ``<node>|<instance>|<token>``, the token a counter incremented at every acquisition, so two lives
  of one node never hold the same value. A controller that starts and finds the lease held by its
  own node id (an earlier life killed with ``kill -9``) takes it over at once instead of waiting
  for the time to live: node ids are unique per process (``UNICO_CONTROLLER_ID``).
* **renew** every ``renew_every`` seconds, only if the value is still ours (a script). A lease Redis
  lost (a restart without persistence) is written again with our value if nobody took it meanwhile.
* **fencing**: ``held`` turns false as soon as a renewal fails, or when no renewal succeeded for
  ``ttl - margin`` seconds (Redis unreachable): the holder steps down *before* another controller
  can acquire. Every ARI request and every claim checks it (``unico.ari.AriRest.fence``,
  ``acd.live.LiveState.claim(lease=...)``: a claim carries the value and Redis refuses it when the
  lease holds another), so a controller that lost the lease sends nothing more.

Asterisk adds its own fence: a second websocket on the app takes it over (``ApplicationReplaced``
to the first). ``step_aside`` is for that case: let go of the lease and do not try again for a
while, so two controllers of which one has no lease (misconfigured) do not take the app from each
other in a loop.

Example::

    lease = Lease(redis, "unico:lease:unico", node="rome-1", on_gain=start_serving, on_loss=stop_serving)
    lease.start()
    ...
    if lease.held: ...
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Final

import redis.asyncio as aioredis

from unico.cancel import raise_if_cancelled

log = logging.getLogger(__name__)

_ACQUIRE: Final = """
-- KEYS: lease, token counter; ARGV: node, instance, ttl ms, take over our own node's lease (1/0)
local current = redis.call('GET', KEYS[1])
if current then
  local node = string.match(current, '^(.*)|[^|]*|[^|]*$')
  if not (ARGV[4] == '1' and node == ARGV[1]) then return {0, current} end
end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. '|' .. ARGV[2] .. '|' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return {1, value}
"""

_RENEW: Final = """
-- KEYS: lease; ARGV: our value, ttl ms
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """See the module docstring. ``on_gain``/``on_loss`` run in the lease's task, one at a time."""

    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        *,
        node: str,
        on_gain: Callable[[], Awaitable[None]],
        on_loss: Callable[[str], Awaitable[None]],
        ttl: float = 5.0,
        renew_every: float = 1.0,
        margin: float = 1.0,
        aside_for: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < renew_every < ttl - margin:
            raise ValueError("renew_every must be shorter than ttl - margin")
        self.redis = redis
        self.key = key
        self.node = node
        self.instance = secrets.token_hex(4)
        self.ttl = ttl
        self.renew_every = renew_every
        self.margin = margin
        self.aside_for = aside_for
        self.clock = clock
        self._on_gain = on_gain
        self._on_loss = on_loss
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self.value: str | None = None
        self._renewed_at = 0.0
        self._aside_until = 0.0
        self._first = True
        self._task: asyncio.Task[None] | None = None
        self.holder: str | None = None
        #: acquisitions and losses, for /health
        self.gained = 0
        self.lost = 0

    @property
    def held(self) -> bool:
        """True while the lease is ours and was renewed recently enough to be sure of it."""
        return self.value is not None and self.clock() - self._renewed_at < self.ttl - self.margin

    @property
    def role(self) -> str:
        if self.held:
            return "active"
        if self.clock() < self._aside_until:
            return "replaced"
        return "standby"

    @property
    def token(self) -> str | None:
        """The fencing value while held (claims present it to Redis)."""
        return self.value if self.held else None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"lease:{self.key}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.value is not None:
            value, self.value = self.value, None
            try:
                await self._release(keys=[self.key], args=[value])
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                log.warning("lease %s: cannot release it (%s); it expires in %.0f s", self.key, exc, self.ttl)

    async def step_aside(self, why: str) -> None:
        """Let go of the lease and do not try again for ``aside_for`` seconds."""
        self._aside_until = self.clock() + self.aside_for
        if self.value is not None:
            value, self.value = self.value, None
            self.lost += 1
            try:
                await self._release(keys=[self.key], args=[value])
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                log.warning("lease %s: cannot release it: %s", self.key, exc)
            await self._lose(why)

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis unreachable: held runs out by itself
                log.warning("lease %s: Redis error: %s", self.key, exc)
            raise_if_cancelled()
            if self.value is not None and not self.held:
                self.value = None
                self.lost += 1
                await self._lose(f"not renewed for {self.ttl - self.margin:.0f} s (Redis unreachable)")
            await asyncio.sleep(self.renew_every)

    async def _tick(self) -> None:
        ttl_ms = int(self.ttl * 1000)
        if self.value is not None:
            started = self.clock()
            if await self._renew(keys=[self.key], args=[self.value, ttl_ms]):
                self._renewed_at = started
                return
            self.value = None
            self.lost += 1
            self.holder = _text(await self.redis.get(self.key)) or None
            await self._lose(f"taken by {self.holder or 'another controller'}")
            return
        if self.clock() < self._aside_until:
            return
        started = self.clock()
        won, value = await self._acquire(
            keys=[self.key, f"{self.key}:token"], args=[self.node, self.instance, ttl_ms, "1" if self._first else "0"]
        )
        self._first = False
        value = _text(value)
        if not int(won):
            if value != self.holder:
                log.info("lease %s: held by %s, standing by", self.key, value)
            self.holder = value
            return
        self.value, self._renewed_at, self.holder = value, started, value
        self.gained += 1
        log.info("lease %s: acquired (%s)", self.key, value)
        try:
            await self._on_gain()
        except Exception:
            log.exception("lease %s: starting to serve failed", self.key)

    async def _lose(self, why: str) -> None:
        log.error("lease %s: lost (%s): this controller stops commanding calls", self.key, why)
        try:
            await self._on_loss(why)
        except Exception:
            log.exception("lease %s: stepping down failed", self.key)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


__all__ = ["Lease"]
