"""A staffing simulator: one shift on a virtual clock, through the real queue policy.

Discrete events (arrivals, ends of conversations, visitors giving up, shift changes) are
kept in a heap; after each, :func:`queueing.policy.plan_assignments` — the very function the
server runs — decides who is helped. At each arrival the visitor's waiting estimate
(:func:`queueing.eta.estimate_wait`, from the same live data the server has: the last
RECENT conversation lengths, the ages of the conversations in progress, the free places and
the recent share who left) and the naive one (with the true mean length, which no server
knows) are recorded, and compared with the wait that followed.
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
#: Recent conversation lengths and outcomes the estimate sees (the server keeps 200).
RECENT = 200


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
    #: Seconds at the start not counted in the result: the queue starts empty, so a run
    #: reaches its steady state only after a while.
    warmup: float = 0.0
    #: Conversation lengths the estimate knows at the start. The server keeps the last
    #: RECENT in Redis across shifts, so a shift starts with those of earlier days (drawn
    #: from the same distribution, by a generator of their own: the shift itself is the
    #: same whatever this is); 0 is a brand-new server.
    history: int = RECENT


@dataclass
class Result:
    #: Waits of visitors who were helped.
    waits: list[float] = field(default_factory=list)
    #: How long each visitor who gave up had waited.
    abandoned_waits: list[float] = field(default_factory=list)
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

    def share_waiting_longer(self, seconds: float) -> float:
        """Of every visitor (helped or not), the share not helped within ``seconds``: those
        who gave up count as not helped in time, however soon they left."""
        total = len(self.waits) + len(self.abandoned_waits)
        if not total:
            return math.nan
        late = sum(1 for w in self.waits if w > seconds) + len(self.abandoned_waits)
        return late / total

    @property
    def waited_mae_ours(self) -> float:
        """Median absolute error of our estimate, over visitors who really waited."""
        return median(self.waited_errors_ours) if self.waited_errors_ours else math.nan

    @property
    def waited_mae_naive(self) -> float:
        return median(self.waited_errors_naive) if self.waited_errors_naive else math.nan

    def merge(self, other: Result) -> None:
        """Add another run's numbers to this one (for several seeds)."""
        self.waits += other.waits
        self.abandoned_waits += other.abandoned_waits
        self.served += other.served
        self.abandoned += other.abandoned
        self.busy_seconds += other.busy_seconds
        self.staffed_seconds += other.staffed_seconds
        self.errors_ours += other.errors_ours
        self.errors_naive += other.errors_naive
        self.waited_errors_ours += other.waited_errors_ours
        self.waited_errors_naive += other.waited_errors_naive

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
        # As many as the server keeps (the Redis lists are trimmed to RECENT).
        self.recent_handling: deque[float] = deque(maxlen=RECENT)
        self.recent_outcomes: deque[int] = deque(maxlen=RECENT)  # 1 = left while waiting
        #: Conversations in progress: conversation id -> (counsellor, when it began).
        self.in_progress: dict[str, tuple[str, float]] = {}
        earlier = random.Random(f"history-{s.seed}")
        self.recent_handling.extend(self.handling(earlier) for _ in range(s.history))
        self.result = Result()
        self.last_time = 0.0
        self.policy = QueuePolicy()

    def push(self, at: float, kind: str, ident: str = "") -> None:
        self.n += 1
        heapq.heappush(self.events, (at, self.n, kind, ident))

    def handling(self, rng: random.Random | None = None) -> float:
        rng = rng or self.rng
        mean, sd = self.s.mean_handling, self.s.handling_sd
        if sd is None:
            return rng.expovariate(1 / mean)
        sigma2 = math.log(1 + (sd / mean) ** 2)
        return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))

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

    def counted(self, conv: str) -> bool:
        """Whether this visitor arrived after the warm-up (and so counts in the result)."""
        return self.arrived_at[conv] >= self.s.warmup

    def account(self, now: float) -> None:
        now = max(now, self.s.warmup)
        span = now - self.last_time
        if self.last_time < self.s.warmup:
            self.last_time = now
            return
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
        on_shift = set(self.shift_staff())
        ages = [now - at for staff, at in self.in_progress.values() if staff in on_shift]
        ours = estimate_wait(position, list(self.recent_handling), servers, free, abandon, ages)
        naive = naive_wait(position, self.s.mean_handling, servers)
        self.estimates[conv] = (float(ours) if ours is not None else None, naive)
        if self.s.mean_patience is not None:
            self.push(now + self.rng.expovariate(1 / self.s.mean_patience), "abandon", conv)
        hour = int(now // HOUR)
        rate = self.rate(hour)
        self.push(now + (self.rng.expovariate(rate) if rate else HOUR - now % HOUR), "arrival")

    def on_abandon(self, now: float, conv: str) -> None:
        if self.waiting.pop(conv, None) is not None:
            self.recent_outcomes.append(1)
            self.estimates.pop(conv, None)
            if self.counted(conv):
                self.result.abandoned += 1
                self.result.abandoned_waits.append(now - self.arrived_at[conv])

    def on_end(self, now: float, ident: str) -> None:
        staff, duration, conv = ident.split("|")
        del self.in_progress[conv]
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
            self.recent_outcomes.append(0)
            ours, naive = self.estimates.pop(visitor.conversation_id)
            counted = self.counted(visitor.conversation_id)
            if counted:
                self.result.waits.append(wait)
                self.result.served += 1
            if counted and ours is not None:
                self.result.errors_ours.append(abs(ours - wait))
                self.result.errors_naive.append(abs(naive - wait))
                if wait > 0:
                    self.result.waited_errors_ours.append(abs(ours - wait))
                    self.result.waited_errors_naive.append(abs(naive - wait))
            self.load[pairing.staff_id] += 1
            self.idle_since[pairing.staff_id] = now
            duration = self.handling()
            conv = visitor.conversation_id
            self.in_progress[conv] = (pairing.staff_id, now)
            self.push(now + duration, "end", f"{pairing.staff_id}|{duration}|{conv}")


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
    seeds: int = 3,
    max_abandon_share: float = 0.05,
) -> list[int]:
    """The fewest counsellors each hour needs so that 90 % of visitors are helped within
    the target wait. Each hour's rate is simulated as a steady state of ``steady_hours``
    (the first tenth discarded as warm-up), over ``seeds`` runs pooled. A visitor who gave
    up counts as not helped in time: judging only those who were helped would reward a
    plan that lets the queue thin itself out by people leaving. And at most
    ``max_abandon_share`` may give up: each of them is someone who asked for help and left
    without it. (At 12 visitors an hour, 20 minutes each and 10 minutes' patience, 6
    counsellors help 90 % within 5 minutes but lose 6-7 %; 7 lose about 4 %, and 7 is also
    what Erlang C, with nobody leaving, asks for.)"""
    plan = []
    for rate in arrivals_per_hour:
        need = 0
        while need < most:
            if rate == 0:
                break
            need += 1
            pooled = Result()
            for i in range(seeds):
                pooled.merge(
                    simulate(
                        Scenario(
                            (rate,) * steady_hours,
                            (need,) * steady_hours,
                            mean_handling,
                            handling_sd,
                            mean_patience,
                            capacity=capacity,
                            seed=seed + i,
                            warmup=steady_hours * HOUR / 10,
                        )
                    )
                )
            if (
                pooled.share_waiting_longer(target_p90_wait) <= 0.10
                and pooled.abandonment_share <= max_abandon_share
            ):
                break
        plan.append(need)
    return plan
