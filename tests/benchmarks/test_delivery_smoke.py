"""The delivery benchmark runs end to end and produces figures (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_delivery_benchmark_produces_figures(tmp_path: Path) -> None:
    """A tiny run fills every figure with a number."""
    out = tmp_path / "r.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.delivery",
            "--pairs",
            "2",
            "--rate",
            "20",
            "--seconds",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["same_process_ms"]["n"] > 0 and results["cross_process_ms"]["n"] > 0
    assert results["workers_1_msg_per_s"] > 0 and results["workers_2_msg_per_s"] > 0
    assert results["raw_relay_msg_per_s"] > 0 and results["product_to_raw_ratio"] > 0
    assert "cross_process_ms" in run.stdout
