"""The aiohttp application: routes, the two sockets, health, login, static pages.

Resources are opened and closed by ``cleanup_ctx`` context managers; application state
lives under typed :class:`web.AppKey` keys. No module-level singletons.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from chatserver import insights, review
from chatserver.addresses import AddressHasher, public_scheme
from chatserver.appkeys import (
    ADDRESSES,
    REDIS_URL,
    SERVICE,
    SETTINGS,
    SOCKETS,
    STORE,
    OpenSockets,
)
from chatserver.config import Settings
from chatserver.connection import Connection
from chatserver.errors import CloseCode
from chatserver.keys import Keys
from chatserver.login import SESSION_COOKIE, authenticate, login, logout
from chatserver.redisconn import connect, connect_pubsub
from chatserver.security import Handler, security_headers
from chatserver.service import Service
from chatserver.sockets import UPGRADED, staff_socket, visitor_socket
from chatserver.store import Store
from chatserver.supervision import start_watching
from nickname import suggest

__all__ = [
    "ADDRESSES",
    "REDIS_URL",
    "SERVICE",
    "SESSION_COOKIE",
    "SETTINGS",
    "SOCKETS",
    "STORE",
    "authenticate",
    "create_app",
]

log = structlog.get_logger("chatserver.app")


NO_STORE = {"Cache-Control": "no-store"}


def web_root() -> Path:
    return Path(str(resources.files("web")))


# -- resources ----------------------------------------------------------------------


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    url = app[REDIS_URL]
    text = connect(url, decode=True)
    binary = connect(url, decode=False)
    app[STORE] = Store(text, binary, Keys(app[SETTINGS].server.key_prefix))
    subscriber = connect_pubsub(url)
    app[STORE].subscriber = subscriber
    app[ADDRESSES] = AddressHasher(app[STORE])
    try:
        yield
    finally:
        await app[STORE].says.aclose()
        await text.aclose()
        await binary.aclose()
        await subscriber.aclose()


async def service_ctx(app: web.Application) -> AsyncIterator[None]:
    service = Service(app[STORE], app[SETTINGS])
    app[SERVICE] = service

    async def auto_watch(conn: Connection, conversation_id: str) -> None:
        account = await service.store.account_by_id(conn.staff_id or "")
        meta = await service.store.conversation(conversation_id)
        if account is not None and meta is not None:
            await start_watching(
                service,
                conn,
                account["id"],
                account["role"],
                account["display_name"],
                conversation_id,
                meta,
            )

    service.hub.on_auto_watch = auto_watch
    async with service.running():
        yield


async def sockets_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SOCKETS] = OpenSockets()
    yield


async def close_sockets(app: web.Application) -> None:
    """On shutdown, before handlers are awaited: close every socket with 1001 (going away).

    Clients reconnect (to another process, with several) and resume where they were.
    """
    await asyncio.gather(
        *(
            ws.close(code=CloseCode.GOING_AWAY, message=b"server shutdown")
            for ws in list(app[SOCKETS].all)
        ),
        return_exceptions=True,
    )


# -- HTTP ---------------------------------------------------------------------------


@web.middleware
async def store_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The store cannot be reached: 503 with a JSON reason, not a 500 and a traceback.

    After a websocket upgrade no HTTP answer can be sent; the socket handlers deal with
    the store themselves there (``unavailable`` error frames).
    """
    try:
        return await handler(request)
    except (RedisError, OSError) as exc:
        if request.get(UPGRADED):
            raise
        log.warning("store_unavailable", path=request.path, error=type(exc).__name__)
        return web.json_response(
            {"error": "unavailable", "message": "the service cannot reach its store; retry"},
            status=503,
            headers={**NO_STORE, "Retry-After": "5"},
        )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(2):
            await request.app[STORE].ping()
    except (RedisError, OSError, TimeoutError):
        return web.json_response(
            {"status": "unavailable", "reason": "redis unreachable"}, status=503
        )
    service = request.app.get(SERVICE)
    if service is None or not service.hub.ready:
        # Redis answers, but this process hears no events (subscribing, catching up, or its
        # subscription went silent): it cannot deliver live, and answers writes unavailable.
        return web.json_response(
            {"status": "unavailable", "reason": "event listener not subscribed"}, status=503
        )
    return web.json_response({"status": "ready"})


async def public_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    lang = "en" if request.query.get("lang") == "en" else "nl"
    from queueing.topics import topics_for

    topics = [
        {"id": t.id, "label": t.label_en if lang == "en" else t.label_nl}
        for t in topics_for(settings.topics)
    ]
    texts = settings.texts
    return web.json_response(
        {
            "topics": topics,
            "emergency_text": texts.emergency_en if lang == "en" else texts.emergency_nl,
            "quick_exit_url": _absolute(request, settings.server.quick_exit_url),
            "text_max_chars": settings.limits.text_max_chars,
            "privacy_url": "/privacy",
        }
    )


def _absolute(request: web.Request, url: str) -> str:
    """A path like ``/neutral`` becomes a URL on this server's own origin."""
    scheme = public_scheme(request, request.app[SETTINGS].server.trust_forwarded_for)
    return f"{scheme}://{request.host}{url}" if url.startswith("/") else url


async def nickname_suggestion(request: web.Request) -> web.Response:
    lang = "en" if request.query.get("lang") == "en" else "nl"
    return web.json_response({"nickname": suggest(random.SystemRandom(), lang)}, headers=NO_STORE)


def page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(web_root() / name, headers=NO_STORE)

    return handler


# -- sockets ------------------------------------------------------------------------


def create_app(settings: Settings, redis_url: str) -> web.Application:
    app = web.Application(
        client_max_size=64 * 1024, middlewares=[security_headers, store_unavailable]
    )
    app[SETTINGS] = settings
    app[REDIS_URL] = redis_url
    app.cleanup_ctx.extend([redis_ctx, service_ctx, sockets_ctx])
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/", page("visitor.html"))
    app.router.add_get("/staff", page("staff.html"))
    app.router.add_get("/supervisor", page("supervisor.html"))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/public-config", public_config)
    app.router.add_get("/api/nickname-suggestion", nickname_suggestion)
    app.router.add_get("/ws/visitor", visitor_socket)
    app.router.add_get("/ws/staff", staff_socket)
    app.router.add_static("/static/", web_root(), follow_symlinks=False)
    review.setup(app)
    insights.setup(app)
    return app


def json_dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
