"""Waiting-time estimate shown to a waiting visitor (pure).

:func:`estimate_wait` is the server's estimate from live data: the recent conversation
lengths, how long each conversation now in progress has been going on, the places free
right now, how many places the counsellors on shift have, and the share of recent visitors
who left while waiting. It is ``None`` with too little data: no made-up numbers.
:func:`naive_wait` is the yardstick the simulator compares it with.

How it works. Every place (a counsellor holds ``capacity`` of them) frees up again and
again: a free place now, a busy place when its conversation ends, and after that every
time a further conversation ends. A conversation that has been going on for ``a`` seconds
ends within the next ``t`` seconds with the share of recent conversations longer than
``a`` that were at most ``a + t`` long (so one that is about as old as conversations
usually get is told to end soon; where conversations vary wildly, an old one is likely a
long one). After its first freeing a place is counted as freeing once per mean
conversation. Summed over the places this gives the expected number of freeings by ``t``.
Of the visitors ahead, the recent share who leave while waiting is taken off; the visitor
is helped at the freeing that reaches their turn, and the estimate is the time by which
that freeing has happened with even odds: a count of freeings scatters around its mean,
and the estimate aims at the middle of what can happen, not at a mean that long waits pull
up. With every conversation just begun and nothing known about ages this is the naive
figure, less that skew.

A counsellor in wrap-up now has their place free when it ends. Not modelled: wrap-up
after future conversations (the default is none), and visitors of higher priority who
arrive later and go ahead (at a crisis share of a few percent that is a few hundredths
of a visitor in a typical wait).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from math import ceil

#: Fewer handled conversations than this and the estimate is null.
MIN_SAMPLES = 5


def naive_wait(position: int, mean_handling: float, servers: int) -> float:
    """Position × mean handling time ÷ counsellors."""
    return position * mean_handling / max(1, servers)


def remaining(age: float, handling_seconds: Sequence[float]) -> float:
    """Expected further length of a conversation ``age`` seconds old: E[H - a | H > a] over
    the recent lengths; the mean length when none of them was longer."""
    longer = [h - age for h in handling_seconds if h > age]
    if not longer:
        return sum(handling_seconds) / len(handling_seconds)
    return sum(longer) / len(longer)


def _median_turn(turn: float) -> float:
    """Where the count of freeings has even odds of having reached ``turn``: for a count
    that arrives like a Poisson stream this is the median of a gamma distribution with
    shape ``turn`` (Chen and Rubin's approximation; ln 2 for the first turn). Below one
    turn (a share of those ahead leaves) the approximation grows again as the turn shrinks,
    so there it goes straight down from the first turn's value: later never means sooner."""
    if turn < 1:
        return turn * _median_turn(1.0)
    return max(turn - 1 / 3 + 8 / (405 * turn) + 184 / (25515 * turn**2), 0.5 * turn)


class _Freeings:
    """The expected number of places freed by ``t`` seconds from now."""

    def __init__(
        self,
        handling: Sequence[float],
        free: int,
        ages: Sequence[float],
        wrapup_left: Sequence[float],
    ) -> None:
        self.lengths = sorted(handling)
        self.prefix = [0.0, *accumulate(self.lengths)]
        self.mean = self.prefix[-1] / len(self.lengths)
        self.free = free
        self.wrapup_left = wrapup_left
        # For each busy place: the first recent length beyond its age, and that age (none
        # beyond it: taken as just begun, so it is expected to take a mean length more).
        self.busy = []
        for age in ages:
            start = bisect_right(self.lengths, age)
            self.busy.append((start, age) if start < len(self.lengths) else (0, 0.0))

    def __call__(self, t: float) -> float:
        n = len(self.lengths)
        total = self.free * (1 + t / self.mean)
        total += sum(1 + (t - w) / self.mean for w in self.wrapup_left if w <= t)
        for start, age in self.busy:
            # Of the recent lengths beyond the age, those h <= age + t have ended by t and
            # their place has freed again for (t - (h - age)) / mean more conversations.
            stop = bisect_right(self.lengths, age + t, lo=start)
            ended = stop - start
            elapsed = self.prefix[stop] - self.prefix[start] - ended * age
            total += (ended + (ended * t - elapsed) / self.mean) / (n - start)
        return total


class _Schedule:
    """Everything in the estimate that does not depend on the position."""

    def __init__(
        self,
        handling_seconds: Sequence[float],
        servers: int,
        free_now: int,
        abandon_share: float,
        ages: Sequence[float] | None,
        wrapup_left: Sequence[float],
    ) -> None:
        wrapup = [max(0.0, w) for w in wrapup_left][: max(0, servers - free_now)]
        known = list(ages or ())[: max(0, servers - free_now - len(wrapup))]
        busy = known + [0.0] * max(0, servers - free_now - len(wrapup) - len(known))
        self.keep = 1.0 - min(max(abandon_share, 0.0), 0.9)
        self.free = free_now
        self.freed = _Freeings(handling_seconds, free_now, busy, wrapup)
        self.longest = max([*handling_seconds, *known, *wrapup])

    def target(self, position: int) -> tuple[float, int] | None:
        """The count of freeings that reaches the visitor at ``position`` with even odds, and
        a time by which it has surely been reached; ``None`` when a place is free for them."""
        turn = (position - 1) * self.keep + 1  # those ahead who will still be there, and oneself
        if turn <= self.free or self.freed.mean <= 0:
            return None
        # The free places are certain; the rest of the count scatters.
        target = self.free + _median_turn(turn - self.free)
        return target, ceil(self.freed.mean * (turn + 1) + self.longest)


def _valid(position: int, handling_seconds: Sequence[float], servers: int) -> bool:
    return position >= 1 and servers >= 1 and len(handling_seconds) >= MIN_SAMPLES


def estimate_wait(
    position: int,
    handling_seconds: Sequence[float],
    servers: int,
    free_now: int = 0,
    abandon_share: float = 0.0,
    ages: Sequence[float] | None = None,
    wrapup_left: Sequence[float] = (),
) -> int | None:
    """Seconds until a visitor at ``position`` (1 = next) is likely helped, or ``None``.

    ``servers`` is the number of places on shift (counsellors × capacity), ``free_now``
    those free now, ``ages`` how long each conversation held in the other places has been
    going on (``None``: unknown, every busy place is taken as just begun), and
    ``wrapup_left`` the seconds until each place whose counsellor is in wrap-up is free.
    Any further place (neither free, nor busy with a known age, nor in wrap-up) is taken
    as holding a conversation just begun.
    """
    if not _valid(position, handling_seconds, servers):
        return None
    schedule = _Schedule(handling_seconds, servers, free_now, abandon_share, ages, wrapup_left)
    aim = schedule.target(position)
    if aim is None:
        return 0
    target, top = aim
    bottom = -1  # the answer is in (bottom, top]: the first whole second the count is reached
    while top - bottom > 1:
        mid = (bottom + top) // 2
        if schedule.freed(mid) < target:
            bottom = mid
        else:
            top = mid
    return top


def estimate_waits(
    positions: int,
    handling_seconds: Sequence[float],
    servers: int,
    free_now: int = 0,
    abandon_share: float = 0.0,
    ages: Sequence[float] | None = None,
    wrapup_left: Sequence[float] = (),
) -> list[int | None]:
    """:func:`estimate_wait` for positions 1 to ``positions`` at once, the same numbers.

    The schedule of freeings is built once, and positions are taken in order: a later one is
    never helped sooner, so each search starts from the answer before and first tries one
    step of the same size as the last, which is nearly always within a second or two.
    """
    if not _valid(1, handling_seconds, servers):
        return [None] * max(0, positions)
    schedule = _Schedule(handling_seconds, servers, free_now, abandon_share, ages, wrapup_left)
    out: list[int | None] = []
    last, step = 0, 0
    for position in range(1, positions + 1):
        aim = schedule.target(position)
        if aim is None:
            out.append(0)
            continue
        target, limit = aim
        found = _first_reaching(schedule.freed, target, last, limit, last + step)
        step, last = found - last, found
        out.append(found)
    return out


def _first_reaching(freed: _Freeings, target: float, lo: int, hi: int, guess: int) -> int:
    """The first whole second in [lo, hi] by which ``freed`` reaches ``target`` (``hi`` when
    none does), searched outwards from ``guess`` in doubling steps, then by halving."""
    guess = min(max(guess, lo), hi)
    step = 1
    if freed(guess) >= target:
        top, bottom = guess, guess - 1
        while bottom >= lo and freed(bottom) >= target:
            top, step = bottom, step * 2
            bottom = top - step
        bottom = max(bottom, lo - 1)
    else:
        bottom, top = guess, guess + 1
        while top < hi and freed(top) < target:
            bottom, step = top, step * 2
            top = bottom + step
        top = min(top, hi)
    while top - bottom > 1:  # the answer is in (bottom, top]
        mid = (bottom + top) // 2
        if freed(mid) < target:
            bottom = mid
        else:
            top = mid
    return top
