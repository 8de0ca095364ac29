"""The controller's Redis client queues commands beyond its pool instead of failing them."""

from __future__ import annotations

import asyncio

import pytest

from unico import controller

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_given_more_concurrent_commands_than_connections_then_they_wait_and_all_succeed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(controller, "REDIS_CONNECTIONS", 2)
    client = controller._redis_client(REDIS_URL)
    try:
        # each holds its connection for a moment: 40 at once need 20 turns of 2 connections
        replies = await asyncio.gather(*(client.eval("return redis.call('TIME')[1]", 0) for _ in range(40)))
        assert len(replies) == 40
        assert len(client.connection_pool._in_use_connections) == 0  # type: ignore[attr-defined]
        assert client.connection_pool.max_connections == 2  # type: ignore[attr-defined]
    finally:
        await client.aclose(close_connection_pool=True)


async def test_given_redis_py_default_pool_when_more_concurrent_commands_than_connections_then_it_refuses() -> None:
    """Why the controller builds its own pool: redis-py's refuses the command over its size at once."""
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = aioredis.Redis.from_url(REDIS_URL, max_connections=2)
    try:
        results = await asyncio.gather(
            *(client.eval("return redis.call('TIME')[1]", 0) for _ in range(40)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, RedisConnectionError) and "Too many connections" in str(r)]
        assert refused, "the default pool queued them after all: the controller's own pool is not needed"
    finally:
        await client.aclose()
