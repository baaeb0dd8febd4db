"""Three processes, random connects, drops, resumes and status changes: the invariants hold."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Any

import pytest

from tests.chatserver.test_scale import connect, make_store, staff_token
from tests.helpers import Client, eventually
from tests.helpers import drain as drain_into
from tests.procs import chatserver

pytestmark = pytest.mark.slow


async def drain(client: Client, into: list[dict[str, Any]], seconds: float = 0.05) -> None:
    """Collect what has arrived on ``client`` into ``into`` (read until ``seconds`` of quiet)."""
    await drain_into(client, seconds, into)


def is_paused(frame: dict[str, Any]) -> bool:
    return frame["type"] == "status" and frame.get("state") == "paused"


async def read_until(
    client: Client, into: list[dict[str, Any]], done: Any, timeout: float = 15.0
) -> dict[str, Any]:
    """Collect frames into ``into`` until one satisfies ``done``; return that frame."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.recv(timeout)
            into.append(frame)
            if done(frame):
                return frame


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
        ending: set[str] = set()  # conversations a visitor left or a counsellor ended

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
                ending.add(conv)
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
                    conv = rng.choice(sorted(mine))
                    await staff_clients[name].send({"type": "end", "conversation_id": conv})
                    ending.add(conv)
            name = rng.choice(list(staff_clients))
            await drain(staff_clients[name], staff_frames[name], 0.005)

        async def all_ended() -> bool:  # every leave and end sent has been carried out
            states = [await store.r.hget(store.keys.conversation(c), "state") for c in ending]
            return all(state == "ended" for state in states)

        await eventually(all_ended, timeout=15)
        # The churn is over: pause every counsellor. Once each has its paused reply no
        # claim can succeed any more (claim.lua checks the state), so the store stands still.
        for name, client in staff_clients.items():
            await client.send({"type": "status", "state": "paused", "capacity": capacity[name]})
            await read_until(client, staff_frames[name], is_paused)
        await check_store(store, list(staff_clients))
        for name, client in staff_clients.items():  # assigned/ended frames still under way
            await drain(client, staff_frames[name], 0.3)
        check_owners(staff_frames)
        check_capacity(staff_frames)
        await check_positions(store, visitors, visitor_frames)
        await check_fifo(store, ports)
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
    """With every counsellor paused the queue stands still: each visitor still waiting is,
    in the end, last told exactly their rank in it (position frames may still be under way,
    so each visitor's frames are read until that holds or the deadline passes)."""
    k, r = store.keys, store.r
    queue = await r.zrange(k.queue, 0, -1)
    for rank, conv in enumerate(queue, start=1):
        assert await r.hget(k.conversation(conv), "state") == "waiting"
        assert conv in visitors, "a waiting conversation nobody is connected to"
        client, frames = visitors[conv][0], visitor_frames.setdefault(conv, [])

        async def told_rank(
            client: Client = client, frames: list[Any] = frames, rank: int = rank
        ) -> bool:
            await drain(client, frames, 0.02)
            queued = [f for f in frames if f["type"] == "queued"]
            return bool(queued) and queued[-1]["position"] == rank

        await eventually(told_rank, timeout=15, what=f"{conv} told position {rank}")
    assert await r.zrange(k.queue, 0, -1) == queue, "the queue moved while all were paused"


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


async def check_fifo(store: Any, ports: list[int]) -> None:
    """Equal priority is first come, first served: with every other counsellor paused, a
    new counsellor on the first process opens one place at a time (capacity 1, 2, 3), and
    each place goes to the visitor first in line by the stored conversations themselves:
    highest priority, then earliest arrival (then smallest id).

    Three newcomers join last, one after the other, so the queue is never empty here.

    Why not compare arrival with assignment times during the churn: three processes stamp
    arrivals on their own and plan at once, so a visitor stamped earlier can enter the
    queue later, and a claim that fails (its counsellor just paused) lets a younger
    visitor's claim in the same plan through. With the queue standing still and one free
    place at a time, every process plans the same head, and only one claim can win."""
    r, k = store.r, store.keys
    token = await staff_token(ports[0], store, "fifo")
    fifo = await connect(ports[0], "/ws/staff", "chat.v1.msgpack", token)
    frames: list[dict[str, Any]] = []
    await read_until(fifo, frames, lambda f: f["type"] == "welcome")
    newcomers = [await connect(port) for port in ports]
    for i, newcomer in enumerate(newcomers):
        await newcomer.send({"type": "hello", "nickname": f"Laatste{i}"})
        await newcomer.expect("welcome")
    served = 0
    for capacity in (1, 2, 3):
        waiting = await r.zrange(k.queue, 0, -1)
        if not waiting:
            break
        metas = {c: await r.hgetall(k.conversation(c)) for c in waiting}
        first = min(
            waiting,
            key=lambda c: (-int(metas[c].get("priority", "0")), float(metas[c]["enqueued"]), c),
        )
        await fifo.send({"type": "status", "state": "available", "capacity": capacity})
        got = await read_until(fifo, frames, lambda f: f["type"] == "assigned")
        assert got["conversation_id"] == first, f"{got['conversation_id']} served before {first}"
        served += 1
    assert served == 3
    for newcomer in newcomers:
        await newcomer.close()
    await fifo.send({"type": "status", "state": "paused", "capacity": 3})
    await read_until(fifo, frames, is_paused)


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
