"""The event-loop watch (chatserver.loopwatch): lag and gc pauses reach the histograms, the
log and the serve process's /metrics."""

from __future__ import annotations

import asyncio
import gc
import time
import urllib.request
from pathlib import Path

import structlog
from prometheus_client.parser import text_string_to_metric_families

from chatserver.loopwatch import LoopWatch
from tests.chatserver.test_cli import serving
from tests.conftest import free_port

BLOCK = 0.3  # seconds the test holds the loop


def over(buckets: list[tuple[str, float]], bound: str) -> float:
    """Observations above ``bound`` (a bucket's le) in cumulative buckets."""
    counts = dict(buckets)
    return counts["+Inf"] - counts[bound]


async def test_a_blocked_loop_shows_as_lag_in_the_histogram_and_the_log() -> None:
    """Holding the loop BLOCK s gives a lag observation ≥ BLOCK and one event_loop_stalled."""
    watch = LoopWatch(interval=0.01, warn_after=0.1)
    task = asyncio.create_task(watch.run())
    try:
        while watch.lag.count < 3:  # noqa: ASYNC110 - running (polls a plain counter)
            await asyncio.sleep(0.01)
        with structlog.testing.capture_logs() as logs:
            before = watch.lag.count
            time.sleep(BLOCK)  # the stall under test
            while watch.lag.count == before:  # noqa: ASYNC110 - the sleep that waited
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert over(watch.lag.buckets(), "0.25") >= 1
    assert watch.lag.sum >= BLOCK
    stalls = [e for e in logs if e["event"] == "event_loop_stalled"]
    assert len(stalls) == 1, logs
    assert stalls[0]["lag_ms"] >= BLOCK * 1000
    assert set(stalls[0]) == {"event", "log_level", "lag_ms", "gc_ms"}


def test_a_forced_collection_is_timed_by_generation_and_logged_when_long() -> None:
    """gc.collect() lands in generation 2's histogram; over gc_warn_after it logs gc_pause."""
    watch = LoopWatch(gc_warn_after=0.0)  # every collection counts as long here
    garbage = []
    for _ in range(1000):
        node: dict[str, object] = {}
        node["me"] = node  # cycles: only the collector frees them
        garbage.append(node)
    del garbage, node
    watch.install_gc()
    try:
        with structlog.testing.capture_logs() as logs:
            collected = gc.collect()
    finally:
        watch.uninstall_gc()
    assert watch.gc_pauses[2].count == 1
    assert watch.gc_pauses[2].sum > 0
    assert watch.gc_seconds == watch.gc_pauses[2].sum
    pauses = [e for e in logs if e["event"] == "gc_pause"]
    assert len(pauses) == 1 and pauses[0]["generation"] == 2
    assert pauses[0]["collected"] == collected >= 1000
    assert set(pauses[0]) == {"event", "log_level", "generation", "ms", "cpu_ms", "collected"}
    gc.collect()  # after uninstall_gc: not timed
    assert watch.gc_pauses[2].count == 1


def test_serve_reports_loop_lag_and_its_startup_collection_on_metrics(tmp_path: Path) -> None:
    """chatserver serve runs the watch: /metrics has lag observations and a gen-2 pause."""
    port = free_port()
    with serving(tmp_path / "data", port):
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            values = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            if values.get(("chatserver_event_loop_lag_seconds_count", ()), 0) >= 2:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
    # tune_gc's first whole collection, timed by the hook installed before it
    assert values[("chatserver_gc_pause_seconds_count", (("generation", "2"),))] >= 1
    assert values[("chatserver_gc_pause_seconds_sum", (("generation", "2"),))] > 0
    assert values[("chatserver_event_loop_lag_seconds_bucket", (("le", "+Inf"),))] >= 2
