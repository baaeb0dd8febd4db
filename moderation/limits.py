"""Per-connection rate limit: a token bucket (pure; the caller passes the time)."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; a frame costs one token.

    The socket layer counts refusals over a window and closes a connection that keeps
    flooding (4429); the bucket itself only answers yes or no.
    """

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last: float | None = None

    def allow(self, now: float, cost: float = 1.0) -> bool:
        if self.last is not None and now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now if self.last is None else max(self.last, now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False
