"""``chatserver simulate``: how a shift would go, and how many counsellors each hour needs.

    chatserver simulate --arrivals-per-hour 4,6,8,10,12,8 --counsellors 2,2,3,3,4,3 \\
        --mean-handling-minutes 20 --mean-patience-minutes 10
    chatserver simulate --arrivals-per-hour 4,6,8,10,12,8 --target-p90-wait 300
    chatserver simulate --arrivals-per-hour 9 --counsellors 4 --mean-patience-minutes inf \
        --steady-hours 500

The Erlang C figure is printed only beside a long steady run (``--steady-hours``): a shift
of a few hours starts with an empty queue and never reaches the steady state Erlang C
describes, so the two numbers would not be comparable.
"""

from __future__ import annotations

import argparse
import math

from queueing.erlang import mean_wait
from queueing.simulator import HOUR, Scenario, simulate, staffing_plan

#: Shortest steady run beside which the Erlang C figure is printed.
STEADY_HOURS_MIN = 100


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chatserver simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--arrivals-per-hour",
        type=_floats,
        default=(4, 6, 8, 10, 12, 10, 8),
        help="visitors per hour, one number per hour of the shift",
    )
    p.add_argument(
        "--counsellors",
        type=_ints,
        default=None,
        help="counsellors on shift per hour (one number = all hours)",
    )
    p.add_argument("--capacity", type=int, default=1, help="chats per counsellor at once")
    p.add_argument("--mean-handling-minutes", type=float, default=20.0)
    p.add_argument(
        "--handling-sd-minutes",
        type=float,
        default=None,
        help="lognormal with this spread (default: exponential)",
    )
    p.add_argument(
        "--mean-patience-minutes",
        type=float,
        default=10.0,
        help="mean time before a waiting visitor gives up; 'inf' = never",
    )
    p.add_argument("--crisis-share", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=20, help="simulate the shift this many times")
    p.add_argument(
        "--target-p90-wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="print how many counsellors each hour needs for this p90 wait",
    )
    p.add_argument(
        "--max-abandon-share",
        type=float,
        default=0.05,
        help="with --target-p90-wait: at most this share may give up (default 0.05)",
    )
    p.add_argument(
        "--steady-hours",
        type=int,
        default=None,
        metavar="HOURS",
        help="one rate and one staffing level run this long, the first tenth discarded as "
        f"warm-up; from {STEADY_HOURS_MIN} h (and infinite patience) the Erlang C mean "
        "wait is printed beside it",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    hours = len(args.arrivals_per_hour)
    patience = None if math.isinf(args.mean_patience_minutes) else args.mean_patience_minutes * 60
    handling = args.mean_handling_minutes * 60
    sd = args.handling_sd_minutes * 60 if args.handling_sd_minutes else None
    if args.target_p90_wait is not None:
        plan = staffing_plan(
            args.arrivals_per_hour,
            args.target_p90_wait,
            handling,
            patience,
            sd,
            args.capacity,
            args.seed,
            max_abandon_share=args.max_abandon_share,
        )
        print(
            f"counsellors needed for 90 % helped within {args.target_p90_wait:.0f} s "
            f"(those who give up count as not helped; at most "
            f"{args.max_abandon_share:.0%} giving up):"
        )
        for hour, (rate, need) in enumerate(zip(args.arrivals_per_hour, plan, strict=True)):
            print(f"  hour {hour:2d}: {rate:5.1f} visitors/h -> {need} counsellor(s)")
        return 0
    arrivals = args.arrivals_per_hour
    counsellors = args.counsellors or (max(1, math.ceil(max(arrivals) * handling / 3600)),)
    steady = args.steady_hours is not None
    if steady:
        if len(arrivals) != 1 or len(counsellors) != 1:
            print("chatserver simulate: --steady-hours needs one rate and one staffing level")
            return 2
        hours = args.steady_hours
        arrivals = arrivals * hours
    if len(counsellors) == 1:
        counsellors = counsellors * hours
    if len(counsellors) != hours:
        print("chatserver simulate: --counsellors needs one number, or one per hour")
        return 2
    warmup = hours * HOUR / 10 if steady else 0.0
    results = [
        simulate(
            Scenario(
                arrivals,
                counsellors,
                handling,
                sd,
                patience,
                args.crisis_share,
                args.capacity,
                args.seed + i,
                warmup=warmup,
            )
        )
        for i in range(args.repeat)
    ]
    merged = results[0]
    for r in results[1:]:
        merged.merge(r)
    kind = (
        f"steady run of {hours} h (first {hours / 10:g} h discarded)"
        if steady
        else (f"shift of {hours} h")
    )
    print(f"{kind}, {args.repeat} runs, {len(merged.waits)} visitors helped")
    print(
        f"waiting estimate, median absolute error over visitors who really waited: "
        f"ours {merged.waited_mae_ours:6.0f} s   naive {merged.waited_mae_naive:6.0f} s"
    )
    print(
        f"  over every visitor helped (most helped at once, where both are right): "
        f"ours {merged.mae_ours:6.0f} s   naive (position x mean / counsellors) "
        f"{merged.mae_naive:6.0f} s"
    )
    print(
        f"wait p50 {merged.wait_p50:7.0f} s   p90 {merged.wait_p90:7.0f} s   "
        f"mean {merged.mean_wait:7.0f} s   (of those helped)"
    )
    print(
        f"left while waiting: {merged.abandonment_share:6.1%}   "
        f"utilisation: {merged.utilisation:6.1%}"
    )
    if patience is None and steady:
        if hours >= STEADY_HOURS_MIN:
            ec = mean_wait(counsellors[0] * args.capacity, arrivals[0] / 3600, handling)
            print(f"Erlang C mean wait for this steady state: {ec:7.0f} s")
        else:
            print(
                f"(Erlang C not shown: {hours} h is too short to reach the steady state; "
                f"use --steady-hours {STEADY_HOURS_MIN} or more)"
            )
    return 0
