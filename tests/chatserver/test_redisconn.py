"""Redis clients from chatserver.redisconn wait for a free connection instead of failing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from chatserver.redisconn import connect
from tests.chatserver.test_cluster_sentinel import cluster


async def fifty_at_once(url: str, prefix: str) -> None:
    client = connect(url, decode=True, max_connections=2)
    key = f"{{{prefix}}}:count"
    try:
        pipe_keys = [f"{{{prefix}}}:p{i}" for i in range(10)]

        async def piped(k: str) -> list[object]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.incr(k)
                pipe.expire(k, 60)
                return list(await pipe.execute())

        results = await asyncio.gather(
            *(client.incr(key) for _ in range(50)), *(piped(k) for k in pipe_keys)
        )
        assert sorted(results[:50]) == list(range(1, 51))
        assert all(r[0] == 1 for r in results[50:])
        assert await client.get(key) == "50"
    finally:
        await client.delete(key, *pipe_keys)
        await client.aclose()


async def test_tiny_pool_queues_fifty_commands(redis_url: str, key_prefix: str) -> None:
    """50 concurrent commands and 10 pipelines on a 2-connection pool all succeed."""
    await fifty_at_once(redis_url, key_prefix)


async def test_pool_wait_ends_as_unavailable(redis_url: str, key_prefix: str) -> None:
    """A command that finds no free connection within the pool timeout raises ConnectionError."""
    client = connect(redis_url, decode=True, max_connections=1, pool_timeout=0.2)
    try:
        blocker = asyncio.ensure_future(client.blpop([f"{key_prefix}:never"], timeout=2))
        await asyncio.sleep(0.1)  # the BLPOP holds the only connection
        with pytest.raises(RedisConnectionError):
            await client.get(f"{key_prefix}:other")
        assert await blocker is None
        assert await client.get(f"{key_prefix}:other") is None  # free again afterwards
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_tiny_cluster_pool_queues_fifty_commands(tmp_path: Path, key_prefix: str) -> None:
    """On a Redis Cluster, 50 commands and 10 pipelines on 2 connections a node all succeed."""
    with cluster(tmp_path) as ports:
        await fifty_at_once(f"redis+cluster://127.0.0.1:{ports[0]}", key_prefix)
