"""The service on a real Redis Cluster of 3 masters, and through Redis Sentinel."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from chatserver.config import Settings
from chatserver.embedded import redis_server_binary
from tests.chatserver.test_supervision import chatting
from tests.conftest import free_port, start_redis
from tests.helpers import LiveServer

pytestmark = pytest.mark.slow


def redis_cli() -> str:
    beside = Path(redis_server_binary()).with_name("redis-cli")
    found = str(beside) if beside.exists() else shutil.which("redis-cli")
    if not found:
        pytest.skip("redis-cli not found")
    return found


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    import random
    import socket

    while True:
        port = random.randint(20000, 30000)
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 10000):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", p))
            except OSError:
                continue
        return port


@contextlib.contextmanager
def cluster(tmp: Path) -> Iterator[list[int]]:
    ports = [cluster_port() for _ in range(3)]
    with contextlib.ExitStack() as stack:
        for port in ports:
            node_dir = tmp / str(port)
            node_dir.mkdir()
            stack.enter_context(
                start_redis(
                    port,
                    node_dir,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                )
            )
        subprocess.run(
            [
                redis_cli(),
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        client = redis.Redis(port=ports[0])
        deadline = time.monotonic() + 20
        while client.cluster("info").get("cluster_state") != "ok":
            assert time.monotonic() < deadline, "cluster did not come up"
            time.sleep(0.2)
        client.close()
        yield ports


async def whole_chat(live: LiveServer) -> None:
    visitor, counsellor, conv = await chatting(live, "Cluster")
    for i in range(3):
        await visitor.send({"type": "say", "text": f"v{i}", "ref": str(i)})
        assert (await visitor.expect("ack"))["seq"] == i + 1
        assert (await counsellor.expect("message"))["text"] == f"v{i}"
    sup = await live.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "watch", "conversation_id": conv})
    assert len((await sup.expect("watching"))["history"]) == 3
    await sup.send({"type": "whisper", "conversation_id": conv, "text": "goed zo"})
    assert (await counsellor.expect("whisper", skip=("queue", "notice")))["text"] == "goed zo"
    await visitor.send({"type": "leave"})
    assert (await counsellor.expect("ended", skip=("queue", "notice")))["reason"] == "visitor_left"


async def test_on_a_redis_cluster(tmp_path: Path, key_prefix: str) -> None:
    """A whole conversation with supervision on a 3-master Redis Cluster."""
    with cluster(tmp_path) as ports:
        settings = Settings()
        settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
        async with LiveServer.start(settings, f"redis+cluster://127.0.0.1:{ports[0]}") as live:
            await whole_chat(live)
            slots = {redis.Redis(port=p).dbsize() for p in ports}
            assert max(slots) > 0
            # Says to conversations in different slots, made in one loop turn (redis-py
            # has no EVALSHA in cluster pipelines: each is sent on its own), each call
            # answered with its own seq.
            store = live.store
            assert not store.says.pipelined
            convs = [f"cluster-{i}" for i in range(20)]
            results = await asyncio.gather(
                *(store.say(c, None, "visitor", "Nick", "hoi", 1.0, "c1") for c in convs * 2)
            )
            pairs = list(zip(convs * 2, results, strict=True))
            seqs = {c: sorted(r.seq for k, r in pairs if k == c) for c in convs}
            assert seqs == {c: [1, 2] for c in convs}
            assert [await store.message_count(c) for c in convs] == [2] * 20


async def test_through_sentinel(tmp_path: Path, key_prefix: str) -> None:
    """With a redis+sentinel:// URL the service finds the master and works through it."""
    master, sentinel_port = free_port(), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor chatmaster 127.0.0.1 {master} 1\n"
    )
    with start_redis(master, tmp_path):
        proc = subprocess.Popen(
            [redis_server_binary(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if redis.Redis(port=sentinel_port).ping():
                        break
                except redis.ConnectionError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            settings = Settings()
            settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
            url = f"redis+sentinel://127.0.0.1:{sentinel_port}/chatmaster/0"
            async with LiveServer.start(settings, url) as live:
                await whole_chat(live)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
