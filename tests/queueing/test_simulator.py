"""The staffing simulator: Erlang C agreement, estimates, staffing plan, command line."""

from __future__ import annotations

import math

import pytest

from queueing.erlang import mean_wait, probability_of_waiting
from queueing.simulate_cli import main
from queueing.simulator import Scenario, simulate, staffing_plan


def test_erlang_c_known_value() -> None:
    """Erlang C for 2 servers at 1 Erlang is 1/3 (textbook)."""
    assert probability_of_waiting(2, 1.0) == pytest.approx(1 / 3)
    assert math.isinf(mean_wait(2, 2 / 600, 600))


@pytest.mark.parametrize("servers, utilisation", [(2, 0.8), (3, 0.85), (5, 0.75)])
def test_simulator_agrees_with_erlang_c(servers: int, utilisation: float) -> None:
    """Infinite patience, one priority, exponential handling: mean wait within 10% of Erlang C."""
    handling = 600.0
    per_hour = utilisation * servers / handling * 3600
    hours = 1500
    result = simulate(
        Scenario((per_hour,) * hours, (servers,) * hours, handling, None, None, seed=3)
    )
    expected = mean_wait(servers, per_hour / 3600, handling)
    assert result.mean_wait == pytest.approx(expected, rel=0.10)
    assert result.abandonment_share == 0


def test_our_estimate_beats_the_naive_one() -> None:
    """On a busy evening with impatient visitors our estimate errs less than the naive one."""
    runs = [
        simulate(Scenario((8, 10, 12, 12, 10, 8), (3, 3, 4, 4, 3, 3), 1200, 600, 600, 0.05, seed=s))
        for s in range(5)
    ]
    ours = sorted(e for r in runs for e in r.errors_ours)
    naive = sorted(e for r in runs for e in r.errors_naive)
    assert ours[len(ours) // 2] < naive[len(naive) // 2]
    assert all(0 <= r.utilisation <= 1 and 0 <= r.abandonment_share <= 1 for r in runs)


def test_staffing_plan_meets_the_target_and_grows_with_demand() -> None:
    """More visitors per hour never need fewer counsellors, and the plan meets the target."""
    plan = staffing_plan(
        (2, 6, 12), target_p90_wait=300, mean_handling=1200, seed=2, steady_hours=20
    )
    assert plan == sorted(plan) and plan[0] >= 1
    check = simulate(Scenario((12,) * 20, (plan[2],) * 20, 1200, None, None, seed=2))
    assert check.wait_p90 <= 300


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`chatserver simulate` prints waits, abandonment, utilisation and both estimate errors."""
    assert main(["--arrivals-per-hour", "6,8", "--counsellors", "3", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "p90" in out and "utilisation" in out and "naive" in out
    assert main(["--arrivals-per-hour", "4,8", "--target-p90-wait", "300"]) == 0
    assert "counsellor(s)" in capsys.readouterr().out
