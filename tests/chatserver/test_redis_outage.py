"""Redis goes away mid-conversation and comes back (with its append-only file)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from chatserver.appkeys import SERVICE
from chatserver.config import Settings
from tests.chatserver.test_errors import custom_server
from tests.chatserver.test_scale import connect, counsellor_on, make_store
from tests.conftest import free_port, start_redis
from tests.helpers import Client, LiveServer, drain
from tests.procs import chatserver

pytestmark = pytest.mark.slow

AOF = ("--appendonly", "yes", "--appendfsync", "always")


async def say_until_acked(client: Client, frame: dict[str, object]) -> int:
    """Resend with the same ref until acknowledged, as a client must after `unavailable`."""
    for _ in range(200):
        await client.send(frame)
        while True:
            reply = await client.recv(10)
            if reply["type"] in ("ack", "error") and reply.get("ref") == frame["ref"]:
                break
        if reply["type"] == "ack":
            return int(reply["seq"])
        assert reply["code"] == "unavailable", reply
        await asyncio.sleep(0.1)
    raise AssertionError("never acknowledged")


async def test_redis_restart_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Stop Redis mid-chat: frames get unavailable, /readyz 503; after restart all goes on."""
    port = free_port()
    aof = ("--appendonly", "yes", "--appendfsync", "always")
    with contextlib.ExitStack() as stack:
        redis_proc = stack.enter_context(start_redis(port, tmp_path, *aof))
        settings = Settings()
        settings = replace(settings, server=replace(settings.server, key_prefix="outage"))
        async with LiveServer.start(settings, f"redis://127.0.0.1:{port}/0") as live:
            counsellor = await live.staff("anna")
            visitor, welcome = await live.visitor("Storing")
            conv = welcome["conversation_id"]
            await counsellor.expect("assigned")
            await visitor.expect("assigned")
            acked = [await say_until_acked(visitor, {"type": "say", "text": "voor", "ref": "a"})]
            redis_proc.terminate()
            redis_proc.wait()
            await visitor.send({"type": "say", "text": "tijdens", "ref": "b"})
            err = await visitor.expect("error")
            assert err["code"] == "unavailable" and err["ref"] == "b"
            async with aiohttp.ClientSession() as http, http.get(f"{live.base}/readyz") as r:
                assert r.status == 503
            stack.enter_context(start_redis(port, tmp_path, *aof))
            acked.append(
                await say_until_acked(visitor, {"type": "say", "text": "tijdens", "ref": "b"})
            )
            await asyncio.sleep(0.5)
            await counsellor.send({"type": "say", "conversation_id": conv, "text": "na"})
            await counsellor.expect("ack", skip=("queue", "message", "notice"))
            assert acked == [1, 2]
            msg = await visitor.expect("message", timeout=10)
            assert (msg["seq"], msg["text"]) == (3, "na")
            stored = [(m.seq, m.text) for m in await live.store.messages(conv)]
            assert stored == [(1, "voor"), (2, "tijdens"), (3, "na")]
            got = [(f["seq"], f["text"]) for f in counsellor.seen if f["type"] == "message"]
            assert got == [(1, "voor"), (2, "tijdens")]  # each once, in order


def codes(client: Client, conv: str) -> list[str]:
    return [
        f["code"] for f in client.seen if f["type"] == "notice" and f["conversation_id"] == conv
    ]


async def test_outage_longer_than_node_dead_seconds_tears_nothing_apart(
    tmp_path: Path, key_prefix: str
) -> None:
    """Two processes, Redis away past node_dead_seconds: nobody is reaped, the chat goes on."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    grace = {"visitor_seconds": 1.0, "counsellor_seconds": 1.0}
    with contextlib.ExitStack() as redis_stack:
        redis_proc = redis_stack.enter_context(start_redis(port, tmp_path, *AOF))
        with (
            chatserver(tmp_path, redis_url=url, key_prefix=key_prefix, grace=grace) as (_, a),
            chatserver(tmp_path, redis_url=url, key_prefix=key_prefix, grace=grace) as (_, b),
        ):
            store = await make_store(url, key_prefix)
            counsellor = await counsellor_on(b, store, "anna")
            await store.r.aclose()
            await store.rb.aclose()
            visitor = await connect(a)
            await visitor.send({"type": "hello", "nickname": "Volhouder"})
            conv = (await visitor.expect("welcome"))["conversation_id"]
            await counsellor.expect("assigned", skip=("queue",))
            await visitor.expect("assigned")
            redis_proc.terminate()
            redis_proc.wait()
            await asyncio.sleep(4)  # twice node_dead_seconds: every heartbeat is stale
            redis_stack.enter_context(start_redis(port, tmp_path, *AOF))
            await asyncio.sleep(4)  # past both graces and a sweep, had anyone been reaped
            v_seq = await say_until_acked(visitor, {"type": "say", "text": "nog daar?", "ref": "n"})
            got = await counsellor.expect("message", timeout=10, skip=("queue", "notice", "status"))
            assert (got["seq"], got["text"]) == (v_seq, "nog daar?")
            await counsellor.send(
                {"type": "say", "conversation_id": conv, "text": "ja hoor", "ref": "j"}
            )
            await counsellor.expect("ack", skip=("queue", "notice", "status"))
            assert (await visitor.expect("message", timeout=10))["text"] == "ja hoor"
            await drain(visitor)
            await drain(counsellor)
            assert "counsellor_reconnecting" not in codes(visitor, conv)
            assert "visitor_disconnected" not in codes(counsellor, conv)
            assert not [f for f in visitor.seen + counsellor.seen if f["type"] == "ended"]


async def test_falsely_reaped_process_registers_its_sockets_again(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    """A process stalled past node_dead_seconds is reaped; running again, it re-registers,
    and the counsellor there whom the reaper paused is available and gets a visitor again."""
    with (
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix) as (proc_a, a),
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix) as (_, b),
    ):
        store = await make_store(redis_url, key_prefix)
        counsellor = await counsellor_on(b, store, "anna")
        visitor = await connect(a)
        await visitor.send({"type": "hello", "nickname": "Stilstaander"})
        conv = (await visitor.expect("welcome"))["conversation_id"]
        await counsellor.expect("assigned", skip=("queue",))
        await visitor.expect("assigned")
        bert = await counsellor_on(a, store, "bert")  # free, on the process that stalls
        bert_id = (await store.account("bert") or {})["id"]
        os.kill(proc_a.pid, signal.SIGSTOP)
        try:
            gone = await counsellor.expect("notice", timeout=15, skip=("queue", "status"))
            # the reaper took bert's socket (before the visitor's) for dead: paused
            paused = await store.staff_state(bert_id)
        finally:
            os.kill(proc_a.pid, signal.SIGCONT)
        assert gone["code"] == "visitor_disconnected"
        assert (paused["state"], paused["paused_by_reap"]) == ("paused", "1")
        back = await counsellor.expect("notice", timeout=15, skip=("queue", "status"))
        assert back["code"] == "visitor_reconnected"
        newcomer = await connect(b)
        await newcomer.send({"type": "hello", "nickname": "Nieuwkomer"})
        new_conv = (await newcomer.expect("welcome"))["conversation_id"]
        got = await bert.expect("assigned", timeout=15, skip=("queue", "status", "overview"))
        assert got["conversation_id"] == new_conv
        restored = await store.staff_state(bert_id)
        assert (restored["state"], restored["paused_by_reap"]) == ("available", "0")
        keys = store.keys
        assert await store.r.get(keys.visitor_presence(conv)) is not None
        assert await store.r.zscore(keys.grace, f"v:{conv}") is None
        nodes = await store.r.zrange(keys.nodes, 0, -1)
        entries = [e for n in nodes for e in await store.r.smembers(keys.node_connections(n))]
        assert [e for e in entries if e.startswith(f"v|{conv}|")]
        seq = await say_until_acked(visitor, {"type": "say", "text": "weer wakker", "ref": "w"})
        got = await counsellor.expect("message", timeout=10, skip=("queue", "notice", "status"))
        assert (got["seq"], got["text"]) == (seq, "weer wakker")
        await store.r.aclose()
        await store.rb.aclose()


async def test_visitor_who_leaves_during_an_outage_times_out_after_it(tmp_path: Path) -> None:
    """A visitor socket closed while Redis is down is recorded once Redis is back: timeout."""
    port = free_port()
    with contextlib.ExitStack() as redis_stack:
        redis_proc = redis_stack.enter_context(start_redis(port, tmp_path, *AOF))
        settings = Settings()
        settings = replace(
            settings,
            server=replace(settings.server, key_prefix="gone"),
            grace=replace(settings.grace, visitor_seconds=0.5, node_dead_seconds=2),
        )
        async with LiveServer.start(settings, f"redis://127.0.0.1:{port}/0") as live:
            counsellor = await live.staff("anna")
            visitor, welcome = await live.visitor("Wegloper")
            conv = welcome["conversation_id"]
            await counsellor.expect("assigned")
            await visitor.expect("assigned")
            redis_proc.terminate()
            redis_proc.wait()
            await visitor.close()
            hub = live.app[SERVICE].hub
            for _ in range(100):
                if conv not in hub.visitors:
                    break
                await asyncio.sleep(0.05)
            assert conv not in hub.visitors
            await asyncio.sleep(0.5)  # the close handler's store calls fail meanwhile
            redis_stack.enter_context(start_redis(port, tmp_path, *AOF))
            ended = await counsellor.expect("ended", timeout=15, skip=("queue", "notice"))
            assert ended == {"type": "ended", "conversation_id": conv, "reason": "timeout"}
            meta = await live.store.conversation(conv)
            assert meta is not None and meta["state"] == "ended" and meta["reason"] == "timeout"
            assert await live.store.r.get(live.store.keys.visitor_presence(conv)) is None


async def test_a_drop_that_cannot_be_replayed_stops_no_reaping(
    redis_url: str, key_prefix: str
) -> None:
    """An unrecorded drop whose replay keeps failing (a wrong-type key) is given up: the
    drops behind it are replayed and dead processes are still reaped."""
    grace = {"node_dead_seconds": 1.0}
    async with custom_server(redis_url, key_prefix, grace=grace) as live:
        store, service = live.store, live.app[SERVICE]
        keys = store.keys
        await store.r.set(keys.staff_connections("stuck"), "not a set")  # SREM: WRONGTYPE
        await store.set_visitor_presence("behind", "elsewhere.1")
        await store.r.zadd(keys.nodes, {"dead": 1.0})
        await store.r.sadd(keys.node_connections("dead"), "v|gone|dead.1")
        service.drop_unrecorded("s", "stuck", f"{service.node_id}.1")
        service.drop_unrecorded("v", "behind", "elsewhere.1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while await store.r.zscore(keys.nodes, "dead") is not None or await store.r.exists(
            keys.visitor_presence("behind")
        ):
            assert loop.time() < deadline, "a failing replay blocked the reaper or the queue"
            await asyncio.sleep(0.1)
        assert not await store.r.exists(keys.node_connections("dead"))
