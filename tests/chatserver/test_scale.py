"""Several processes on one Redis; a killed process; a restarted Redis: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from chatserver.auth import Role, add_staff
from chatserver.keys import Keys
from chatserver.store import Store
from tests.helpers import Client, drain, eventually
from tests.procs import chatserver

pytestmark = pytest.mark.slow


async def make_store(redis_url: str, prefix: str) -> Store:
    import redis.asyncio as aioredis

    return Store(
        aioredis.Redis.from_url(redis_url, decode_responses=True),
        aioredis.Redis.from_url(redis_url),
        Keys(prefix),
    )


async def staff_token(port: int, store: Store, username: str, capacity: int = 1) -> str:
    if await store.account(username) is None:
        await add_staff(store, username, "a long password", Role.COUNSELLOR, username.title())
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/api/login",
            json={"username": username, "password": "a long password"},
        ) as r,
    ):
        assert r.status == 200
        return str((await r.json())["token"])


async def connect(
    port: int, path: str = "/ws/visitor", protocol: str = "chat.v1.json", token: str | None = None
) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}{path}",
        subprotocols=[protocol],  # type: ignore[list-item]
        additional_headers=headers,
    )
    return Client(ws, protocol)


async def counsellor_on(
    port: int, store: Store, name: str, capacity: int = 1, protocol: str = "chat.v1.msgpack"
) -> Client:
    client = await connect(port, "/ws/staff", protocol, await staff_token(port, store, name))
    await client.expect("welcome")
    await client.send({"type": "status", "state": "available", "capacity": capacity})
    await client.expect("status", skip=("queue",))
    return client


async def chatting_across(
    store: Store, visitor_port: int, counsellor_port: int, nickname: str
) -> tuple[Client, Client, str, str]:
    """A visitor on one process assigned to Anna on another: (visitor, counsellor,
    conversation id, resume token)."""
    counsellor = await counsellor_on(counsellor_port, store, "anna")
    visitor = await connect(visitor_port)
    await visitor.send({"type": "hello", "nickname": nickname})
    welcome = await visitor.expect("welcome")
    await counsellor.expect("assigned", skip=("queue",))
    await visitor.expect("assigned")
    return visitor, counsellor, welcome["conversation_id"], welcome["resume_token"]


def texts(frames: list[dict[str, Any]], conv: str) -> list[tuple[int, str]]:
    """The messages of one conversation as received, in order; no seq may come twice."""
    got = [
        (f["seq"], f["text"])
        for f in frames
        if f["type"] == "message" and f["conversation_id"] == conv
    ]
    seqs = [seq for seq, _ in got]
    assert len(seqs) == len(set(seqs)), f"a message was delivered twice: {seqs}"
    return got


async def test_cross_process_chat_and_killed_process(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Visitor on one process, counsellor on another; kill -9 the visitor's: resume elsewhere."""
    store = await make_store(redis_url, key_prefix)
    with (
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix) as (proc_a, port_a),
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix) as (_, port_b),
    ):
        visitor, counsellor, conv, token = await chatting_across(
            store, port_a, port_b, "Treinreiziger"
        )
        acked = []
        for i in range(3):
            await visitor.send({"type": "say", "text": f"v{i}", "ref": f"v{i}"})
            acked.append((await visitor.expect("ack"))["seq"])
            await counsellor.send({"type": "say", "conversation_id": conv, "text": f"c{i}"})
            acked.append((await counsellor.expect("ack", skip=("message", "queue")))["seq"])
            await visitor.expect("message")
        assert acked == [1, 2, 3, 4, 5, 6]
        seen_by_visitor = max(f["seq"] for f in visitor.seen if f["type"] == "message")
        os.kill(proc_a.pid, signal.SIGKILL)
        proc_a.wait()
        notice = await counsellor.expect("notice", timeout=15, skip=("queue", "message"))
        assert notice["code"] == "visitor_disconnected"
        await counsellor.send({"type": "say", "conversation_id": conv, "text": "ben je er nog?"})
        await counsellor.expect("ack", skip=("queue", "message", "notice"))
        back = await connect(port_b)
        await back.send({"type": "hello", "resume": token, "last_seq": seen_by_visitor})
        await back.expect("welcome")
        await back.expect("assigned")
        missed = [await back.expect("message")]
        assert [(m["seq"], m["text"]) for m in missed] == [(7, "ben je er nog?")]
        await back.nothing(0.3)
        everything = visitor.seen + back.seen
        stored = [(m.seq, m.text) for m in await store.messages(conv)]
        counsellor_view = texts(counsellor.seen, conv) + [
            (s, t) for s, t in stored if t.startswith("c") or t.startswith("ben")
        ]
        assert [t for _, t in stored] == ["v0", "c0", "v1", "c1", "v2", "c2", "ben je er nog?"]
        assert texts(everything, conv) == [(s, t) for s, t in stored if not t.startswith("v")]
        assert sorted(s for s, _ in counsellor_view) == [1, 2, 3, 4, 5, 6, 7]
    await store.r.aclose()
    await store.rb.aclose()


async def test_workers_share_one_port(tmp_path: Path) -> None:
    """``--workers 2`` on the embedded Redis: many chats, every message once and in order."""
    with chatserver(tmp_path, workers=2) as (proc, port):
        import psutil

        assert len(psutil.Process(proc.pid).children(recursive=True)) >= 3  # 2 workers + Redis
        sock = tmp_path / "data" / "redis.sock"
        store = await make_store(f"unix://{sock}", "chat")
        counsellors = [await counsellor_on(port, store, f"c{i}", capacity=3) for i in range(2)]
        visitors = []
        for i in range(6):
            v = await connect(port, protocol="chat.v1.msgpack")
            await v.send({"type": "hello", "nickname": f"Bezoeker{i}"})
            visitors.append((v, (await v.expect("welcome"))["conversation_id"]))
        for v, _ in visitors:
            await v.expect("assigned")
        for round_ in range(5):
            for v, _ in visitors:
                await v.send({"type": "say", "text": f"r{round_}", "ref": f"r{round_}"})
            for v, _ in visitors:
                assert (await v.expect("ack"))["seq"] == round_ + 1

        await asyncio.gather(*(drain(c) for c in counsellors))
        for _, conv in visitors:
            got = []  # a message said just before assignment arrives in assigned.history
            for c in counsellors:
                for f in c.seen:
                    if f.get("conversation_id") != conv:
                        continue
                    if f["type"] == "assigned":
                        got += [(m["seq"], m["text"]) for m in f["history"]]
                    elif f["type"] == "message":
                        got.append((f["seq"], f["text"]))
            assert got == [(i + 1, f"r{i}") for i in range(5)], conv
        await store.r.aclose()
        await store.rb.aclose()


async def test_connection_cut_mid_send_stores_the_message_once(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """A say cut off with its TCP connection, resent with its ref on another process:
    one stored copy, the ack names its seq, the counsellor gets it exactly once."""
    store = await make_store(redis_url, key_prefix)
    with (
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix) as (_, port_a),
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix) as (_, port_b),
    ):
        visitor, counsellor, conv, token = await chatting_across(
            store, port_a, port_b, "Afgebroken"
        )
        await visitor.send({"type": "say", "text": "half verstuurd", "ref": "X"})
        visitor.ws.transport.abort()  # no close frame: the connection is simply gone
        back = await connect(port_b)
        await back.send({"type": "hello", "resume": token, "last_seq": 0})
        await back.expect("welcome")
        await back.send({"type": "say", "text": "half verstuurd", "ref": "X"})
        ack = await back.expect(
            "ack", skip=("queued", "queue", "typing", "notice", "assigned", "message")
        )
        stored = [(m.seq, m.text) for m in await store.messages(conv)]
        assert stored == [(ack["seq"], "half verstuurd")]
        await counsellor.send(
            {"type": "say", "conversation_id": conv, "text": "gelukt", "ref": "g"}
        )
        await counsellor.expect("ack", skip=("queue", "message", "notice"))
        while not [f for f in back.seen if f.get("text") == "gelukt"]:
            await back.recv()
        await drain(counsellor)
        await drain(back)
        assert texts(counsellor.seen, conv) == [(ack["seq"], "half verstuurd")]
        assert [t for _, t in texts(back.seen, conv)] in (
            ["gelukt"],
            ["half verstuurd", "gelukt"],  # stored before the cut: resume replays it
        )
    await store.r.aclose()
    await store.rb.aclose()


NO_TOTP = "[auth]\ntotp_roles = []\n"  # supervisors log in with a password only here


async def test_trainee_is_not_watched_by_a_dead_or_offline_supervisor(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """A trainee's watcher whose process died, or who is offline, does not count: no chat."""
    store = await make_store(redis_url, key_prefix)
    pw = "a long password"
    await add_staff(store, "tim", pw, Role.COUNSELLOR, "Tim", trainee=True)
    for name in ("bert", "bob"):
        await add_staff(store, name, pw, Role.SUPERVISOR, name.title())
    tim_id = (await store.account("tim") or {})["id"]
    with (
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix, config=NO_TOTP) as (
            proc_a,
            port_a,
        ),
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix, config=NO_TOTP) as (
            _,
            port_b,
        ),
    ):
        trainee = await counsellor_on(port_b, store, "tim", protocol="chat.v1.json")
        bert = await connect(port_a, "/ws/staff", token=await staff_token(port_a, store, "bert"))
        await bert.expect("welcome")
        await bert.send({"type": "watch_trainee", "staff_id": tim_id, "ref": "w"})
        await bert.expect("ack", skip=("queue", "overview"))
        os.kill(proc_a.pid, signal.SIGKILL)
        proc_a.wait()

        async def reaped() -> bool:  # the other process has reaped the dead one
            return len(await store.r.zrange(store.keys.nodes, 0, -1)) == 1

        await eventually(reaped, timeout=20)
        visitor = await connect(port_b)
        await visitor.send({"type": "hello", "nickname": "Wachtend"})
        conv = (await visitor.expect("welcome"))["conversation_id"]
        await trainee.nothing(1.5, skip=("queue", "status"))
        bob = await connect(port_b, "/ws/staff", token=await staff_token(port_b, store, "bob"))
        await bob.expect("welcome")
        await bob.send({"type": "status", "state": "offline", "ref": "o"})
        await bob.expect("status", skip=("queue",))
        await bob.send({"type": "watch_trainee", "staff_id": tim_id, "ref": "w"})
        await bob.expect("ack", skip=("queue", "overview", "status"))
        await trainee.nothing(1.5, skip=("queue", "status"))
        await bob.send({"type": "status", "state": "paused", "ref": "p"})
        got = await trainee.expect("assigned", timeout=10, skip=("queue", "status"))
        assert got["conversation_id"] == conv
    await store.r.aclose()
    await store.rb.aclose()
