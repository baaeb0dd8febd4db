"""Watch the serve process's event loop: how late it wakes up, and how long the cyclic garbage
collector holds it.

* :meth:`LoopWatch.run`, a task, sleeps ``interval`` seconds over and over and records how
  much later than asked each sleep ended: the event-loop lag. Every callback that held the
  loop (a long loop over all connections, a garbage collection, a blocking call) shows up as
  lag. Over ``warn_after`` seconds it logs ``event_loop_stalled`` with ``lag_ms`` and
  ``gc_ms``, the time the collector took within that sleep (so a stall is put down to the
  collector or to our own code at a glance).
* :meth:`LoopWatch.install_gc` adds a ``gc.callbacks`` hook timing each collection by
  generation; one over ``gc_warn_after`` logs ``gc_pause`` (generation, ms, collected, and
  cpu_ms: this thread's CPU time in it; much less than ms means the CPU was taken away).

Both are histograms kept in this process (plain numbers, no lock: a gc callback may run in
the middle of anything) and reach ``/metrics`` through :meth:`LoopWatch.collect` as
``chatserver_event_loop_lag_seconds`` and ``chatserver_gc_pause_seconds{generation}``; each
process answers for itself. ``chatserver serve`` installs the hook and starts the task on
:data:`WATCH`. Nothing here carries personal data: durations and counts only.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import time
from collections.abc import Iterator
from typing import Any

import structlog
from prometheus_client.core import HistogramMetricFamily

log = structlog.get_logger("chatserver.loopwatch")

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
INTERVAL = 0.1
WARN_AFTER = 0.25
GC_WARN_AFTER = 0.05


class Histogram:
    """Cumulative bucket counts, a sum and a count: what a Prometheus histogram exposes."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)  # per bucket, not cumulative (cheap to add to)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.sum += value
        self.count += 1

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


class LoopWatch:
    """The lag and gc-pause histograms of one process, and the task and hook that fill them."""

    def __init__(
        self,
        interval: float = INTERVAL,
        warn_after: float = WARN_AFTER,
        gc_warn_after: float = GC_WARN_AFTER,
    ) -> None:
        self.interval = interval
        self.warn_after = warn_after
        self.gc_warn_after = gc_warn_after
        self.lag = Histogram(LAG_BUCKETS)
        self.gc_pauses = {generation: Histogram(GC_BUCKETS) for generation in range(3)}
        self.gc_seconds = 0.0  # all collections so far: a sleep's share is the difference
        self._gc_start = self._gc_cpu_start = 0.0

    async def run(self) -> None:
        """Measure the loop's lateness until cancelled."""
        clock = time.perf_counter
        while True:
            gc_before = self.gc_seconds
            asked = clock() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, clock() - asked)
            self.lag.observe(lag)
            if lag >= self.warn_after:
                log.warning(
                    "event_loop_stalled",
                    lag_ms=round(lag * 1000, 1),
                    gc_ms=round((self.gc_seconds - gc_before) * 1000, 1),
                )

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            self._gc_cpu_start = time.thread_time()
            return
        pause = time.perf_counter() - self._gc_start
        generation = int(info.get("generation", 2))
        self.gc_seconds += pause
        self.gc_pauses.setdefault(generation, Histogram(GC_BUCKETS)).observe(pause)
        if pause >= self.gc_warn_after:
            log.warning(
                "gc_pause",
                generation=generation,
                ms=round(pause * 1000, 1),
                cpu_ms=round((time.thread_time() - self._gc_cpu_start) * 1000, 1),
                collected=int(info.get("collected", 0)),
            )

    def install_gc(self) -> None:
        """Time every collection from now on (idempotent)."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def uninstall_gc(self) -> None:
        while self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """The two histograms as Prometheus metric families (a custom collector)."""
        yield HistogramMetricFamily(
            "chatserver_event_loop_lag_seconds",
            f"How much later than asked a {self.interval} s sleep of this process ended",
            buckets=self.lag.buckets(),
            sum_value=self.lag.sum,
        )
        pauses = HistogramMetricFamily(
            "chatserver_gc_pause_seconds",
            "Cyclic garbage collections of this process, by generation",
            labels=["generation"],
        )
        for generation, hist in sorted(self.gc_pauses.items()):
            pauses.add_metric([str(generation)], hist.buckets(), hist.sum)
        yield pauses


#: The serve process's watch (gc callbacks are per process); /metrics reports it.
WATCH = LoopWatch()
