"""The waiting estimate from live data: residual conversation times, free places, leaving."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queueing.eta import MIN_SAMPLES, estimate_wait, estimate_waits, naive_wait, remaining

#: Recent conversation lengths with a mean of 1200 s and a longest of 1800 s.
SPREAD = [600.0, 1200.0, 1800.0] * 2
#: Recent lengths that hardly vary: about 20 minutes each.
REGULAR = [1100.0, 1150.0, 1200.0, 1250.0, 1300.0] * 4
#: Mostly short conversations, a few very long ones.
SKEWED = [300.0] * 8 + [3000.0] * 2


def test_remaining_time_of_a_conversation_in_progress() -> None:
    """The expected rest of a conversation of age a is the mean of h - a over longer recent
    ones; when none was longer, a mean conversation."""
    assert remaining(0, SPREAD) == pytest.approx(1200)
    assert remaining(1000, SPREAD) == pytest.approx(((1200 - 1000) * 2 + (1800 - 1000) * 2) / 4)
    assert remaining(400, SKEWED) == pytest.approx(2600)
    assert remaining(5000, SKEWED) == pytest.approx(sum(SKEWED) / len(SKEWED))


def test_too_little_data_gives_no_estimate() -> None:
    """Fewer than MIN_SAMPLES lengths, nobody on shift or no position: null."""
    assert estimate_wait(2, SPREAD[: MIN_SAMPLES - 1], 2, ages=[0, 0]) is None
    assert estimate_wait(2, SPREAD, 0) is None
    assert estimate_wait(0, SPREAD, 2) is None
    assert estimate_wait(2, SPREAD[:MIN_SAMPLES], 2, ages=[0, 0]) is not None


def test_all_conversations_just_begun_is_the_naive_estimate_at_even_odds() -> None:
    """With every conversation just begun (or ages unknown) the count of freeings grows as
    in the naive estimate; the estimate is that figure less the skew of the wait (a third
    of a turn: it aims at even odds, not at a mean that long waits pull up)."""
    naive = naive_wait(5, 1200, 2)
    ours = estimate_wait(5, SPREAD, 2, ages=[0.0, 0.0])
    assert ours == estimate_wait(5, SPREAD, 2)
    assert ours is not None
    assert naive - 0.4 * 600 < ours < naive - 0.25 * 600


def test_conversations_near_their_typical_end_shorten_the_wait() -> None:
    """Where lengths hardly vary and every conversation is about as old as they get, the
    first in line is told far less than when they have just begun, and than naive."""
    near_end = estimate_wait(1, REGULAR, 3, ages=[1150.0] * 3)
    begun = estimate_wait(1, REGULAR, 3, ages=[0.0] * 3)
    assert near_end is not None and begun is not None
    assert near_end <= 100 < naive_wait(1, 1200, 3) < begun


def test_an_old_conversation_where_lengths_vary_is_likely_a_long_one() -> None:
    """Past the usual short length, a conversation is one of the long ones: the visitor
    waits for its long rest, not for a short one."""
    old = estimate_wait(1, SKEWED, 1, ages=[400.0])
    new = estimate_wait(1, SKEWED, 1, ages=[0.0])
    assert old is not None and new is not None
    assert new <= 300 and old == pytest.approx(2600, abs=1)


def test_free_places_wrap_up_and_leaving_shorten_the_wait() -> None:
    """A free place helps at once; a place in wrap-up when it ends; those ahead who are
    likely to leave are not waited for; later positions never wait less."""
    assert estimate_wait(1, SPREAD, 2, free_now=1, ages=[100.0]) == 0
    assert estimate_wait(1, SPREAD, 2, ages=[100.0], wrapup_left=[60.0]) == 60
    stay = estimate_wait(5, SPREAD, 2, ages=[300.0, 900.0])
    leave = estimate_wait(5, SPREAD, 2, abandon_share=0.5, ages=[300.0, 900.0])
    assert stay is not None and leave is not None and leave < stay
    waits = [estimate_wait(p, SPREAD, 2, ages=[300.0, 900.0]) for p in range(1, 10)]
    assert waits == sorted(waits)


@settings(max_examples=200, deadline=None)
@given(
    handling=st.lists(st.floats(1, 4000, allow_nan=False), min_size=MIN_SAMPLES, max_size=40)
    | st.lists(st.sampled_from([60.0, 600.0, 1200.0]), min_size=MIN_SAMPLES, max_size=12),
    servers=st.integers(1, 12),
    free=st.integers(0, 4),
    abandon=st.floats(0, 1),
    ages=st.none() | st.lists(st.floats(0, 5000, allow_nan=False), max_size=12),
    wrapup=st.lists(st.floats(-10, 300, allow_nan=False), max_size=3),
    positions=st.integers(0, 60),
)
def test_all_positions_at_once_equal_one_at_a_time(
    handling: list[float],
    servers: int,
    free: int,
    abandon: float,
    ages: list[float] | None,
    wrapup: list[float],
    positions: int,
) -> None:
    """estimate_waits(n) is exactly [estimate_wait(p) for p in 1..n], whatever the data."""
    args = (handling, servers, free, abandon, ages, wrapup)
    assert estimate_waits(positions, *args) == [
        estimate_wait(p, *args) for p in range(1, positions + 1)
    ]


def test_all_positions_at_once_without_enough_data() -> None:
    """Too few samples or nobody on shift: every position's estimate is null."""
    assert estimate_waits(3, SPREAD[: MIN_SAMPLES - 1], 2) == [None] * 3
    assert estimate_waits(2, SPREAD, 0) == [None, None]


def test_a_later_position_never_waits_less_when_many_leave() -> None:
    """With a free place and most visitors leaving (turns below one), the estimate still
    grows with the position."""
    waits = [
        estimate_wait(p, SPREAD, 2, free_now=1, abandon_share=0.9, ages=[300.0])
        for p in range(1, 8)
    ]
    assert waits == sorted(waits) and waits[1] != waits[-1]
