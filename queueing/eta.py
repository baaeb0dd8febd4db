"""Waiting-time estimate shown to a waiting visitor (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

#: Fewer handled conversations than this and the estimate is null: no made-up numbers.
MIN_SAMPLES = 5


def estimate_wait(position: int, handling_seconds: Sequence[float], servers: int) -> int | None:
    """Seconds until a visitor at ``position`` (1 = next) is likely helped, or ``None``.

    ``handling_seconds`` are recent conversation durations, ``servers`` the number of
    conversations counsellors on shift can hold at once.
    """
    if position < 1 or servers < 1 or len(handling_seconds) < MIN_SAMPLES:
        return None
    mean = fmean(handling_seconds)
    return round(position * mean / servers)
