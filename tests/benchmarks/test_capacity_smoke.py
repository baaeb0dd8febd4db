"""The capacity benchmark runs end to end and produces figures (no timing is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_capacity_benchmark_produces_figures(tmp_path: Path) -> None:
    """A --quick run fills every figure, for every target, with a real number."""
    out = tmp_path / "capacity.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.capacity",
            "--quick",
            "--json",
            str(out),
            "--chart",
            str(tmp_path / "latency.png"),
            "--logs",
            str(tmp_path / "logs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    figures = results["figures"]
    for target in ("raw", "embedded", "workers2"):
        assert any(key.startswith(f"{target}.") for key in figures), target
    bad = {
        k: v for k, v in figures.items() if not isinstance(v, int | float) or not math.isfinite(v)
    }
    assert not bad, bad
    assert figures["embedded.connections_held"] > 0
    assert figures["embedded.closed_loop_msg_per_s"] > 0
    assert "workers2.ratio.to_one_worker_throughput" in figures
    assert "relay throughput at saturation" in run.stdout
