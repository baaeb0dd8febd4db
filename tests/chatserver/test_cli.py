"""The real command line: ``chatserver serve`` on the embedded Redis, ``staff add``, restart."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import websockets

from tests.conftest import free_port
from tests.helpers import Client

pytestmark = pytest.mark.slow
CHATSERVER = [sys.executable, "-m", "chatserver"]


@contextlib.contextmanager
def serving(data_dir: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    log = open(data_dir.parent / f"serve-{port}-{time.time_ns()}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [*CHATSERVER, "serve", "--port", str(port), "--data-dir", str(data_dir), *extra],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with __import__("urllib.request").request.urlopen(
                    f"http://127.0.0.1:{port}/readyz", timeout=1
                ) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "chatserver serve exited early"
            assert time.monotonic() < deadline, "chatserver serve did not get ready"
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def staff_add(
    data_dir: Path, username: str, role: str = "counsellor", password: str = "a long password"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *CHATSERVER,
            "staff",
            "add",
            username,
            "--role",
            role,
            "--display-name",
            username.title(),
            "--password-stdin",
            "--data-dir",
            str(data_dir),
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )


async def login(port: int, username: str, password: str = "a long password") -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/api/login", json={"username": username, "password": password}
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return str((await r.json())["token"])


async def connect(port: int, path: str, protocol: str, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}{path}",
        subprotocols=[protocol],  # type: ignore[list-item]
        additional_headers=headers,
    )
    return Client(ws, protocol)


async def test_embedded_service_survives_a_restart(tmp_path: Path) -> None:
    """Serve on the private Redis, add staff while running, chat, restart: all still there."""
    data_dir, port = tmp_path / "data", free_port()
    with serving(data_dir, port):
        added = staff_add(data_dir, "anna")
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["role"] == "counsellor"
        again = staff_add(data_dir, "anna")
        assert again.returncode == 1 and "exists" in again.stderr
        token = await login(port, "anna")
        counsellor = await connect(port, "/ws/staff", "chat.v1.msgpack", token)
        await counsellor.expect("welcome")
        await counsellor.send({"type": "status", "state": "available", "capacity": 1})
        visitor = await connect(port, "/ws/visitor", "chat.v1.json")
        await visitor.send({"type": "hello", "nickname": "Sanne"})
        conv = (await visitor.expect("welcome"))["conversation_id"]
        assert (await counsellor.expect("assigned", skip=("status", "queue")))["visitor"] == "Sanne"
        await visitor.expect("assigned")
        await visitor.send({"type": "say", "text": "bewaar mij", "ref": "k1"})
        assert (await visitor.expect("ack"))["seq"] == 1
        await counsellor.send({"type": "say", "conversation_id": conv, "text": "en mij"})
        assert (await counsellor.expect("ack", skip=("message", "queue")))["seq"] == 2
        await visitor.close()
        await counsellor.close()
    assert (data_dir / "appendonly.aof").exists() or (data_dir / "appendonlydir").exists()
    with serving(data_dir, port) as proc:
        token = await login(port, "anna")
        counsellor = await connect(port, "/ws/staff", "chat.v1.json", token)
        await counsellor.expect("welcome")
        assigned = await counsellor.expect("assigned", skip=("queue",))
        assert [m["text"] for m in assigned["history"]] == ["bewaar mij", "en mij"]
        await counsellor.close()
        del proc
    lines = [
        line
        for log_path in tmp_path.glob(f"serve-{port}-*.log")
        for line in log_path.read_text().splitlines()
        if line.strip()
    ]
    events = [json.loads(line) for line in lines]  # JSON lines off a terminal
    assert any(e.get("event") == "login" for e in events)
    joined = "\n".join(lines)
    assert "bewaar mij" not in joined and "Sanne" not in joined and "127.0.0.1" not in joined


async def test_staff_add_with_redis_url(redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    """``staff add --redis-url`` writes into that Redis under the configured key prefix."""
    config = tmp_path / "chat.toml"
    config.write_text(f'[server]\nkey_prefix = "{key_prefix}"\n')
    result = subprocess.run(
        [
            *CHATSERVER,
            "staff",
            "add",
            "bert",
            "--role",
            "supervisor",
            "--display-name",
            "Bert",
            "--password-stdin",
            "--redis-url",
            redis_url,
            "--config",
            str(config),
        ],
        input="another long password\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    account = await r.hgetall(f"{key_prefix}:{{g}}:account:bert")
    await r.aclose()
    assert account["role"] == "supervisor" and account["password"].startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in account["password"]
    short = subprocess.run(
        [
            *CHATSERVER,
            "staff",
            "add",
            "cees",
            "--role",
            "counsellor",
            "--display-name",
            "C",
            "--password-stdin",
            "--redis-url",
            redis_url,
            "--config",
            str(config),
        ],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert short.returncode == 2 and "password" in short.stderr


def test_bad_config_is_refused(tmp_path: Path) -> None:
    """An unknown configuration key stops serve with a clear message, before anything starts."""
    config = tmp_path / "bad.toml"
    config.write_text("[limits]\ntext_max_charz = 5\n")
    result = subprocess.run(
        [*CHATSERVER, "serve", "--config", str(config), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "text_max_charz" in result.stderr
    assert not (tmp_path / "d").exists()


def test_workers_option() -> None:
    """--workers takes a number or auto; anything else is refused."""
    import os

    from chatserver.cli import parse_workers
    from chatserver.errors import ConfigError

    assert parse_workers("1") == 1 and parse_workers("3") == 3
    assert parse_workers("auto") == len(os.sched_getaffinity(0))
    for bad in ("0", "-2", "many"):
        with pytest.raises(ConfigError):
            parse_workers(bad)


def test_embedded_redis_takes_appendfsync_from_the_config(tmp_path: Path) -> None:
    """[redis] appendfsync reaches the private Redis; a value Redis does not know is refused."""
    import redis as redis_sync

    from chatserver.embedded import socket_path

    data_dir, port = tmp_path / "data", free_port()
    config = tmp_path / "fsync.toml"
    config.write_text('[redis]\nappendfsync = "always"\n')
    with serving(data_dir, port, "--config", str(config)):
        client = redis_sync.Redis(
            unix_socket_path=str(socket_path(data_dir)), decode_responses=True
        )
        try:
            assert client.config_get("appendfsync") == {"appendfsync": "always"}
            assert client.config_get("appendonly") == {"appendonly": "yes"}
        finally:
            client.close()
    config.write_text('[redis]\nappendfsync = "sometimes"\n')
    result = subprocess.run(
        [*CHATSERVER, "serve", "--config", str(config), "--data-dir", str(tmp_path / "d2")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "appendfsync" in result.stderr


async def test_embedded_redis_dies_with_a_killed_serve(tmp_path: Path) -> None:
    """After kill -9 of serve the next serve on the same data dir starts, with the data;
    after a clean exit no private Redis is left running."""
    from chatserver.embedded import answers, socket_path

    data_dir, port = tmp_path / "data", free_port()
    with serving(data_dir, port) as proc:
        added = staff_add(data_dir, "anna")
        assert added.returncode == 0, added.stderr
        proc.kill()  # SIGKILL: no cleanup in the service itself
        proc.wait()
    with serving(data_dir, port):
        token = await login(port, "anna")  # the account made before the kill is there
        counsellor = await connect(port, "/ws/staff", "chat.v1.json", token)
        await counsellor.expect("welcome")
        await counsellor.close()
    assert not answers(socket_path(data_dir))


def test_workers_end_with_a_killed_serve(redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    """kill -9 of 'serve --workers 2' takes its workers with it: no orphan keeps the port."""
    import os

    import psutil

    port = free_port()
    config = tmp_path / "w.toml"
    config.write_text(f'[server]\nkey_prefix = "{key_prefix}"\n')
    with serving(
        tmp_path / "unused",
        port,
        "--redis-url",
        redis_url,
        "--workers",
        "2",
        "--config",
        str(config),
    ) as proc:
        children = psutil.Process(proc.pid).children()
        workers = [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]
        assert len(workers) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _gone, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"workers outlived serve: {[p.pid for p in alive]}"
