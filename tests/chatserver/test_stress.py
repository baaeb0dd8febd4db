"""Three processes, random connects, drops, resumes and status changes: the invariants hold."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.chatserver.test_scale import connect, make_store, staff_token
from tests.helpers import Client
from tests.procs import chatserver

pytestmark = pytest.mark.slow


async def drain(client: Client, into: list[dict[str, Any]], seconds: float = 0.05) -> None:
    with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
        while True:
            into.append(await client.recv(seconds))


async def test_three_processes_random_churn(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Never two counsellors per visitor, never over capacity, positions 1..n, store consistent."""
    rng = random.Random(7)
    store = await make_store(redis_url, key_prefix)
    with contextlib.ExitStack() as stack:
        ports = [
            stack.enter_context(
                chatserver(
                    tmp_path,
                    redis_url=redis_url,
                    key_prefix=key_prefix,
                    config="[limits]\nconnections_per_address = 1000\n",  # all from 127.0.0.1
                )
            )[1]
            for _ in range(3)
        ]
        staff_frames: dict[str, list[dict[str, Any]]] = {}
        staff_clients: dict[str, Client] = {}
        capacity: dict[str, int] = {}
        for i in range(4):
            name = f"c{i}"
            capacity[name] = rng.randint(1, 3)
            token = await staff_token(ports[i % 3], store, name)
            client = await connect(ports[i % 3], "/ws/staff", "chat.v1.msgpack", token)
            staff_clients[name], staff_frames[name] = client, []
            await client.send({"type": "status", "state": "available", "capacity": capacity[name]})
        visitors: dict[str, tuple[Client, str]] = {}  # conv -> (client, resume token)
        visitor_frames: dict[str, list[dict[str, Any]]] = {}

        for step in range(120):
            action = rng.random()
            if action < 0.35 or not visitors:
                client = await connect(rng.choice(ports))
                await client.send({"type": "hello", "nickname": f"Bezoeker{step}"})
                welcome = await client.expect("welcome")
                conv = welcome["conversation_id"]
                visitors[conv] = (client, welcome["resume_token"])
                visitor_frames[conv] = list(client.seen)
            elif action < 0.5:
                conv = rng.choice(list(visitors))
                client, token = visitors[conv]
                await client.close()
                back = await connect(rng.choice(ports))
                await back.send({"type": "hello", "resume": token})
                visitors[conv] = (back, token)
            elif action < 0.6:
                conv = rng.choice(list(visitors))
                client, _ = visitors.pop(conv)
                await client.send({"type": "leave"})
            elif action < 0.75:
                name = rng.choice(list(staff_clients))
                capacity[name] = rng.randint(1, 3)
                await staff_clients[name].send(
                    {
                        "type": "status",
                        "state": rng.choice(["available", "available", "paused"]),
                        "capacity": capacity[name],
                    }
                )
            elif action < 0.85:
                name = rng.choice(list(staff_clients))
                await drain(staff_clients[name], staff_frames[name])
                await staff_clients[name].close()
                staff_frames[name].append({"type": "_reconnect"})  # the new socket starts over
                token = await staff_token(rng.choice(ports), store, name)
                staff_clients[name] = await connect(
                    rng.choice(ports), "/ws/staff", "chat.v1.msgpack", token
                )
            else:
                name = rng.choice(list(staff_clients))
                await drain(staff_clients[name], staff_frames[name])
                mine = {
                    f["conversation_id"] for f in staff_frames[name] if f["type"] == "assigned"
                } - {f["conversation_id"] for f in staff_frames[name] if f["type"] == "ended"}
                if mine:
                    await staff_clients[name].send(
                        {"type": "end", "conversation_id": rng.choice(sorted(mine))}
                    )
            name = rng.choice(list(staff_clients))
            await drain(staff_clients[name], staff_frames[name], 0.005)
        await asyncio.sleep(2.0)  # let assignment settle
        for name, client in staff_clients.items():
            await drain(client, staff_frames[name], 0.3)
        for conv, (client, _) in visitors.items():
            await drain(client, visitor_frames.setdefault(conv, []), 0.1)

        check_owners(staff_frames)
        check_capacity(staff_frames)
        await check_positions(store, visitors, visitor_frames)
        await check_fifo(store, list(visitor_frames))
        await check_store(store, list(staff_clients))
    await store.r.aclose()
    await store.rb.aclose()


def check_owners(staff_frames: dict[str, list[dict[str, Any]]]) -> None:
    """No conversation was ever given to two counsellors."""
    owners: dict[str, set[str]] = {}
    for name, frames in staff_frames.items():
        for f in frames:
            if f["type"] == "assigned":
                owners.setdefault(f["conversation_id"], set()).add(name)
    assert owners, "nothing was ever assigned"
    assert all(len(o) == 1 for o in owners.values()), owners


async def check_positions(
    store: Any, visitors: dict[str, Any], visitor_frames: dict[str, list[dict[str, Any]]]
) -> None:
    """Each visitor still waiting was last told exactly their rank in the queue."""
    k, r = store.keys, store.r
    queue = await r.zrange(k.queue, 0, -1)
    for rank, conv in enumerate(queue, start=1):
        assert await r.hget(k.conversation(conv), "state") == "waiting"
        assert conv in visitors, "a waiting conversation nobody is connected to"
        queued = [f for f in visitor_frames[conv] if f["type"] == "queued"]
        assert queued, "a waiting visitor was never told a position"
        assert queued[-1]["position"] == rank, (conv, queued[-1], rank)


def check_capacity(staff_frames: dict[str, list[dict[str, Any]]]) -> None:
    """Replaying each counsellor's frames: open chats never exceed the capacity in force.

    The capacity in force is the larger of the last two a status reply told (a claim made
    just before a lowering may be announced just after its reply); a reconnect starts the
    count over, the new socket is sent each open chat again."""
    for name, frames in staff_frames.items():
        caps: list[int] = []
        open_: set[str] = set()
        assigned = 0
        for f in frames:
            if f["type"] == "_reconnect":
                open_ = set()
            elif f["type"] == "status":
                caps.append(int(f["capacity"]))
            elif f["type"] == "assigned":
                open_.add(f["conversation_id"])
                assigned += 1
                assert caps, f"{name} was assigned before any status"
                assert len(open_) <= max(caps[-2:]), (name, len(open_), caps[-2:])
            elif f["type"] == "ended":
                open_.discard(f["conversation_id"])
        assert assigned or not caps or max(caps) >= 1


async def check_fifo(store: Any, convs: list[str]) -> None:
    """Equal priority is first come, first served: nobody was skipped. Allowing for three
    processes planning at once, an older visitor may get a counsellor at most 0.5 s after
    a younger one did (the assigners run at least every 2 s)."""
    r, k = store.r, store.keys
    metas = {c: await r.hgetall(k.conversation(c)) for c in convs}
    now = max(float(m.get("ended") or m.get("assigned") or m["enqueued"]) for m in metas.values())
    served = {c: float(m["assigned"]) for c, m in metas.items() if m.get("assigned")}
    assert served, "nobody was ever served"
    for younger, at in served.items():
        for older, meta in metas.items():
            if float(meta["enqueued"]) >= float(metas[younger]["enqueued"]):
                continue
            assert meta.get("priority", "0") == metas[younger].get("priority", "0")
            out = served.get(older) or float(meta.get("ended") or now)
            assert out <= at + 0.5, f"{older} waited on while the younger {younger} was served"


async def check_store(store: Any, names: list[str]) -> None:
    """Loads match conversation sets; the available set is exactly who may take one more."""
    k, r = store.keys, store.r
    available = set(await r.zrange(k.available, 0, -1))
    for name in names:
        sid = (await store.account(name))["id"]
        state = await r.hgetall(k.staff_state(sid))
        convs = set(await r.smembers(k.staff_conversations(sid)))
        for conv in convs:
            assert (await r.hget(k.conversation(conv), "counsellor")) == sid
        load, cap = int(state.get("load", 0)), int(state["capacity"])
        assert load == len(convs)
        assert (sid in available) == (state["state"] == "available" and load < cap)
