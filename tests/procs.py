"""Real ``chatserver serve`` processes for fault-injection tests."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port


@contextlib.contextmanager
def chatserver(
    tmp: Path,
    *,
    redis_url: str | None = None,
    key_prefix: str = "chat",
    workers: int = 1,
    config: str = "",
    grace: dict[str, float] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start ``chatserver serve``; yields (process, port) once /readyz answers 200."""
    port = free_port()
    cfg = tmp / f"chat-{port}.toml"
    graces = {"node_dead_seconds": 2.0, "visitor_seconds": 30.0, **(grace or {})}
    cfg.write_text(
        f'[server]\nkey_prefix = "{key_prefix}"\n[grace]\n'
        + "".join(f"{name} = {value}\n" for name, value in graces.items())
        + config
    )
    args = [
        sys.executable,
        "-m",
        "chatserver",
        "serve",
        "--port",
        str(port),
        "--config",
        str(cfg),
        "--workers",
        str(workers),
    ]
    args += ["--redis-url", redis_url] if redis_url else ["--data-dir", str(tmp / "data")]
    log = open(tmp / f"serve-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp / f"serve-{port}.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "chatserver did not get ready"
            time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
