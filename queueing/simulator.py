"""A staffing simulator: one shift on a virtual clock, through the real queue policy.

Discrete events (arrivals, ends of conversations, visitors giving up, shift changes) are
kept in a heap; after each, :func:`queueing.policy.plan_assignments` — the very function the
server runs — decides who is helped. At each arrival the visitor's waiting estimate
(:func:`queueing.eta.estimate_wait`, from what the simulation has seen so far) and the naive
one are recorded, and compared with the wait that followed.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field
from statistics import median, quantiles

from queueing.eta import estimate_wait, naive_wait
from queueing.policy import (
    PRIORITY_CRISIS,
    PRIORITY_NORMAL,
    CounsellorSlot,
    QueuePolicy,
    WaitingVisitor,
    plan_assignments,
    queue_order,
)

HOUR = 3600.0


@dataclass(frozen=True)
class Scenario:
    arrivals_per_hour: tuple[float, ...]
    counsellors_per_hour: tuple[int, ...]
    mean_handling: float = 20 * 60.0
    handling_sd: float | None = None  # None: exponential; else lognormal with this sd
    mean_patience: float | None = 10 * 60.0  # None: infinitely patient
    crisis_share: float = 0.0
    capacity: int = 1
    seed: int = 1


@dataclass
class Result:
    waits: list[float] = field(default_factory=list)
    served: int = 0
    abandoned: int = 0
    busy_seconds: float = 0.0
    staffed_seconds: float = 0.0
    errors_ours: list[float] = field(default_factory=list)
    errors_naive: list[float] = field(default_factory=list)
    #: The same errors, only for visitors who really waited (not helped at once).
    waited_errors_ours: list[float] = field(default_factory=list)
    waited_errors_naive: list[float] = field(default_factory=list)

    def _q(self, n: int) -> float:
        if len(self.waits) < 2:
            return self.waits[0] if self.waits else math.nan
        return quantiles(self.waits, n=10, method="inclusive")[n - 1]

    @property
    def wait_p50(self) -> float:
        return median(self.waits) if self.waits else math.nan

    @property
    def wait_p90(self) -> float:
        return self._q(9)

    @property
    def mean_wait(self) -> float:
        return sum(self.waits) / len(self.waits) if self.waits else math.nan

    @property
    def abandonment_share(self) -> float:
        total = self.served + self.abandoned
        return self.abandoned / total if total else 0.0

    @property
    def utilisation(self) -> float:
        return self.busy_seconds / self.staffed_seconds if self.staffed_seconds else 0.0

    @property
    def mae_ours(self) -> float:
        return median(self.errors_ours) if self.errors_ours else math.nan

    @property
    def mae_naive(self) -> float:
        return median(self.errors_naive) if self.errors_naive else math.nan


class _Sim:
    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.rng = random.Random(s.seed)
        self.events: list[tuple[float, int, str, str]] = []
        self.n = 0
        self.waiting: dict[str, WaitingVisitor] = {}
        staff = max(s.counsellors_per_hour)
        self.load = {f"c{i}": 0 for i in range(staff)}
        self.idle_since = {f"c{i}": 0.0 for i in range(staff)}
        self.staffed = 0
        self.arrived_at: dict[str, float] = {}
        self.estimates: dict[str, tuple[float | None, float]] = {}
        self.recent_handling: deque[float] = deque(maxlen=50)
        self.recent_outcomes: deque[int] = deque(maxlen=50)  # 1 = left while waiting
        self.result = Result()
        self.last_time = 0.0
        self.policy = QueuePolicy()

    def push(self, at: float, kind: str, ident: str = "") -> None:
        self.n += 1
        heapq.heappush(self.events, (at, self.n, kind, ident))

    def handling(self) -> float:
        mean, sd = self.s.mean_handling, self.s.handling_sd
        if sd is None:
            return self.rng.expovariate(1 / mean)
        sigma2 = math.log(1 + (sd / mean) ** 2)
        return self.rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))

    def run(self) -> Result:
        hours = len(self.s.arrivals_per_hour)
        for h in range(hours):
            self.push(h * HOUR, "shift", str(h))
        self.push(self.rng.expovariate(self.rate(0)) if self.rate(0) else HOUR, "arrival")
        end = hours * HOUR
        while self.events:
            at, _, kind, ident = heapq.heappop(self.events)
            self.account(min(at, end))
            if at >= end and kind in ("arrival", "shift"):
                continue
            getattr(self, f"on_{kind}")(at, ident)
            self.assign(at)
        return self.result

    def rate(self, hour: int) -> float:
        return self.s.arrivals_per_hour[hour] / HOUR

    def account(self, now: float) -> None:
        span = now - self.last_time
        if span > 0:
            self.result.busy_seconds += span * sum(self.load.values())
            self.result.staffed_seconds += span * self.staffed * self.s.capacity
            self.last_time = now

    def on_shift(self, now: float, ident: str) -> None:
        self.staffed = self.s.counsellors_per_hour[int(ident)]

    def on_arrival(self, now: float, ident: str) -> None:
        conv = f"v{self.n}"
        crisis = self.rng.random() < self.s.crisis_share
        visitor = WaitingVisitor(
            conv, now, PRIORITY_CRISIS if crisis else PRIORITY_NORMAL, crisis=crisis
        )
        self.waiting[conv] = visitor
        self.arrived_at[conv] = now
        position = [v.conversation_id for v in queue_order(self.waiting.values())].index(conv) + 1
        free = sum(max(0, self.s.capacity - self.load[c]) for c in self.shift_staff())
        servers = max(1, self.staffed * self.s.capacity)
        abandon = (
            sum(self.recent_outcomes) / len(self.recent_outcomes) if self.recent_outcomes else 0
        )
        ours = estimate_wait(position, list(self.recent_handling), servers, free, abandon)
        naive = naive_wait(position, self.s.mean_handling, servers)
        self.estimates[conv] = (float(ours) if ours is not None else None, naive)
        if self.s.mean_patience is not None:
            self.push(now + self.rng.expovariate(1 / self.s.mean_patience), "abandon", conv)
        hour = int(now // HOUR)
        rate = self.rate(hour)
        self.push(now + (self.rng.expovariate(rate) if rate else HOUR - now % HOUR), "arrival")

    def on_abandon(self, now: float, conv: str) -> None:
        if self.waiting.pop(conv, None) is not None:
            self.result.abandoned += 1
            self.recent_outcomes.append(1)

    def on_end(self, now: float, ident: str) -> None:
        staff, duration = ident.split("|")
        self.load[staff] -= 1
        self.idle_since[staff] = now
        self.recent_handling.append(float(duration))

    def shift_staff(self) -> list[str]:
        return [f"c{i}" for i in range(self.staffed)]

    def assign(self, now: float) -> None:
        slots = [
            CounsellorSlot(c, self.s.capacity, self.load[c], self.idle_since[c])
            for c in self.shift_staff()
        ]
        for pairing in plan_assignments(list(self.waiting.values()), slots, now, self.policy):
            visitor = self.waiting.pop(pairing.conversation_id)
            wait = now - visitor.enqueued_at
            self.result.waits.append(wait)
            self.result.served += 1
            self.recent_outcomes.append(0)
            ours, naive = self.estimates.pop(visitor.conversation_id)
            if ours is not None:
                self.result.errors_ours.append(abs(ours - wait))
                self.result.errors_naive.append(abs(naive - wait))
                if wait > 0:
                    self.result.waited_errors_ours.append(abs(ours - wait))
                    self.result.waited_errors_naive.append(abs(naive - wait))
            self.load[pairing.staff_id] += 1
            self.idle_since[pairing.staff_id] = now
            duration = self.handling()
            self.push(now + duration, "end", f"{pairing.staff_id}|{duration}")


def simulate(scenario: Scenario) -> Result:
    return _Sim(scenario).run()


def staffing_plan(
    arrivals_per_hour: tuple[float, ...],
    target_p90_wait: float,
    mean_handling: float,
    mean_patience: float | None = None,
    handling_sd: float | None = None,
    capacity: int = 1,
    seed: int = 1,
    steady_hours: int = 30,
    most: int = 40,
) -> list[int]:
    """The fewest counsellors each hour needs for a p90 wait within the target (each hour's
    rate simulated as a steady state of ``steady_hours``)."""
    plan = []
    for rate in arrivals_per_hour:
        need = 0
        while need < most:
            if rate == 0:
                break
            need += 1
            result = simulate(
                Scenario(
                    (rate,) * steady_hours,
                    (need,) * steady_hours,
                    mean_handling,
                    handling_sd,
                    mean_patience,
                    capacity=capacity,
                    seed=seed,
                )
            )
            if result.waits and result.wait_p90 <= target_p90_wait:
                break
        plan.append(need)
    return plan
