"""Idle sockets: with the heartbeat on, a live client's pongs keep it open past the idle
timeout (as any traffic does), and a client that stops answering is closed all the same."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from chatserver.sockets import HEARTBEAT_JITTER, heartbeat_interval, receive_timeout
from tests.chatserver.test_errors import custom_server

# a heartbeat of 0.2 s leaves out a receive timeout of 2.5 s (> 2 × 0.2 + 2)
LIMITS = {"heartbeat_seconds": 0.2, "idle_timeout_seconds": 2.5}


def test_the_receive_timeout_is_left_out_only_where_it_cannot_fire() -> None:
    """Kept without a heartbeat or when shorter than the heartbeat's own deadline."""
    assert receive_timeout(1800.0, 20.0) is None
    assert receive_timeout(2.5, 0.2) is None
    assert receive_timeout(30.0, 20.0) == 30.0
    assert receive_timeout(0.5, 20.0) == 0.5
    assert receive_timeout(1800.0, 0.0) == 1800.0


def test_heartbeats_are_spread_within_ten_percent() -> None:
    """Each socket pings within ±10 % of the configured interval, the whole range used;
    no heartbeat configured is none (not a ping loop with interval 0)."""
    intervals = [heartbeat_interval(20.0, i / 100) for i in range(100)]
    assert all(i is not None and 18.0 <= i < 22.0 for i in intervals)
    assert min(intervals) == 18.0 and max(intervals) > 21.9  # type: ignore[operator]
    assert len(set(intervals)) == 100
    assert heartbeat_interval(0.0, 0.5) is None and HEARTBEAT_JITTER == 0.1
    # the longest interval still leaves the idle-timeout rule sound: 1.5 × 22 + 2 < 2 × 20 + 2
    assert 1.5 * (20.0 * (1 + HEARTBEAT_JITTER)) + 2 < 2 * 20.0 + 2


async def test_a_silent_client_that_answers_pings_stays_open(
    redis_url: str, key_prefix: str
) -> None:
    """Sending no frame for longer than the idle timeout, but answering the server's
    pings (as every browser does), is not idle: the socket stays open."""
    async with custom_server(redis_url, key_prefix, limits=LIMITS) as live:
        client = await live.connect()
        with pytest.raises(TimeoutError):
            await client.recv(3.0)  # nothing comes, and the socket is not closed
        await client.send({"type": "hello", "nickname": "Stil"})
        assert (await client.expect("welcome"))["type"] == "welcome"


async def test_a_client_that_stops_answering_is_closed(redis_url: str, key_prefix: str) -> None:
    """A client that never answers the heartbeat's ping is closed by the heartbeat."""
    async with custom_server(redis_url, key_prefix, limits=LIMITS) as live:
        host, port = live.base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /ws/visitor HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: chat.v1.json\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        assert b" 101 " in status
        # Read what the server sends (its pings among it) without ever answering, until
        # it hangs up.
        async with asyncio.timeout(10):
            while await reader.read(4096):
                pass
        writer.close()
