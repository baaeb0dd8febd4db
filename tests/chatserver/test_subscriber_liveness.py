"""The event subscription goes silent (no error, no reset: a black hole) and is noticed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import structlog

from chatserver.appkeys import SERVICE
from chatserver.config import Settings
from chatserver.hub import Hub
from tests.chatserver.test_redis_outage import say_until_acked
from tests.helpers import Client, LiveServer, eventually

pytestmark = pytest.mark.slow


@dataclass(eq=False)
class Link:
    """One proxied connection; ``silent`` once its path became a black hole (for good)."""

    writers: list[asyncio.StreamWriter]
    subscriber: bool = False
    silent: bool = False


@dataclass
class BlackHoleProxy:
    """TCP between the server and Redis. :meth:`black_hole` silences every subscribing
    connection (one that sent SUBSCRIBE), and any that subscribes while it lasts, in both
    directions and without closing a socket; :meth:`restore` lets new connections through
    again while the silenced ones stay silent, like a NAT that forgot them. Other
    connections (writes) keep working throughout."""

    target: tuple[str, int]
    holing: bool = False
    pings: int = 0
    links: list[Link] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    def black_hole(self) -> None:
        self.holing = True
        for link in self.links:
            link.silent = link.silent or link.subscriber

    def restore(self) -> None:
        self.holing = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        link = Link([writer, up_writer])
        self.links.append(link)
        for task in (
            asyncio.create_task(self._pump(reader, up_writer, link, upstream=True)),
            asyncio.create_task(self._pump(up_reader, writer, link, upstream=False)),
        ):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        link: Link,
        *,
        upstream: bool,
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if upstream and b"SUBSCRIBE" in data:
                    link.subscriber = True
                    link.silent = link.silent or self.holing
                if link.silent:
                    continue  # swallowed: nothing arrives, nothing fails
                if upstream and link.subscriber and b"PING" in data:
                    self.pings += 1
                dst.write(data)
                await dst.drain()
            if not link.silent:
                dst.close()

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, redis_url: str) -> AsyncIterator[BlackHoleProxy]:
        parts = urlsplit(redis_url)
        proxy = cls((parts.hostname or "127.0.0.1", parts.port or 6379))
        proxy.server = await asyncio.start_server(proxy._accept, "127.0.0.1", 0)
        try:
            yield proxy
        finally:
            proxy.server.close()
            for task in list(proxy.tasks):
                task.cancel()
            for link in proxy.links:
                for writer in link.writers:
                    writer.close()
            await asyncio.gather(*proxy.tasks, return_exceptions=True)


@pytest.fixture
def quick_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Hub, "listen_ping_seconds", 0.2)
    monkeypatch.setattr(Hub, "listen_pong_seconds", 2.0)


async def chatting(live: LiveServer) -> tuple[Client, Client, str]:
    counsellor = await live.staff("anna")
    visitor, welcome = await live.visitor("Stiltezoeker")
    conv = welcome["conversation_id"]
    await counsellor.expect("assigned")
    await visitor.expect("assigned")
    return visitor, counsellor, conv


async def answer_to(client: Client, ref: str) -> dict[str, Any]:
    """The ack or error frame for ``ref`` (other frames may come first)."""
    while True:
        frame = await client.recv(10)
        if frame["type"] in ("ack", "error") and frame.get("ref") == ref:
            return frame


def settings_for(key_prefix: str) -> Settings:
    settings = Settings()
    return replace(settings, server=replace(settings.server, key_prefix=key_prefix))


async def readyz(live: LiveServer) -> tuple[int, str | None]:
    async with aiohttp.ClientSession() as http, http.get(f"{live.base}/readyz") as r:
        return r.status, (await r.json()).get("reason")


def lost(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "event_listener_lost"]


@pytest.mark.usefixtures("quick_pings")
async def test_silent_subscription_is_lost_resubscribed_and_resynced(
    redis_url: str, key_prefix: str
) -> None:
    """A subscription gone silent is lost (not ready, logged), then resubscribed once a path
    works again, and what a visitor said meanwhile reaches the counsellor."""
    with structlog.testing.capture_logs() as logs:
        async with (
            BlackHoleProxy.running(redis_url) as proxy,
            LiveServer.start(settings_for(key_prefix), proxy.url) as live,
        ):
            visitor, counsellor, conv = await chatting(live)
            await visitor.send({"type": "say", "text": "voor", "ref": "a"})
            assert (await visitor.expect("ack"))["seq"] == 1
            assert (await counsellor.expect("message", skip=("queue",)))["text"] == "voor"
            hub = live.app[SERVICE].hub
            proxy.black_hole()
            said = {"type": "say", "text": "in de stilte", "ref": "b"}
            await visitor.send(said)  # acked (unnoticed yet) or unavailable (noticed)
            first = await answer_to(visitor, "b")
            await eventually(lambda: not hub.ready, 15, what="the silent subscription is lost")
            assert lost(logs) and lost(logs)[0]["error"] == "TimeoutError"
            assert await readyz(live) == (503, "event listener not subscribed")
            proxy.restore()
            await eventually(lambda: hub.ready, 30, what="subscribed and caught up again")
            assert await readyz(live) == (200, None)
            seq = await say_until_acked(visitor, said)  # the same ref: stored once
            assert seq == 2 and (first["type"] == "error" or first["seq"] == 2)
            got = await counsellor.expect("message", timeout=15, skip=("queue", "notice", "status"))
            assert (got["conversation_id"], got["seq"], got["text"]) == (conv, 2, "in de stilte")
            await counsellor.send({"type": "say", "conversation_id": conv, "text": "ik hoor je"})
            await counsellor.expect("ack", skip=("queue", "notice", "status"))
            assert (await visitor.expect("message", timeout=15))["text"] == "ik hoor je"
    assert any(e["event"] == "event_listener_lost" for e in logs)


@pytest.mark.usefixtures("quick_pings")
async def test_quiet_but_answering_subscription_stays_ready(
    redis_url: str, key_prefix: str
) -> None:
    """A quiet subscription is pinged, answers, and is never taken for lost."""
    with structlog.testing.capture_logs() as logs:
        async with (
            BlackHoleProxy.running(redis_url) as proxy,
            LiveServer.start(settings_for(key_prefix), proxy.url) as live,
        ):
            hub = live.app[SERVICE].hub
            await eventually(lambda: proxy.pings >= 5, 15, what="five pings on the subscription")
            assert hub.ready
    assert not lost(logs)
