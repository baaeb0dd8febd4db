"""Client addresses, never kept: only a keyed hash with a secret that rotates daily.

The secret for each UTC day is made once (``SET NX``) in Redis and expires after 48 hours,
so every process hashes an address alike, and a hash is useless once its day has passed.
Hashes themselves are kept at most 24 hours (connection counts, blocks, login limits).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import Counter

from aiohttp import web
from redis.exceptions import RedisError

from chatserver.store import Store


def client_address(request: web.Request, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.remote or "unknown"


class AddressHasher:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._secrets: dict[str, bytes] = {}
        #: Used only while Redis cannot be reached: hashes then differ between processes.
        self._fallback = secrets.token_bytes(32)

    async def _secret(self, day: str) -> bytes:
        cached = self._secrets.get(day)
        if cached is not None:
            return cached
        key = self.store.keys.address_secret(day)
        await self.store.rb.set(key, secrets.token_bytes(32), nx=True, ex=48 * 3600)
        value = await self.store.rb.get(key)
        assert isinstance(value, bytes)
        self._secrets = {day: value}  # keep only today's
        return value

    async def hash(self, address: str, now: float | None = None) -> str:
        day = time.strftime("%Y-%m-%d", time.gmtime(now if now is not None else time.time()))
        try:
            secret = await self._secret(day)
        except (RedisError, OSError):
            secret = self._fallback
        return hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()[:24]


class ConnectionCounter:
    """Open sockets per hashed address, in this process (the limit is per process)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def acquire(self, key: str, limit: int) -> bool:
        if limit and self.counts[key] >= limit:
            return False
        self.counts[key] += 1
        return True

    def release(self, key: str) -> None:
        self.counts[key] -= 1
        if self.counts[key] <= 0:
            del self.counts[key]
