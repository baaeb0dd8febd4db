"""A socket's outgoing frames: written as sent while the reader keeps up, queued behind a
writer while it does not, in order either way; idle sockets hold no queue and no task."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import websockets

from chatserver.app import SERVICE
from tests.chatserver.test_errors import custom_server
from tests.helpers import eventually, slow_reading_visitor

SAYS = 2500
TEXT = "x" * 1990


async def test_queued_frames_reach_a_slow_reader_in_order(redis_url: str, key_prefix: str) -> None:
    """Frames that pile up behind a visitor who stops reading arrive later, each once, in
    order, with nothing dropped while the queue stays under send_queue_max."""
    async with custom_server(
        redis_url,
        key_prefix,
        limits={"send_queue_max": 100_000, "staff_rate": 100000.0, "staff_burst": 100000},
    ) as live:
        counsellor = await live.staff("anna")
        visitor, conv = await slow_reading_visitor(live, "Traag")
        await counsellor.expect("assigned")
        conn = live.app[SERVICE].hub.visitors[conv].conn

        acks: list[dict[str, Any]] = []

        async def read_counsellor() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in counsellor.ws:
                    frame = json.loads(raw)
                    if frame["type"] == "ack":
                        acks.append(frame)

        reader = asyncio.create_task(read_counsellor())
        most_queued = 0
        for i in range(SAYS):
            await counsellor.ws.send(
                json.dumps({"type": "say", "conversation_id": conv, "text": f"{i:05d}{TEXT}"})
            )
            if i % 50 == 49:
                await eventually(lambda n=i: len(acks) > n - 50, timeout=30)
                most_queued = max(most_queued, conn.queued)
        await eventually(lambda: len(acks) == SAYS, timeout=60, what="every say acked")
        reader.cancel()
        assert most_queued > 0, "the visitor's frames never waited: the test proved nothing"
        assert not conn.closing

        texts: list[str] = []
        seqs: list[int] = []
        while len(texts) < SAYS:
            frame = await visitor.recv(10)
            if frame["type"] == "message":
                texts.append(frame["text"][:5])
                seqs.append(frame["seq"])
        assert texts == [f"{i:05d}" for i in range(SAYS)]
        assert seqs == list(range(seqs[0], seqs[0] + SAYS))
        assert seqs[-1] == acks[-1]["seq"]
        await eventually(lambda: conn.queued == 0, what="the queue emptied")
        await visitor.close()
