"""Shared fixtures: a private Redis for the whole session, a real server per test.

The Redis is a ``redis-server`` this session starts on a free loopback port; every test
uses its own key prefix, so tests never see each other's data and nothing is flushed.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from chatserver.embedded import redis_server_binary
from tests.helpers import LiveServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_redis(port: int, data_dir: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    client.close()
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with start_redis(port, Path(tmp)):
            yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def key_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def server(redis_url: str, key_prefix: str) -> AsyncIterator[LiveServer]:
    from chatserver.config import Settings

    settings = Settings()
    settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
    async with LiveServer.start(settings, redis_url) as live:
        yield live
