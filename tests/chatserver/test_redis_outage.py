"""Redis goes away mid-conversation and comes back (with its append-only file)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from chatserver.config import Settings
from tests.conftest import free_port, start_redis
from tests.helpers import Client, LiveServer

pytestmark = pytest.mark.slow


async def say_until_acked(client: Client, frame: dict[str, object]) -> int:
    """Resend with the same ref until acknowledged, as a client must after `unavailable`."""
    for _ in range(100):
        await client.send(frame)
        reply = await client.expect(
            "ack", skip=("queued", "queue", "typing", "notice", "message", "error")
        )
        if reply["type"] == "ack":
            return int(reply["seq"])
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
            got = sorted({(f["seq"], f["text"]) for f in counsellor.seen if f["type"] == "message"})
            assert got == [(1, "voor"), (2, "tijdens")]
