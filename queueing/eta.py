"""Waiting-time estimate shown to a waiting visitor (pure).

:func:`estimate_wait` is the server's estimate from live data: recent conversation lengths,
the places counsellors have free right now, how many counsellors are on shift, and the share
of recent visitors who left while waiting (people ahead who leave shorten the wait). It is
``None`` with too little data: no made-up numbers. :func:`naive_wait` is the yardstick the
simulator compares it with.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

#: Fewer handled conversations than this and the estimate is null.
MIN_SAMPLES = 5


def naive_wait(position: int, mean_handling: float, servers: int) -> float:
    """Position × mean handling time ÷ counsellors."""
    return position * mean_handling / max(1, servers)


def estimate_wait(
    position: int,
    handling_seconds: Sequence[float],
    servers: int,
    free_now: int = 0,
    abandon_share: float = 0.0,
) -> int | None:
    """Seconds until a visitor at ``position`` (1 = next) is likely helped, or ``None``."""
    if position < 1 or servers < 1 or len(handling_seconds) < MIN_SAMPLES:
        return None
    mean = fmean(handling_seconds)
    keep = 1.0 - min(max(abandon_share, 0.0), 0.9)
    ahead = (position - 1) * keep + 1  # those ahead who will still be there
    turns = max(0.0, ahead - free_now)
    return round(turns * mean / servers)
