"""Every error code and close code of the contract, produced where the contract says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import msgpack
import pytest
import websockets

from chatserver.config import Settings
from tests.conftest import free_port
from tests.helpers import Client, LiveServer


@contextlib.asynccontextmanager
async def custom_server(
    redis_url: str, key_prefix: str, **sections: object
) -> AsyncIterator[LiveServer]:
    settings = Settings()
    settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
    for name, changes in sections.items():
        settings = replace(settings, **{name: replace(getattr(settings, name), **changes)})  # type: ignore[arg-type]
    async with LiveServer.start(settings, redis_url) as live:
        yield live


async def error_of(client: Client, frame: dict[str, object] | str | bytes) -> dict[str, object]:
    if isinstance(frame, dict):
        await client.send(frame)
    else:
        await client.send_raw(frame)
    return await client.expect("error", skip=("queued", "queue", "assigned", "typing"))


async def test_bad_frames_keep_the_connection(server: LiveServer) -> None:
    """Undecodable, non-object and typeless frames get bad_frame; the socket goes on."""
    client = await server.connect()
    for raw in ["{not json", "[1, 2]", '{"type": 5}', '"hello"', "{}"]:
        err = await error_of(client, raw)
        assert err["code"] == "bad_frame", raw
    await client.send({"type": "hello", "nickname": "Still Here"})
    assert (await client.expect("welcome"))["nickname"] == "Still Here"


async def test_bad_msgpack_frames(server: LiveServer) -> None:
    """On the msgpack subprotocol, garbage bytes and text frames are bad_frame."""
    client = await server.connect(protocol="chat.v1.msgpack")
    assert (await error_of(client, b"\xc1\xff\x00"))["code"] == "bad_frame"
    assert (await error_of(client, msgpack.packb([1, 2])))["code"] == "bad_frame"
    assert (await error_of(client, '{"type": "hello"}'))["code"] == "bad_frame"


async def test_unknown_type_and_invalid_fields(server: LiveServer) -> None:
    """Unknown types, missing fields and wrong kinds get unknown_type / invalid, with ref."""
    client = await server.connect()
    err = await error_of(client, {"type": "dance", "ref": "x1"})
    assert err["code"] == "unknown_type" and err["ref"] == "x1"
    assert (await error_of(client, {"type": "hello"}))["code"] == "invalid"
    assert (await error_of(client, {"type": "hello", "nickname": 5}))["code"] == "invalid"
    assert (await error_of(client, {"type": "hello", "nickname": "Aa", "lang": "fr"}))[
        "code"
    ] == "invalid"
    assert (await error_of(client, {"type": "hello", "nickname": "Aa", "ref": "r" * 65}))[
        "code"
    ] == "invalid"


async def test_conflicts(server: LiveServer) -> None:
    """say before hello, survey before ended and a second hello are conflicts."""
    client = await server.connect()
    assert (await error_of(client, {"type": "say", "text": "hoi"}))["code"] == "conflict"
    await client.send({"type": "hello", "nickname": "Kim"})
    await client.expect("welcome")
    assert (await error_of(client, {"type": "survey", "rating": 3}))["code"] == "conflict"
    assert (await error_of(client, {"type": "hello", "nickname": "Kim2"}))["code"] == "conflict"


async def test_too_long_text_is_not_delivered(server: LiveServer) -> None:
    """A text over 2,000 characters gets too_long and is not stored."""
    counsellor = await server.staff("anna")
    visitor, welcome = await server.visitor("Lou")
    conv = welcome["conversation_id"]
    await counsellor.expect("assigned")
    err = await error_of(visitor, {"type": "say", "text": "x" * 2001, "ref": "big"})
    assert err["code"] == "too_long" and err["ref"] == "big"
    assert await server.store.message_count(conv) == 0
    await visitor.send({"type": "say", "text": "x" * 2000, "ref": "ok"})
    assert (await visitor.expect("ack"))["seq"] == 1


async def test_nickname_invalid_and_taken(server: LiveServer) -> None:
    """A bad nickname gets nickname_invalid; one in use (any case) nickname_taken, in the visitor's language."""
    client = await server.connect()
    err = await error_of(client, {"type": "hello", "nickname": "x"})
    assert err["code"] == "nickname_invalid" and err["message"]
    await server.visitor("Robin")
    other = await server.connect()
    err_nl = await error_of(other, {"type": "hello", "nickname": "ROBIN"})
    err_en = await error_of(other, {"type": "hello", "nickname": " robin ", "lang": "en"})
    assert err_nl["code"] == err_en["code"] == "nickname_taken"
    assert err_nl["message"] != err_en["message"]


async def test_resume_invalid(server: LiveServer) -> None:
    """An unknown resume token gets resume_invalid."""
    client = await server.connect()
    err = await error_of(client, {"type": "hello", "resume": "no-such-token", "last_seq": 0})
    assert err["code"] == "resume_invalid"


async def test_staff_not_found_and_forbidden(server: LiveServer) -> None:
    """A counsellor may not touch another's conversation (not_found) nor watch (forbidden)."""
    anna = await server.staff("anna")
    _, welcome = await server.visitor("Yara")
    conv = welcome["conversation_id"]
    await anna.expect("assigned")
    bert = await server.staff("bert", available=None)
    err = await error_of(bert, {"type": "say", "conversation_id": conv, "text": "hoi"})
    assert err["code"] == "not_found"
    err = await error_of(bert, {"type": "watch", "conversation_id": conv})
    assert err["code"] == "forbidden"
    err = await error_of(bert, {"type": "status", "state": "asleep"})
    assert err["code"] == "invalid"


async def test_rate_limited_then_flooding_closes(redis_url: str, key_prefix: str) -> None:
    """Over the burst a frame gets rate_limited; sustained flooding closes with 4429."""
    async with custom_server(redis_url, key_prefix, limits={"flood_refusals": 30}) as live:
        client = await live.connect()
        for _ in range(12):
            await client.send({"type": "typing", "active": True})
        codes = []
        with contextlib.suppress(websockets.ConnectionClosed):
            for _ in range(60):
                await client.send({"type": "typing", "active": True})
            while True:
                frame = await client.recv(2)
                codes.append(frame.get("code"))
        assert "rate_limited" in codes
        assert client.ws.close_code == 4429


async def test_frame_over_limit_closes_1009(redis_url: str, key_prefix: str) -> None:
    """A frame over frame_max_bytes closes the connection with 1009."""
    async with custom_server(redis_url, key_prefix, limits={"frame_max_bytes": 1024}) as live:
        client = await live.connect()
        await client.send_raw('{"type": "say", "text": "' + "x" * 2000 + '"}')
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv(3)
        assert client.ws.close_code == 1009


async def test_idle_timeout_closes_4408(redis_url: str, key_prefix: str) -> None:
    """A socket that sends nothing for idle_timeout_seconds is closed with 4408."""
    async with custom_server(redis_url, key_prefix, limits={"idle_timeout_seconds": 0.5}) as live:
        client = await live.connect()
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv(3)
        assert client.ws.close_code == 4408


async def test_queue_full_gets_closed(redis_url: str, key_prefix: str) -> None:
    """Over max_waiting, hello gets closed/queue_full and the server closes with 1000."""
    async with custom_server(redis_url, key_prefix, queue={"max_waiting": 1}) as live:
        await live.visitor("First")
        client = await live.connect()
        await client.send({"type": "hello", "nickname": "Second"})
        closed = await client.expect("closed")
        assert closed["reason"] == "queue_full" and closed["message"]
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv(3)
        assert client.ws.close_code == 1000


async def test_staff_socket_refuses_without_login(server: LiveServer) -> None:
    """The staff socket answers HTTP 401 without a session, and with a bad token."""
    for headers in ({}, {"Authorization": "Bearer nonsense"}):
        with pytest.raises(websockets.InvalidStatus) as info:
            await server.connect("/ws/staff", headers=headers)
        assert info.value.response.status_code == 401


async def test_origin_allow_list(redis_url: str, key_prefix: str) -> None:
    """A foreign Origin is refused with 403 before upgrade; own and configured origins pass."""
    async with custom_server(
        redis_url, key_prefix, server={"allowed_origins": ("https://hulp.example",)}
    ) as live:
        with pytest.raises(websockets.InvalidStatus) as info:
            await live.connect(headers={"Origin": "https://evil.example"})
        assert info.value.response.status_code == 403
        with pytest.raises(websockets.InvalidStatus):
            await live.connect(headers={"Origin": "null"})
        await live.connect(headers={"Origin": live.base})
        await live.connect(headers={"Origin": "https://hulp.example"})


async def test_unavailable_when_redis_is_gone(key_prefix: str) -> None:
    """With Redis unreachable, frames get unavailable, /readyz says 503, /healthz 200."""
    async with custom_server("redis://127.0.0.1:1/0", key_prefix) as live:
        client = await live.connect()
        err = await error_of(client, {"type": "hello", "nickname": "Ada"})
        assert err["code"] == "unavailable"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{live.base}/readyz") as r:
                assert r.status == 503
            async with http.get(f"{live.base}/healthz") as r:
                assert r.status == 200 and (await r.json()) == {"status": "ok"}
        await client.send({"type": "hello", "nickname": "Ada"})
        assert (await client.expect("error"))["code"] == "unavailable"
        await asyncio.sleep(0)


async def test_internal_error_closes_1011_and_the_chat_resumes(server: LiveServer) -> None:
    """Corrupt stored data behind a frame closes that socket with 1011; others go on."""
    counsellor = await server.staff("anna")
    visitor, welcome = await server.visitor("Kapot")
    conv, token = welcome["conversation_id"], welcome["resume_token"]
    await counsellor.expect("assigned")
    await visitor.expect("assigned")
    await visitor.send({"type": "say", "text": "hallo", "ref": "1"})
    await visitor.expect("ack")
    key = server.store.keys.messages(conv)
    good = await server.store.rb.lindex(key, 0)
    await server.store.rb.lset(key, 0, b"\xc1 not msgpack")  # as after a bad restore
    back = await server.connect()
    await back.send({"type": "hello", "resume": token, "last_seq": 0})
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await back.recv(3)
    assert back.ws.close_code == 1011
    await counsellor.send({"type": "say", "conversation_id": conv, "text": "nog hier"})
    assert (await counsellor.expect("ack", skip=("queue", "message", "notice")))["seq"] == 2
    await server.store.rb.lset(key, 0, good)
    again = await server.connect()
    await again.send({"type": "hello", "resume": token, "last_seq": 0})
    await again.expect("welcome")
    texts = [(await again.expect("message", skip=("assigned",)))["text"] for _ in range(2)]
    assert texts == ["hallo", "nog hier"]


CHATSERVER = [sys.executable, "-m", "chatserver", "serve"]


def malformed_request(port: int) -> None:
    """A request aiohttp's own parser refuses: it logs through the stdlib aiohttp.server."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.")


async def test_store_outage_gives_503_and_json_logs(tmp_path: Path) -> None:
    """Without Redis, login and the staff handshake get 503 unavailable; stderr stays JSON
    lines (stdlib loggers too) with no address in them."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*CHATSERVER, "--port", str(port), "--redis-url", "redis://127.0.0.1:1/0"],
            stdout=log,
            stderr=log,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                deadline = time.monotonic() + 30
                while True:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"{base}/healthz") as r:
                            if r.status == 200:
                                break
                    assert proc.poll() is None, log_path.read_text()[-2000:]
                    assert time.monotonic() < deadline, "serve did not start"
                    await asyncio.sleep(0.1)
                body = {"username": "anna", "password": "correct horse 1"}
                async with http.post(f"{base}/api/login", json=body) as r:
                    assert r.status == 503 and (await r.json())["error"] == "unavailable"
            with pytest.raises(websockets.InvalidStatus) as info:
                await websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/staff",
                    additional_headers={"Authorization": "Bearer whatever"},
                )
            assert info.value.response.status_code == 503
            malformed_request(port)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is JSON, stdlib ones too
    assert any(e.get("logger") == "aiohttp.server" for e in events)
    assert any(e.get("event") == "store_unavailable" for e in events)
    assert "127.0.0.1" not in "\n".join(lines)
