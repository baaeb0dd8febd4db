"""The staff session-check timer is jittered so sockets opened together do not check together."""

from __future__ import annotations

from itertools import islice

from chatserver.sockets import session_check_delays


def test_first_check_in_the_second_half_of_the_interval() -> None:
    """The first delay lies in [0.5, 1.0] × interval and differs between sockets."""
    firsts = [next(session_check_delays(60.0)) for _ in range(200)]
    assert all(30.0 <= d <= 60.0 for d in firsts)
    assert len(set(firsts)) > 100


def test_later_checks_within_ten_percent() -> None:
    """Every later delay lies within ± 10 % of the interval, and they are not all equal."""
    later = list(islice(session_check_delays(60.0), 1, 501))
    assert all(54.0 <= d <= 66.0 for d in later)
    assert len(set(later)) > 250
