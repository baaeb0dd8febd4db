"""Redis clients from a URL: one server, a Redis Cluster, or a master found by Sentinel.

* ``redis://host:port/db``, ``rediss://...``, ``unix:///path/redis.sock`` — one server.
* ``redis+cluster://host:port`` — a Redis Cluster (any node as seed). Every multi-key
  operation's keys share a hash tag (see :mod:`chatserver.keys`), so scripts work there.
* ``redis+sentinel://host:port[,host:port...]/MASTER[/db]`` — ask the Sentinels for the
  current master of MASTER, and follow it through a failover.

Every client has a bounded pool that *waits*: a command that finds all ``max_connections``
connections busy queues for up to ``pool_timeout`` seconds for one to come free, and only
then fails with :class:`redis.exceptions.ConnectionError` (which callers treat as the store
being unavailable). redis-py's default async pool raises "Too many connections" at once
instead, which turned every load burst into ``unavailable`` answers.

No ``health_check_interval``: it only PINGs before a command on a connection idle for a
while, which costs a round trip and detects nothing a failing command does not (a dead
connection fails, is reconnected and the command retried); a pub/sub ``listen`` blocks in a
read, so the PING never runs while the channel is quiet and it does not watch the event
listener either, nor does it ever time out a missing pong. A Redis that goes away closes its
sockets, and that ends ``listen``; a path that goes silent instead is noticed by
:meth:`chatserver.hub.Hub.listen`'s own PING and pong timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from chatserver.errors import ConfigError

OPTIONS: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 3}
MAX_CONNECTIONS = 200
"""Connections per client (per node on a cluster); the service opens a text and a binary
client per process, so up to twice this many per process."""
POOL_TIMEOUT = 5.0
"""Seconds a command waits for a free connection before it fails as unavailable."""


class _SentinelBlockingPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's master-following pool, waiting for a free connection like
    :class:`redis.asyncio.BlockingConnectionPool` (redis-py has no async one of its own)."""


_holding: ContextVar[bool] = ContextVar("chatserver_cluster_slot", default=False)


class _BoundedCluster(RedisCluster):
    """A cluster client whose commands and pipelines wait for one of ``limit`` slots.

    redis-py's async cluster nodes raise ``MaxConnectionsError`` when their connections are
    all busy and have no waiting pool; at most ``limit`` operations in flight keeps every
    node below its ``max_connections`` (one connection per node per operation)."""

    def __init__(self, *args: Any, limit: int, wait: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(limit)
        self._wait = wait

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if _holding.get():  # nested (a pipeline's own commands): already counted
            yield
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self._wait)
        except TimeoutError:
            raise RedisConnectionError("No connection available.") from None
        token = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(token)
            self._slots.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.slot():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        super().pipeline(transaction, shard_hint)  # its argument checks
        return _BoundedPipeline(self, transaction)  # type: ignore[abstract]


class _BoundedPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        client = cast(_BoundedCluster, self.cluster_client)
        async with client.slot():
            return await super().execute(raise_on_error, allow_redirections)


def _sentinel(url: str, decode: bool, max_connections: int, pool_timeout: float) -> aioredis.Redis:
    parts = urlsplit(url)
    hosts = []
    for item in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = item.rpartition(":")
        hosts.append((host or "127.0.0.1", int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigError("a redis+sentinel:// URL names the master: .../MASTER[/db]")
    db = int(path[1]) if len(path) > 1 else 0
    sentinel = Sentinel(hosts, **OPTIONS)  # type: ignore[no-untyped-call]
    master = sentinel.master_for(
        path[0],
        connection_pool_class=_SentinelBlockingPool,
        db=db,
        decode_responses=decode,
        password=parts.password,
        max_connections=max_connections,
        timeout=pool_timeout,
        **OPTIONS,
    )
    return cast(aioredis.Redis, master)


def connect_pubsub(url: str) -> aioredis.Redis:
    """A client to subscribe with. On a cluster, a plain client to the seed node: PUBLISH
    reaches every node of a cluster, so one subscription on any node hears everything."""
    if url.startswith(("redis+cluster://", "rediss+cluster://")):
        return connect(url.replace("+cluster", "", 1), decode=False)
    return connect(url, decode=False)


def connect(
    url: str,
    *,
    decode: bool,
    max_connections: int = MAX_CONNECTIONS,
    pool_timeout: float = POOL_TIMEOUT,
) -> aioredis.Redis:
    """A client for ``url`` whose commands wait up to ``pool_timeout`` seconds for one of
    ``max_connections`` connections; cluster clients are duck-typed as
    :class:`redis.asyncio.Redis`."""
    if url.startswith(("redis+cluster://", "rediss+cluster://")):
        real = url.replace("+cluster", "", 1)
        cluster = _BoundedCluster.from_url(
            real,
            limit=max_connections,
            wait=pool_timeout,
            decode_responses=decode,
            max_connections=max_connections,
            **OPTIONS,
        )
        return cast(aioredis.Redis, cluster)
    if url.startswith("redis+sentinel://"):
        return _sentinel(url, decode, max_connections, pool_timeout)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        decode_responses=decode,
        retry_on_timeout=True,
        **OPTIONS,
    )
    return aioredis.Redis.from_pool(pool)
