"""``chatserver simulate``: how a shift would go, and how many counsellors each hour needs.

    chatserver simulate --arrivals-per-hour 4,6,8,10,12,8 --counsellors 2,2,3,3,4,3 \\
        --mean-handling-minutes 20 --mean-patience-minutes 10
    chatserver simulate --arrivals-per-hour 4,6,8,10,12,8 --target-p90-wait 300
"""

from __future__ import annotations

import argparse
import math
from statistics import median

from queueing.erlang import mean_wait
from queueing.simulator import Scenario, simulate, staffing_plan


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
        )
        print(f"counsellors needed for a p90 wait of at most {args.target_p90_wait:.0f} s:")
        for hour, (rate, need) in enumerate(zip(args.arrivals_per_hour, plan, strict=True)):
            print(f"  hour {hour:2d}: {rate:5.1f} visitors/h -> {need} counsellor(s)")
        return 0
    counsellors = args.counsellors or (
        max(1, math.ceil(max(args.arrivals_per_hour) * handling / 3600)),
    )
    if len(counsellors) == 1:
        counsellors = counsellors * hours
    if len(counsellors) != hours:
        print("chatserver simulate: --counsellors needs one number, or one per hour")
        return 2
    results = [
        simulate(
            Scenario(
                args.arrivals_per_hour,
                counsellors,
                handling,
                sd,
                patience,
                args.crisis_share,
                args.capacity,
                args.seed + i,
            )
        )
        for i in range(args.repeat)
    ]
    waits = sorted(w for r in results for w in r.waits)
    merged = results[0]
    for r in results[1:]:
        merged.waits += r.waits
        merged.served += r.served
        merged.abandoned += r.abandoned
        merged.busy_seconds += r.busy_seconds
        merged.staffed_seconds += r.staffed_seconds
        merged.errors_ours += r.errors_ours
        merged.errors_naive += r.errors_naive
        merged.waited_errors_ours += r.waited_errors_ours
        merged.waited_errors_naive += r.waited_errors_naive
    print(f"shift of {hours} h, {args.repeat} runs, {len(waits)} visitors helped")
    print(
        f"wait p50 {merged.wait_p50:7.0f} s   p90 {merged.wait_p90:7.0f} s   "
        f"mean {merged.mean_wait:7.0f} s"
    )
    print(
        f"left while waiting: {merged.abandonment_share:6.1%}   "
        f"utilisation: {merged.utilisation:6.1%}"
    )
    print(
        f"waiting estimate, median absolute error: ours {merged.mae_ours:6.0f} s   "
        f"naive (position x mean / counsellors) {merged.mae_naive:6.0f} s"
    )
    if merged.waited_errors_ours:
        print(
            f"  only visitors who waited: ours {median(merged.waited_errors_ours):6.0f} s   "
            f"naive {median(merged.waited_errors_naive):6.0f} s"
        )
    if patience is None and len(set(args.arrivals_per_hour)) == 1 and len(set(counsellors)) == 1:
        ec = mean_wait(counsellors[0] * args.capacity, args.arrivals_per_hour[0] / 3600, handling)
        print(f"Erlang C mean wait for this steady state: {ec:7.0f} s")
    return 0
