"""Test helpers: a live server on a real port, and a protocol client over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgpack
import pyotp
import websockets
from aiohttp import web
from websockets.asyncio.client import ClientConnection

from chatserver.app import STORE, create_app
from chatserver.auth import Role, add_staff, enable_totp
from chatserver.config import Settings
from chatserver.store import Store

TIMEOUT = 5.0


async def eventually(
    check: Callable[[], Any | Awaitable[Any]],
    timeout: float = TIMEOUT,
    interval: float = 0.05,
    what: str | None = None,
) -> Any:
    """Poll ``check`` (sync or async) until it returns a truthy value, and return that value;
    fail with ``what`` (or the check's name) and its last value once ``timeout`` passes.

    For facts that are recorded after the frame a test waits for (a background write, a
    purge run): wait for the fact itself, never for a fixed time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            name = what or getattr(check, "__name__", repr(check))
            raise AssertionError(f"not reached within {timeout} s: {name} (last: {value!r})")
        await asyncio.sleep(interval)


async def wait_for_fact(store: Store, conversation_id: str, timeout: float = TIMEOUT) -> None:
    """Wait until the ended conversation's anonymous fact is kept: listed in the facts index
    and its hash written (``Store.record_fact`` writes the index entry last, in one script)."""

    async def kept() -> bool:
        listed = await store.r.zscore(store.keys.facts, conversation_id) is not None
        return listed and bool(await store.r.exists(store.keys.fact(conversation_id)))

    await eventually(kept, timeout, what=f"the fact of {conversation_id} is kept")


async def drain(
    client: Client, quiet: float = 0.5, into: list[dict[str, Any]] | None = None
) -> None:
    """Read frames until none comes for ``quiet`` seconds or the socket closes (they land in
    ``client.seen``, and in ``into`` when given). Only for collecting what was sent; to wait
    for something, expect its frame or use :func:`eventually`."""
    with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
        while True:
            frame = await client.recv(quiet)
            if into is not None:
                into.append(frame)


async def closed_code(client: Client, within: float = 15.0) -> int | None:
    """Read until the server closes the socket (frames of any type may come first) and give
    its close code; fail when it is still open after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                await client.recv(within)
    except websockets.ConnectionClosed:
        return client.ws.close_code
    except TimeoutError:
        raise AssertionError(f"the server did not close the socket within {within} s") from None


class Client:
    """A protocol client: JSON or msgpack, frames as dicts."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.seen: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        if self.protocol == "chat.v1.msgpack":
            await self.ws.send(msgpack.packb(frame, use_bin_type=True))
        else:
            await self.ws.send(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(data, bytes):
            assert self.protocol == "chat.v1.msgpack", "binary frame on the JSON subprotocol"
            frame = msgpack.unpackb(data, raw=False)
        else:
            assert self.protocol != "chat.v1.msgpack", "text frame on the msgpack subprotocol"
            frame = json.loads(data)
        self.seen.append(frame)
        return frame  # type: ignore[no-any-return]

    async def expect(
        self,
        type_: str,
        timeout: float = TIMEOUT,
        skip: tuple[str, ...] = ("queued", "queue", "typing", "notice"),
    ) -> dict[str, Any]:
        """The next frame of ``type_``; frames of the ``skip`` types may come first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if frame["type"] == type_:
                return frame
            assert frame["type"] in skip, f"expected {type_}, got {frame}"

    async def nothing(self, within: float = 0.3, skip: tuple[str, ...] = ()) -> None:
        """No frame (other than ``skip`` types) arrives within ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (left := deadline - loop.time()) > 0:
            try:
                frame = await self.recv(left)
            except TimeoutError:
                return
            assert frame["type"] in skip, f"unexpected frame {frame}"

    async def close(self) -> None:
        await self.ws.close()


@dataclass
class LiveServer:
    settings: Settings
    redis_url: str
    base: str
    app: web.Application
    clients: list[Client] = field(default_factory=list)
    totp: dict[str, str] = field(default_factory=dict)
    otp_steps: dict[str, set[int]] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.app[STORE]

    @property
    def ws_base(self) -> str:
        return self.base.replace("http://", "ws://")

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, settings: Settings, redis_url: str) -> AsyncIterator[LiveServer]:
        app = create_app(settings, redis_url)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        live = cls(settings, redis_url, f"http://127.0.0.1:{port}", app)
        try:
            yield live
        finally:
            for client in live.clients:
                with contextlib.suppress(Exception):
                    await client.close()
            await runner.cleanup()

    async def connect(
        self,
        path: str = "/ws/visitor",
        protocol: str = "chat.v1.json",
        headers: dict[str, str] | None = None,
    ) -> Client:
        ws = await websockets.connect(
            f"{self.ws_base}{path}",
            subprotocols=[protocol],  # type: ignore[list-item]
            additional_headers=headers or {},
            open_timeout=TIMEOUT,
        )
        client = Client(ws, protocol)
        self.clients.append(client)
        return client

    async def visitor(
        self, nickname: str, protocol: str = "chat.v1.json", **hello: Any
    ) -> tuple[Client, dict[str, Any]]:
        client = await self.connect("/ws/visitor", protocol)
        await client.send({"type": "hello", "nickname": nickname, **hello})
        welcome = await client.expect("welcome")
        return client, welcome

    async def add_staff(
        self,
        username: str,
        role: str = "counsellor",
        display_name: str | None = None,
        password: str = "correct horse 1",
        **kw: Any,
    ) -> str:
        member = await add_staff(
            self.store, username, password, Role(role), display_name or username.title(), **kw
        )
        if role in self.settings.auth.totp_roles:
            self.totp[username] = await enable_totp(self.store, username)
        return member.staff_id

    def otp(self, username: str) -> str | None:
        """A fresh TOTP code for a user with a second factor (each is accepted once)."""
        secret = self.totp.get(username)
        if secret is None:
            return None
        totp = pyotp.TOTP(secret)
        step = int(time.time()) // 30
        used = self.otp_steps.setdefault(username, set())
        for offset in (0, -1, 1):  # the server accepts one step either side, once each
            if step + offset not in used:
                used.add(step + offset)
                return str(totp.at((step + offset) * 30))
        raise AssertionError(f"no fresh TOTP code left for {username} in this window")

    async def login(self, username: str, password: str = "correct horse 1") -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.base}/api/login",
                json={"username": username, "password": password, "otp": self.otp(username)},
            ) as r,
        ):
            assert r.status == 200, await r.text()
            return await r.json()  # type: ignore[no-any-return]

    async def staff(
        self,
        username: str,
        role: str = "counsellor",
        protocol: str = "chat.v1.json",
        available: int | None = 1,
        **kw: Any,
    ) -> Client:
        """A logged-in staff client (the account is made first), optionally available."""
        if await self.store.account(username) is None:
            await self.add_staff(username, role, **kw)
        token = (await self.login(username))["token"]
        client = await self.connect(
            "/ws/staff", protocol, headers={"Authorization": f"Bearer {token}"}
        )
        await client.expect("welcome")
        if available:
            await client.send({"type": "status", "state": "available", "capacity": available})
            await client.expect("status")
        return client


async def slow_reading_visitor(live: LiveServer, nickname: str) -> tuple[Client, str]:
    """A visitor whose client buffers one frame at most (``max_queue=1``: a reader that
    falls behind at once), said hello; returns it and its conversation id."""
    ws = await websockets.connect(
        f"{live.ws_base}/ws/visitor",
        max_queue=1,
        subprotocols=["chat.v1.json"],  # type: ignore[list-item]
    )
    visitor = Client(ws, "chat.v1.json")
    await visitor.send({"type": "hello", "nickname": nickname})
    return visitor, (await visitor.expect("welcome"))["conversation_id"]
