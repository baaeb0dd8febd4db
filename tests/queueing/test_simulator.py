"""The staffing simulator: Erlang C agreement, estimates, staffing plan, command line."""

from __future__ import annotations

import math

import pytest

from queueing.erlang import mean_wait, probability_of_waiting, servers_for_wait_quantile
from queueing.eta import MIN_SAMPLES
from queueing.simulate_cli import main
from queueing.simulator import HOUR, Result, Scenario, simulate, staffing_plan


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


def test_erlang_c_staffing_for_a_wait_quantile() -> None:
    """12/h at 20 min each: Erlang C needs 7 for 90 % within 5 min (6 leave 17 % waiting)."""
    assert servers_for_wait_quantile(12 / 3600, 1200, 300) == 7


@pytest.mark.parametrize("patience", [600.0, None])
def test_staffing_plan_is_at_least_erlang_c(patience: float | None) -> None:
    """Visitors who give up count against the plan: at 12/h (20 min each, 10 min patience
    or none) it asks for at least what Erlang C asks for a 5 min p90 wait."""
    plan = staffing_plan((12,), target_p90_wait=300, mean_handling=1200, mean_patience=patience)
    assert plan[0] >= servers_for_wait_quantile(12 / 3600, 1200, 300)


def test_abandoned_visitors_count_as_not_helped_in_time() -> None:
    """A visitor who gave up is late however soon they left; their wait is kept."""
    result = Result(waits=[0.0, 10.0, 400.0], abandoned_waits=[5.0])
    assert result.share_waiting_longer(300) == pytest.approx(2 / 4)
    run = simulate(Scenario((12,) * 6, (3,) * 6, 1200, None, 600, seed=4))
    assert run.abandoned == len(run.abandoned_waits) > 0
    assert all(w >= 0 for w in run.abandoned_waits)


def test_warmup_is_not_counted() -> None:
    """Visitors who arrive during the warm-up are left out of the result."""
    whole = simulate(Scenario((10,) * 4, (3,) * 4, 1200, None, 600, seed=5, warmup=4 * HOUR))
    assert whole.served == whole.abandoned == 0 and whole.staffed_seconds == 0
    half = simulate(Scenario((10,) * 4, (3,) * 4, 1200, None, 600, seed=5, warmup=2 * HOUR))
    full = simulate(Scenario((10,) * 4, (3,) * 4, 1200, None, 600, seed=5))
    assert 0 < half.served + half.abandoned < full.served + full.abandoned


#: Shifts the estimate is judged on: (arrivals per hour, counsellors per hour, mean
#: handling, handling sd (None: exponential), mean patience, crisis share).
SHIFTS = {
    "busy evening": ((8, 10, 12, 12, 10, 8), (3, 3, 4, 4, 3, 3), 1200, 600, 600, 0.05),
    "README example": ((4, 6, 8, 10, 12, 8), (2, 2, 3, 3, 4, 3), 1200, None, 600, 0.05),
    "regular lengths": ((4, 6, 8, 10, 12, 10, 8), (4,) * 7, 1200, 300, 600, 0.05),
    "wildly varying lengths": ((4, 6, 8, 10, 12, 10, 8), (4,) * 7, 1200, 2400, 600, 0.05),
    "patient, exponential": ((9,) * 7, (4,) * 7, 1200, None, None, 0.05),
}


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_estimate_beats_naive_for_visitors_who_really_waited(shift: str) -> None:
    """Over visitors who waited, our estimate errs less than the naive one (helped at
    once, ours is exactly right and the naive one is not: that comparison is unfair)."""
    arrivals, counsellors, handling, sd, patience, crisis = SHIFTS[shift]
    pooled = Result()
    for seed in range(10):
        pooled.merge(
            simulate(Scenario(arrivals, counsellors, handling, sd, patience, crisis, seed=seed))
        )
    assert len(pooled.waited_errors_ours) >= 90
    assert pooled.waited_mae_ours < pooled.waited_mae_naive


def test_the_estimate_sees_live_conversations_and_remembered_lengths() -> None:
    """A shift starts with the lengths the server remembers from earlier days, so the
    first visitor who waits already gets an estimate; a brand-new server gives none until
    enough conversations have ended. Remembering changes only the estimates, not the shift."""
    scenario = Scenario((12,) * 3, (2,) * 3, 1200, None, 600, seed=6)
    remembered = simulate(scenario)
    new = simulate(Scenario((12,) * 3, (2,) * 3, 1200, None, 600, seed=6, history=0))
    assert remembered.waits == new.waits and remembered.abandoned == new.abandoned
    assert len(remembered.errors_ours) == remembered.served
    assert remembered.served - MIN_SAMPLES >= len(new.errors_ours) > 0


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`chatserver simulate` prints the estimate errors of visitors who waited first, then
    waits, abandonment and utilisation; Erlang C only beside a long steady run."""
    assert main(["--arrivals-per-hour", "6,8", "--counsellors", "3", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "p90" in out and "utilisation" in out and "naive" in out
    lines = out.splitlines()
    assert "really waited" in lines[1] and "every visitor" in lines[2]
    short = ["--arrivals-per-hour", "9", "--counsellors", "4", "--mean-patience-minutes", "inf"]
    assert main(short) == 0
    assert "Erlang C mean wait" not in capsys.readouterr().out
    assert main([*short, "--steady-hours", "20", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "Erlang C mean wait" not in out and "too short" in out
    assert main([*short, "--steady-hours", "200", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert f"Erlang C mean wait for this steady state: {mean_wait(4, 9 / 3600, 1200):7.0f} s" in out
    assert "first 20 h discarded" in out
    assert main(["--arrivals-per-hour", "4,8", "--target-p90-wait", "300"]) == 0
    assert "counsellor(s)" in capsys.readouterr().out
