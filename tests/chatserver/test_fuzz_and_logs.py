"""Random and malformed frames never hurt the server; logs never hold text or addresses."""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
import structlog
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatserver.auth import Role, add_staff
from chatserver.keys import Keys
from chatserver.redisconn import connect as connect_redis
from chatserver.store import Store
from tests.chatserver.test_errors import custom_server, malformed_request
from tests.chatserver.test_supervision import chatting
from tests.helpers import Client, LiveServer
from tests.procs import chatserver

TOKENS: dict[str, str] = {}  # one login per server: a TOTP code is accepted once
CONTRACT_CODES = {
    "bad_frame",
    "unknown_type",
    "invalid",
    "too_long",
    "rate_limited",
    "conflict",
    "not_found",
    "forbidden",
    "nickname_invalid",
    "nickname_taken",
    "resume_invalid",
    "unavailable",
}
TYPES = [
    "hello",
    "say",
    "typing",
    "leave",
    "survey",
    "status",
    "end",
    "transfer",
    "watch",
    "unwatch",
    "whisper",
    "overview",
    "join",
    "takeover",
    "help",
    "prioritise",
    "x",
]
FIELDS = [
    "nickname",
    "text",
    "ref",
    "conversation_id",
    "active",
    "rating",
    "state",
    "capacity",
    "resume",
    "last_seq",
    "lang",
    "topic",
    "to",
    "priority",
    "wrapup",
]
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
frames = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6).flatmap(
    lambda d: st.sampled_from(TYPES).map(lambda t: {"type": t, **d})
)
raw = st.one_of(
    frames, st.binary(max_size=200), st.text(max_size=200), values.map(lambda v: {"not_type": v})
)


@pytest.fixture
async def busy(server: LiveServer) -> tuple[LiveServer, Any, Any, str]:
    visitor, counsellor, conv = await chatting(server, "Rustig")
    return server, visitor, counsellor, conv


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batch=st.lists(raw, min_size=1, max_size=8),
    protocol=st.sampled_from(["chat.v1.json", "chat.v1.msgpack"]),
    endpoint=st.sampled_from(["visitor", "staff"]),
)
async def test_fuzzed_frames(
    busy: tuple[LiveServer, Any, Any, str], batch: list[Any], protocol: str, endpoint: str
) -> None:
    """Any frame gets a contract error or nothing; a chat running beside it is unaffected."""
    server, visitor, counsellor, conv = busy
    if endpoint == "visitor":
        client = await server.connect(protocol=protocol)
    else:
        if await server.store.account("fuzzer") is None:
            await server.add_staff("fuzzer", "supervisor")
            TOKENS[server.base] = (await server.login("fuzzer"))["token"]
        token = TOKENS[server.base]
        client = await server.connect(
            "/ws/staff", protocol, headers={"Authorization": f"Bearer {token}"}
        )
        await client.expect("welcome")
    for item in batch:
        if isinstance(item, dict):
            data: str | bytes = (
                msgpack.packb(item, use_bin_type=True)
                if protocol == "chat.v1.msgpack"
                else json.dumps(item)
            )
        else:
            data = item
        await client.send_raw(data)
    with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
        while True:
            frame = await client.recv(0.2)
            if frame["type"] == "error":
                assert frame["code"] in CONTRACT_CODES, frame
    # Only a frame over the limit (1009) or flooding (4429) may end the connection.
    assert client.ws.close_code in (None, 1009, 4429), client.ws.close_code
    with contextlib.suppress(Exception):
        await client.close()
    ref = f"r{len(visitor.seen)}"
    await visitor.send({"type": "say", "text": "nog steeds hier", "ref": ref})
    ack = await visitor.expect("ack", skip=("queued", "queue", "typing", "notice", "message"))
    assert ack["ref"] == ref
    got = await counsellor.expect("message", skip=("queue", "typing", "notice"))
    assert got["seq"] == ack["seq"] and got["conversation_id"] == conv


async def test_slow_reader_is_dropped(redis_url: str, key_prefix: str) -> None:
    """A visitor who stops reading is closed with 1013 (try again), not 1008 (blocked)."""
    import asyncio

    from chatserver.app import SERVICE
    from tests.helpers import slow_reading_visitor

    async with custom_server(
        redis_url,
        key_prefix,
        limits={"send_queue_max": 8, "staff_rate": 100000.0, "staff_burst": 100000},
    ) as live:
        counsellor = await live.staff("anna")
        visitor, conv = await slow_reading_visitor(live, "Traag")
        await counsellor.expect("assigned")

        async def drain() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for _ in counsellor.ws:
                    pass

        reader = asyncio.create_task(drain())
        hub = live.app[SERVICE].hub
        text = "x" * 2000
        for i in range(6000):
            await counsellor.ws.send(
                json.dumps({"type": "say", "conversation_id": conv, "text": text})
            )
            if i % 100 == 99:
                await asyncio.sleep(0.01)
                link = hub.visitors.get(conv)
                if link is None or link.conn.closing:
                    break
        link = hub.visitors.get(conv)
        assert link is None or link.conn.closing, "the slow reader was never dropped"
        assert counsellor.ws.close_code is None
        reader.cancel()
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await visitor.recv(5)
        assert visitor.ws.close_code == 1013


async def test_logs_hold_no_text_nickname_or_address(server: LiveServer) -> None:
    """A whole conversation's log events carry ids and codes, never text, names or IPs."""
    with structlog.testing.capture_logs() as logs:
        visitor, counsellor, conv = await chatting(server, "Geheimpje")
        await visitor.send({"type": "say", "text": "mijn diepste geheim", "ref": "1"})
        await visitor.expect("ack")
        await counsellor.expect("message")
        await visitor.send({"type": "hello", "nickname": "x"})
        await visitor.expect("error")
        await visitor.send({"type": "leave"})
        await visitor.expect("ended")
    assert any(e.get("conversation_id") == conv for e in logs)
    dump = json.dumps(logs, default=str)
    for secret in ("mijn diepste geheim", "Geheimpje", "127.0.0.1"):
        assert secret not in dump


async def test_real_process_stderr_holds_json_without_text_names_or_addresses(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """A real serve's stderr, stdlib loggers (aiohttp.server) included, is JSON lines only
    and never holds message text, a nickname or an address."""
    text = connect_redis(redis_url, decode=True)
    binary = connect_redis(redis_url, decode=False)
    try:
        await add_staff(
            Store(text, binary, Keys(key_prefix)), "anna", "correct horse 1", Role.COUNSELLOR, "A"
        )
    finally:
        await text.aclose()
        await binary.aclose()
    with chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix) as (proc, port):
        base = f"http://127.0.0.1:{port}"
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base}/api/login", json={"username": "anna", "password": "correct horse 1"}
            ) as r,
        ):
            token = (await r.json())["token"]
        ws_base = f"ws://127.0.0.1:{port}"
        staff = Client(
            await websockets.connect(
                f"{ws_base}/ws/staff", additional_headers={"Authorization": f"Bearer {token}"}
            ),
            "chat.v1.json",
        )
        await staff.expect("welcome")
        await staff.send({"type": "status", "state": "available", "capacity": 1})
        visitor = Client(await websockets.connect(f"{ws_base}/ws/visitor"), "chat.v1.json")
        await visitor.send({"type": "hello", "nickname": "Geheimpje"})
        await visitor.expect("welcome")
        await staff.expect("assigned", skip=("status", "queue"))
        await visitor.expect("assigned")
        await visitor.send({"type": "say", "text": "mijn diepste geheim", "ref": "1"})
        await visitor.expect("ack")
        await staff.expect("message", skip=("queue", "typing"))
        malformed_request(port)  # aiohttp's own logger writes a line
        await visitor.close()
        await staff.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    lines = [
        line for line in (tmp_path / f"serve-{port}.log").read_text().splitlines() if line.strip()
    ]
    events = [json.loads(line) for line in lines]
    assert any(e.get("logger") == "aiohttp.server" for e in events)
    assert any(e.get("event") == "login" for e in events)
    joined = "\n".join(lines)
    for secret in ("mijn diepste geheim", "Geheimpje", "127.0.0.1"):
        assert secret not in joined
