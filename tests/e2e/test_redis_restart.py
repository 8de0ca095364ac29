"""Redis restarted without persistence under calls (issue 6, row 5): calls go on, the live state is
rebuilt from what Asterisk, the database and the controller know, and the wallboard is right again.

The controller under test has a Redis of its own (a ``redis-server`` started here, keeping nothing
on disk, as the machine's), so restarting it touches no other test.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.e2e.conftest import acd_leftovers
from tests.e2e.rig import SLOT, Controller, Operators, Records, wait_for
from tests.e2e.test_acd import caller
from tests.e2e.test_failover import health_of, number, second, until_health

PORT = 16379 + 100 * SLOT


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def spawn(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )

    async def start(self) -> None:
        await asyncio.to_thread(self.spawn)
        client = aioredis.Redis.from_url(self.url)
        try:
            await wait_for(self._pong(client), timeout=10, what=f"redis-server on {self.port}")
        finally:
            await client.aclose()

    @staticmethod
    def _pong(client: aioredis.Redis) -> Any:
        async def ping() -> bool:
            try:
                return bool(await client.ping())
            except OSError:
                return False
            except aioredis.ConnectionError:
                return False

        return ping

    def stop(self) -> None:
        """Gone with everything it held (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(PORT)  # started by ``own_redis``, on the test's event loop
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def own_redis(rig: Controller, redis_server: RedisServer) -> AsyncIterator[tuple[Controller, RedisServer]]:
    """A controller for the ``-b`` app (numbers 8<n>) on its own Redis."""
    await redis_server.start()
    process = second(rig, "own-redis", 6, ari_app=f"{rig.settings.ari_app}-b", redis_url=redis_server.url)
    process.start()
    try:
        await process.wait_ready()
        yield process, redis_server
    finally:
        assert process.stop() == 0, process.log_text()[-3000:]


def queue_line(board: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in board["queues"] if q["name"] == name)


async def test_given_calls_when_redis_restarts_empty_then_calls_go_on_state_is_rebuilt_and_the_wallboard_is_right(
    rig: Controller, records: Records, own_redis: tuple[Controller, RedisServer]
) -> None:
    process, server = own_redis
    operators = Operators(process)
    try:
        talking_op = await operators.online("op2001", talk_ms=20_000)
        talker = number()
        talk = asyncio.ensure_future(caller(rig, "87107", talker).expect_bye(60_000).run())
        await talking_op.wait_count("ANSWERED", 1, timeout=15)
        spare = await operators.online("op2002", talk_ms=1_000)
        status, body = await process.api("POST", "/api/agents/op2002/pause", {"reason": "lunch"})
        assert status == 200, body
        waiters = [number(), number()]
        waiting = []
        for n in waiters:
            waiting.append(asyncio.ensure_future(caller(rig, "87107", n).expect_bye(60_000).run()))
            await asyncio.sleep(0.5)

        async def board() -> dict[str, Any]:
            status, body = await process.api("GET", "/api/wallboard")
            assert status == 200, body
            result: dict[str, Any] = body
            return result

        async def as_before() -> dict[str, Any] | None:
            line = queue_line(await board(), "tq_recover")
            ok = (
                line["waiting"] == 2
                and line["operators"].get("on_call") == 1
                and line["operators"].get("not_ready") == 1
            )
            return line if ok else None

        before = await wait_for(as_before, timeout=15, what="2 waiting, 1 operator talking, 1 at lunch")
        server.stop()
        await server.start()  # empty: every agent, line, claim and lease is gone
        rebuilt = await until_health(process, lambda h: h["redis_rebuilds"] >= 1, "live state rebuilt", timeout=15)
        assert rebuilt["ready"], rebuilt
        after = await wait_for(as_before, timeout=15, what="the wallboard as before the restart")
        assert after["longest_wait"] >= before["longest_wait"], "the callers kept their arrival times"
        lunch = await process.agent("op2002")
        assert (lunch["state"], lunch["reason"], lunch["registered"]) == ("not_ready", "lunch", True)

        # the callers are served in their order once op2002 is back, and the conversation goes on
        status, body = await process.api("POST", "/api/agents/op2002/ready")
        assert status == 200, body
        results = await asyncio.gather(talk, *waiting)
        for result in results:
            assert result.answered and result.remote_bye, result.explain()
        assert talking_op.local_byes >= 1, "the conversation ended when its operator hung up, not before"
        finished = [await records.finished_for(n) for n in (talker, *waiters)]
        assert [r.outcome for r in finished] == ["answered"] * 3
        assert finished[1].operator == "op2002", "the first caller waiting went to the first free operator"
        assert finished[1].answered_at is not None and finished[2].answered_at is not None
        assert finished[1].answered_at <= finished[2].answered_at
        assert spare.answered >= 1
        await until_health(process, lambda h: h["calls"] == 0, "no call left")
        health = await health_of(process)
        assert health["handler_errors"] == 0, process.log_text()[-3000:]
    finally:
        await operators.close()
    assert await acd_leftovers(process.settings), "no call or busy operator left in the restarted Redis"
