"""Redis clients from a URL: one server, a Redis Cluster, or a master found by Sentinel.

* ``redis://host:port/db``, ``rediss://...``, ``unix:///path/redis.sock`` — one server.
* ``redis+cluster://host:port`` — a Redis Cluster (any node as seed). Every multi-key
  operation's keys share a hash tag (see :mod:`chatserver.keys`), so scripts work there.
* ``redis+sentinel://host:port[,host:port...]/MASTER[/db]`` — ask the Sentinels for the
  current master of MASTER, and follow it through a failover.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel

from chatserver.errors import ConfigError

OPTIONS: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 3}


def _sentinel(url: str, decode: bool) -> aioredis.Redis:
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
        path[0], db=db, decode_responses=decode, password=parts.password, **OPTIONS
    )
    return cast(aioredis.Redis, master)


def connect_pubsub(url: str) -> aioredis.Redis:
    """A client to subscribe with. On a cluster, a plain client to the seed node: PUBLISH
    reaches every node of a cluster, so one subscription on any node hears everything."""
    if url.startswith(("redis+cluster://", "rediss+cluster://")):
        return aioredis.Redis.from_url(url.replace("+cluster", "", 1), **OPTIONS)
    return connect(url, decode=False)


def connect(url: str, *, decode: bool) -> aioredis.Redis:
    """A client for ``url``; cluster clients are duck-typed as :class:`redis.asyncio.Redis`."""
    if url.startswith(("redis+cluster://", "rediss+cluster://")):
        real = url.replace("+cluster", "", 1)
        cluster = RedisCluster.from_url(real, decode_responses=decode, **OPTIONS)
        return cast(aioredis.Redis, cluster)
    if url.startswith("redis+sentinel://"):
        return _sentinel(url, decode)
    return aioredis.Redis.from_url(
        url, decode_responses=decode, health_check_interval=10, retry_on_timeout=True, **OPTIONS
    )
