"""Client addresses, never kept: only a keyed hash with a secret that rotates daily.

The secret for each UTC day is made once (``SET NX``) in Redis and expires after 48 hours,
so every process hashes an address alike, and a hash is useless once its day has passed.
Hashes themselves are kept at most 24 hours (connection counts, blocks, login limits).
Open sockets per hashed address are counted in Redis (``Store.acquire_connection``), so
the limit holds across every process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from aiohttp import web
from redis.exceptions import RedisError

from chatserver.store import Store


def client_address(request: web.Request, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.remote or "unknown"


def public_scheme(request: web.Request, trust_forwarded_for: bool) -> str:
    """``https`` behind a TLS proxy that says so (X-Forwarded-Proto, trusted like
    X-Forwarded-For), else the scheme this process was reached with."""
    if trust_forwarded_for:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            return proto
    return request.scheme


#: How long a past day known to have no secret is not asked again.
ABSENT_RECHECK_SECONDS = 600.0


class AddressHasher:
    """Keyed hashes of client addresses; ``clock`` (Unix seconds) picks the day's secret."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._secrets: dict[str, bytes] = {}
        #: Days found without a secret (a past day never gets one): monotonic time asked.
        self._absent: dict[str, float] = {}
        #: Used only while Redis cannot be reached: hashes then differ between processes.
        self._fallback = secrets.token_bytes(32)

    async def _secret(self, day: str, *, make: bool = True) -> bytes | None:
        cached = self._secrets.get(day)
        if cached is not None:
            return cached
        key = self.store.keys.address_secret(day)
        if make:
            await self.store.rb.set(key, secrets.token_bytes(32), nx=True, ex=48 * 3600)
        value = await self.store.rb.get(key)
        if not isinstance(value, bytes):
            return None
        self._secrets[day] = value
        for old in sorted(self._secrets)[:-2]:  # keep today's and yesterday's only
            del self._secrets[old]
        return value

    @staticmethod
    def _day(now: float) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(now))

    async def hash(self, address: str, now: float | None = None) -> str:
        """Today's hash (UTC day): what counts and new blocks are keyed by."""
        day = self._day(now if now is not None else self.clock())
        try:
            secret = await self._secret(day) or self._fallback
        except (RedisError, OSError):
            secret = self._fallback
        return _digest(secret, address)

    async def recent(self, address: str, today: str | None = None) -> list[str]:
        """Today's hash (``today`` when the caller has it) and yesterday's: a block made
        yesterday is keyed by yesterday's secret, so checks look at both (a block never
        outlives 24 h for a network)."""
        now = self.clock()
        hashes = [today if today is not None else await self.hash(address, now)]
        try:
            yesterday = await self._past_secret(self._day(now - 86400))
        except (RedisError, OSError):
            yesterday = None
        if yesterday is not None:
            hashes.append(_digest(yesterday, address))
        return hashes

    async def _past_secret(self, day: str) -> bytes | None:
        """A past day's secret, if it was made; that it was not is remembered too (asked
        again after :data:`ABSENT_RECHECK_SECONDS`, for a process whose clock was ahead)."""
        asked = self._absent.get(day)
        if asked is not None and time.monotonic() - asked < ABSENT_RECHECK_SECONDS:
            return None
        secret = await self._secret(day, make=False)
        if secret is None:
            self._absent = {day: time.monotonic()}  # only the latest day is ever asked
        else:
            self._absent.pop(day, None)
        return secret


def _digest(secret: bytes, address: str) -> str:
    return hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()[:24]
