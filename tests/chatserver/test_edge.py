"""The hardened edge: blocks, connections per address, login limits, logout, WS version."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio
import websockets

from chatserver.appkeys import ADDRESSES
from chatserver.auth import session_hash
from chatserver.visitor import token_hash
from tests.chatserver.test_errors import custom_server
from tests.chatserver.test_supervision import chatting
from tests.helpers import Client, LiveServer, closed_code
from tests.procs import chatserver


async def test_block_keeps_browser_and_network_out(server: LiveServer) -> None:
    """A blocked visitor's chat ends (blocked, 1008); neither the token nor the network gets back."""
    visitor, counsellor, conv = await chatting(server, "Lastig")
    token = next(f for f in visitor.seen if f["type"] == "welcome")["resume_token"]
    await counsellor.send({"type": "block", "conversation_id": conv})
    ended = await visitor.expect("ended")
    assert ended["reason"] == "blocked"
    with pytest.raises(websockets.ConnectionClosed):
        await visitor.recv(3)
    assert visitor.ws.close_code == 1008
    again = await server.connect()
    with pytest.raises(websockets.ConnectionClosed):
        await again.send({"type": "hello", "resume": token})
        await again.recv(3)
    assert again.ws.close_code == 1008
    keys = server.store.keys
    stored = [k for k in await server.store.r.keys(f"{keys.prefix}:*block*")]
    assert stored and all("127.0.0.1" not in k for k in stored)
    audit = [a["action"] for a in await server.store.audit_entries()]
    assert audit == ["block"]


async def test_connections_per_address(redis_url: str, key_prefix: str) -> None:
    """Over connections_per_address sockets from one address, the next is closed with 4429."""
    async with custom_server(redis_url, key_prefix, limits={"connections_per_address": 3}) as live:
        for _ in range(3):
            await live.connect()
        extra = await live.connect()
        with pytest.raises(websockets.ConnectionClosed):
            await extra.recv(3)
        assert extra.ws.close_code == 4429


async def test_login_lockout_does_not_reveal_accounts(redis_url: str, key_prefix: str) -> None:
    """After 5 failures a name is locked (same 401 for existing and unknown names)."""
    async with custom_server(
        redis_url, key_prefix, limits={"login_failures_per_address": 100}
    ) as live:
        await live.add_staff("anna")
        async with aiohttp.ClientSession() as http:

            async def attempt(name: str, password: str) -> tuple[int, str]:
                async with http.post(
                    f"{live.base}/api/login", json={"username": name, "password": password}
                ) as r:
                    return r.status, await r.text()

            for _ in range(5):
                assert (await attempt("anna", "wrong wrong"))[0] == 401
                assert (await attempt("ghost", "wrong wrong"))[0] == 401
            locked_real = await attempt("anna", "correct horse 1")
            locked_ghost = await attempt("ghost", "correct horse 1")
            assert locked_real == locked_ghost and locked_real[0] == 401


async def test_login_throttled_per_address(redis_url: str, key_prefix: str) -> None:
    """Too many failures from one address get 429 for a while."""
    async with custom_server(
        redis_url, key_prefix, limits={"login_failures_per_address": 3}
    ) as live:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for i in range(5):
                async with http.post(
                    f"{live.base}/api/login", json={"username": f"u{i}", "password": "x" * 12}
                ) as r:
                    statuses.append(r.status)
        assert statuses == [401, 401, 401, 429, 429]


async def test_logout_closes_every_socket_of_the_session(server: LiveServer) -> None:
    """Logout ends the session and closes its sockets with 4401; other sessions go on."""
    await server.add_staff("anna")
    token = (await server.login("anna"))["token"]
    other = (await server.login("anna"))["token"]
    tabs = []
    for t in (token, token, other):
        ws = await server.connect("/ws/staff", headers={"Authorization": f"Bearer {t}"})
        await ws.expect("welcome")
        tabs.append(ws)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.base}/api/logout", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200
    for ws in tabs[:2]:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv(3)
        assert ws.ws.close_code == 4401
    await tabs[2].send({"type": "status", "state": "paused"})
    assert (await tabs[2].expect("status"))["state"] == "paused"


async def test_only_websocket_version_13(server: LiveServer) -> None:
    """An upgrade with another Sec-WebSocket-Version gets 426 naming version 13 (RFC 6455)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.base}/ws/visitor",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "8",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        ) as r,
    ):
        assert r.status == 426 and r.headers["Sec-WebSocket-Version"] == "13"


async def test_totp_second_factor_for_supervisors(server: LiveServer) -> None:
    """Supervisors need a TOTP code: missing, wrong and replayed codes are refused."""
    import pyotp

    from chatserver.auth import Role, add_staff

    await server.add_staff("bert", "supervisor")
    secret = server.totp["bert"]

    async def attempt(otp: str | None) -> tuple[int, dict[str, str]]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{server.base}/api/login",
                json={"username": "bert", "password": "correct horse 1", "otp": otp},
            ) as r,
        ):
            return r.status, await r.json()

    assert (await attempt(None)) == (
        401,
        {"error": "otp_required", "message": ("enter the code from your authenticator app")},
    )
    assert (await attempt("000000"))[1]["error"] == "otp_invalid"
    code = pyotp.TOTP(secret).now()
    status, body = await attempt(code)
    assert status == 200 and body["role"] == "supervisor"
    assert (await attempt(code))[1]["error"] == "otp_invalid"  # no replay
    await add_staff(server.store, "nosecond", "correct horse 1", Role.ADMIN, "Admin")
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.base}/api/login", json={"username": "nosecond", "password": "correct horse 1"}
        ) as r,
    ):
        assert r.status == 403 and (await r.json())["error"] == "totp_not_set_up"


async def test_no_compression_by_default_and_bounded_when_on(
    redis_url: str, key_prefix: str
) -> None:
    """permessage-deflate is refused by default; when on, inflated frames are still bounded."""
    import zlib

    async with custom_server(redis_url, key_prefix) as live:
        ws = await websockets.connect(f"{live.ws_base}/ws/visitor", compression="deflate")
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.close()
    async with custom_server(
        redis_url, key_prefix, limits={"permessage_deflate": True, "frame_max_bytes": 4096}
    ) as live:
        ws = await websockets.connect(f"{live.ws_base}/ws/visitor", compression="deflate")
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        bomb = '{"type": "say", "text": "' + "a" * 200_000 + '"}'
        assert len(zlib.compress(bomb.encode())) < 4096
        await ws.send(bomb)
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009


async def test_staff_socket_checks_origin(server: LiveServer) -> None:
    """The staff socket refuses a foreign or null Origin (403) even with a valid token."""
    await server.add_staff("anna")
    token = (await server.login("anna"))["token"]
    for origin in ("https://evil.example", "null"):
        with pytest.raises(websockets.InvalidStatus) as info:
            await server.connect(
                "/ws/staff", headers={"Authorization": f"Bearer {token}", "Origin": origin}
            )
        assert info.value.response.status_code == 403


# Idle 6 s: a frame refreshes the session at most every 3 s (half the idle time), so a
# socket that keeps sending has 3 s of slack before its session could lapse.
SHORT_SESSION = {"session_idle_minutes": 0.1, "session_check_seconds": 0.25}


async def test_idle_staff_socket_is_closed_4401(redis_url: str, key_prefix: str) -> None:
    """An open staff socket that sends nothing is closed 4401 once the session idles out."""
    async with custom_server(redis_url, key_prefix, auth=SHORT_SESSION) as live:
        await live.add_staff("anna")
        token = (await live.login("anna"))["token"]
        tab = await live.connect("/ws/staff", headers={"Authorization": f"Bearer {token}"})
        await tab.expect("welcome")
        assert await closed_code(tab) == 4401


async def test_typing_staff_keeps_the_session(redis_url: str, key_prefix: str) -> None:
    """A staff socket that keeps sending frames keeps its session past the idle timeout."""
    async with custom_server(redis_url, key_prefix, auth=SHORT_SESSION) as live:
        await live.add_staff("anna")
        token = (await live.login("anna"))["token"]
        auth = {"Authorization": f"Bearer {token}"}
        tab = await live.connect("/ws/staff", headers=auth)
        await tab.expect("welcome")
        key = live.store.keys.session(session_hash(token))
        idle = SHORT_SESSION["session_idle_minutes"] * 60

        async def refreshed_past_idle() -> bool:
            """The server refreshed the session once its first idle timeout had passed."""
            created, seen = await live.store.r.hmget(key, ["created", "seen"])
            assert created is not None, "the session lapsed while the socket kept sending"
            return float(seen) - float(created) >= idle

        while not await refreshed_past_idle():
            await tab.send({"type": "status", "state": "paused"})
            await tab.expect("status", skip=("queue", "notice"))
            await asyncio.sleep(0.2)
        second = await live.connect("/ws/staff", headers=auth)  # the session still lives
        await second.expect("welcome")


async def test_absolute_limit_closes_an_active_staff_socket(
    redis_url: str, key_prefix: str
) -> None:
    """Past session_absolute_hours a staff socket is closed 4401 even while it sends frames."""
    auth = {"session_absolute_hours": 3 / 3600, "session_check_seconds": 0.5}
    async with custom_server(redis_url, key_prefix, auth=auth) as live:
        await live.add_staff("anna")
        token = (await live.login("anna"))["token"]
        tab = await live.connect("/ws/staff", headers={"Authorization": f"Bearer {token}"})
        await tab.expect("welcome")

        async def keep_typing() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    await tab.send({"type": "status", "state": "paused"})
                    await asyncio.sleep(0.3)

        typing = asyncio.create_task(keep_typing())
        try:
            assert await closed_code(tab) == 4401
        finally:
            typing.cancel()


async def _block_one(live: LiveServer) -> str:
    """Chat from the default address and block it; returns the blocked resume token."""
    visitor, counsellor, conv = await chatting(live, "Lastig")
    token = next(f for f in visitor.seen if f["type"] == "welcome")["resume_token"]
    await counsellor.send({"type": "block", "conversation_id": conv})
    assert (await visitor.expect("ended"))["reason"] == "blocked"
    assert await closed_code(visitor) == 1008
    return str(token)


async def test_network_block_outlives_the_daily_secret_rotation(
    redis_url: str, key_prefix: str
) -> None:
    """A network blocked at 23:50 UTC is still blocked at 00:20, after the secret rotated."""
    import calendar

    async with custom_server(redis_url, key_prefix) as live:
        clock = [float(calendar.timegm((2026, 3, 1, 23, 50, 0)))]
        live.app[ADDRESSES].clock = lambda: clock[0]
        await _block_one(live)
        clock[0] += 30 * 60  # 00:20 the next day: a new secret, a new hash
        again = await live.connect()
        assert await closed_code(again, 5) == 1008
        clock[0] += 86400  # two days later the old hash is no longer checked
        fresh = await live.connect()
        await fresh.send({"type": "hello", "nickname": "Nieuw"})
        await fresh.expect("welcome")


async def test_blocked_browser_is_refused_from_another_network(
    redis_url: str, key_prefix: str
) -> None:
    """hello with a blocked previous_token is refused (1008) from any address; without it,
    or once the block (kept block_hours) has expired, hello is welcomed."""
    async with custom_server(
        redis_url,
        key_prefix,
        server={"trust_forwarded_for": True},
        limits={"block_hours": 5.0},
    ) as live:
        token = await _block_one(live)
        elsewhere = {"X-Forwarded-For": "203.0.113.9"}
        refused = await live.connect(headers=elsewhere)
        await refused.send({"type": "hello", "nickname": "Weer", "previous_token": token})
        assert await closed_code(refused, 5) == 1008
        other = await live.connect(headers=elsewhere)
        await other.send({"type": "hello", "nickname": "Ander"})
        await other.expect("welcome")
        block = live.store.keys.blocked_token(token_hash(token))
        assert 4 * 3600 < await live.store.r.ttl(block) <= 5 * 3600  # expires after block_hours
        await live.store.r.delete(block)  # as Redis does when that time is up
        later = await live.connect(headers={"X-Forwarded-For": "198.51.100.7"})
        await later.send({"type": "hello", "nickname": "Later", "previous_token": token})
        await later.expect("welcome")


async def _visitor_at(port: int) -> Client:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/visitor",
        subprotocols=["chat.v1.json"],  # type: ignore[list-item]
    )
    return Client(ws, "chat.v1.json")


async def _admitted(port: int, nickname: str) -> Client | None:
    """A visitor socket that gets its welcome, or None when it was closed with 4429."""
    client = await _visitor_at(port)
    try:
        await client.send({"type": "hello", "nickname": nickname})
        await client.expect("welcome")
    except websockets.ConnectionClosed:
        assert client.ws.close_code == 4429
        return None
    return client


async def test_connections_per_address_hold_across_processes(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Two processes on one Redis share connections_per_address; a close frees a place."""
    config = "[limits]\nconnections_per_address = 3\n"
    with (
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix, config=config) as (_, a),
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix, config=config) as (_, b),
    ):
        held = [await _admitted(a, "Een"), await _admitted(a, "Twee"), await _admitted(b, "Drie")]
        assert all(held)
        assert await _admitted(b, "Vier") is None
        assert await _admitted(a, "Vijf") is None
        counts = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        try:
            keys = await counts.keys(f"{key_prefix}:{{g}}:conns:*")
            assert len(keys) == 1
            assert sorted((await counts.hgetall(keys[0])).values()) == ["1", "2"]  # per node
            assert 0 < await counts.ttl(keys[0]) <= 86400  # only a backstop
        finally:
            await counts.aclose()
        first = held[0]
        assert first is not None
        await first.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (again := await _admitted(b, "Zes")) is None:  # the close is counted down
            assert loop.time() < deadline, "a closed socket never freed its place"
            await asyncio.sleep(0.2)
        for client in [*held[1:], again]:
            assert client is not None
            await client.close()


async def test_killed_process_leaks_no_connection_count(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """A process killed holding every place of an address loses them once it is reaped:
    the other process admits up to the limit again, though the address kept connecting."""
    config = "[limits]\nconnections_per_address = 3\n"
    counts = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    with (
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix, config=config) as (
            proc_a,
            a,
        ),
        chatserver(tmp_path, redis_url=redis_url, key_prefix=key_prefix, config=config) as (_, b),
    ):
        held = [await _admitted(a, f"Vast{i}") for i in range(3)]
        assert all(held)
        assert await _admitted(b, "Buiten") is None
        os.kill(proc_a.pid, signal.SIGKILL)
        proc_a.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        again: list[Client] = []
        while len(await counts.zrange(f"{key_prefix}:{{g}}:nodes", 0, -1)) > 1:
            # the address keeps connecting meanwhile (refused while the dead counts stand)
            if (early := await _admitted(b, f"Druk{len(again)}")) is not None:
                again.append(early)
            assert loop.time() < deadline, "the killed process was never reaped"
            await asyncio.sleep(0.2)
        while len(again) < 3:
            admitted = await _admitted(b, f"Weer{len(again)}")
            assert admitted is not None, "a dead process's count still holds a place"
            again.append(admitted)
        assert await _admitted(b, "Teveel") is None
        keys = await counts.keys(f"{key_prefix}:{{g}}:conns:*")
        assert [list((await counts.hgetall(k)).values()) for k in keys] == [["3"]]
        assert len(await counts.keys(f"{key_prefix}:{{g}}:node-addrs:*")) == 1
        for client in again:
            assert client is not None
            await client.close()
    await counts.aclose()


async def test_origin_behind_a_trusted_tls_proxy(redis_url: str, key_prefix: str) -> None:
    """Behind a trusted proxy saying X-Forwarded-Proto: https, the page's https Origin passes
    on both sockets; without that header, or without trust, it is refused."""
    async with custom_server(redis_url, key_prefix, server={"trust_forwarded_for": True}) as live:
        host = live.base.removeprefix("http://")
        proxied = {"Origin": f"https://{host}", "X-Forwarded-Proto": "https"}
        visitor = await live.connect(headers=proxied)
        await visitor.send({"type": "hello", "nickname": "Proxy"})
        await visitor.expect("welcome")
        await live.add_staff("anna")
        token = (await live.login("anna"))["token"]
        staff = await live.connect(
            "/ws/staff", headers={**proxied, "Authorization": f"Bearer {token}"}
        )
        await staff.expect("welcome")
        with pytest.raises(websockets.InvalidStatus) as info:
            await live.connect(headers={"Origin": f"https://{host}"})
        assert info.value.response.status_code == 403
    async with custom_server(redis_url, key_prefix) as live:
        host = live.base.removeprefix("http://")
        with pytest.raises(websockets.InvalidStatus) as info:
            await live.connect(headers={"Origin": f"https://{host}", "X-Forwarded-Proto": "https"})
        assert info.value.response.status_code == 403


async def test_logout_refuses_cross_site_cookie_posts(server: LiveServer) -> None:
    """A cookie logout from another site (or without our pages' header) gets 403 and the
    session lives on; from our own page it ends the session."""
    await server.add_staff("anna")
    token = (await server.login("anna"))["token"]
    cookie = {"Cookie": f"__Host-chat_session={token}"}
    ours = {"Sec-Fetch-Site": "same-origin", "Origin": server.base, "X-Requested-With": "chat"}
    async with aiohttp.ClientSession() as http:
        for forged in (
            {**ours, "Sec-Fetch-Site": "cross-site"},
            {**ours, "Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "same-origin", "Origin": server.base},
        ):
            async with http.post(f"{server.base}/api/logout", headers={**cookie, **forged}) as r:
                assert r.status == 403 and (await r.json())["error"] == "forbidden"
        tab = await server.connect("/ws/staff", headers=cookie)
        await tab.expect("welcome")  # the session still lives
        async with http.post(f"{server.base}/api/logout", headers={**cookie, **ours}) as r:
            assert r.status == 200
    with pytest.raises(websockets.InvalidStatus) as info:
        await server.connect("/ws/staff", headers=cookie)
    assert info.value.response.status_code == 401
