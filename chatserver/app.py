"""The aiohttp application: routes, the two sockets, health, login, static pages.

Resources are opened and closed by ``cleanup_ctx`` context managers; application state
lives under typed :class:`web.AppKey` keys. No module-level singletons.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import structlog
from aiohttp import WSMsgType, web
from redis.exceptions import RedisError

from chatserver import review
from chatserver.auth import StaffMember, new_session_token, session_hash, verify_login
from chatserver.codec import SUBPROTOCOLS, Subprotocol, decode
from chatserver.config import Settings
from chatserver.connection import Connection
from chatserver.errors import CloseCode, ErrorCode, FrameError
from chatserver.frames import error_frame, frame_ref, parse_staff, parse_visitor
from chatserver.keys import Keys
from chatserver.security import security_headers
from chatserver.service import Service
from chatserver.staff import StaffSession
from chatserver.store import Store
from chatserver.supervision import start_watching
from chatserver.visitor import VisitorSession
from moderation.limits import TokenBucket
from nickname import suggest

log = structlog.get_logger("chatserver.app")

SETTINGS = web.AppKey("settings", Settings)
REDIS_URL = web.AppKey("redis_url", str)
STORE = web.AppKey("store", Store)
SERVICE = web.AppKey("service", Service)


class OpenSockets:
    """Every open websocket, weakly held, so shutdown can close them with 1001."""

    def __init__(self) -> None:
        self.all: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()


SOCKETS = web.AppKey("sockets", OpenSockets)

SESSION_COOKIE = "chat_session"
NO_STORE = {"Cache-Control": "no-store"}


def web_root() -> Path:
    return Path(str(resources.files("web")))


# -- resources ----------------------------------------------------------------------


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    url = app[REDIS_URL]
    opts: dict[str, Any] = {
        "socket_timeout": 5,
        "socket_connect_timeout": 3,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
    text = aioredis.Redis.from_url(url, decode_responses=True, **opts)
    binary = aioredis.Redis.from_url(url, decode_responses=False, **opts)
    app[STORE] = Store(text, binary, Keys(app[SETTINGS].server.key_prefix))
    try:
        yield
    finally:
        await text.aclose()
        await binary.aclose()


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
    return web.json_response({"status": "ready"})


async def login(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        username, password = body["username"], body["password"]
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return web.json_response(
            {"error": "invalid", "message": "username and password are required"},
            status=400,
            headers=NO_STORE,
        )
    store = request.app[STORE]
    member = await verify_login(store, username, password)
    if member is None:
        log.info("login_failed")
        return web.json_response(
            {"error": "unauthorised", "message": "wrong username or password"},
            status=401,
            headers=NO_STORE,
        )
    token = new_session_token()
    auth = request.app[SETTINGS].auth
    await store.create_session(
        session_hash(token), member.staff_id, int(auth.session_idle_minutes * 60), time.time()
    )
    log.info("login", staff_id=member.staff_id)
    response = web.json_response(
        {
            "token": token,
            "staff_id": member.staff_id,
            "role": member.role.value,
            "display_name": member.display_name,
        },
        headers=NO_STORE,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
        max_age=int(auth.session_absolute_hours * 3600),
    )
    return response


def _token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE)


async def authenticate(request: web.Request) -> StaffMember | None:
    token = _token(request)
    if token is None or len(token) > 200:
        return None
    store = request.app[STORE]
    auth = request.app[SETTINGS].auth
    staff_id = await store.touch_session(
        session_hash(token),
        int(auth.session_idle_minutes * 60),
        auth.session_absolute_hours * 3600,
        time.time(),
    )
    if staff_id is None:
        return None
    account = await store.account_by_id(staff_id)
    return StaffMember.from_account(account) if account else None


async def logout(request: web.Request) -> web.Response:
    token = _token(request)
    if token is not None:
        await request.app[STORE].delete_session(session_hash(token))
    response = web.json_response({"status": "logged out"}, headers=NO_STORE)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


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
            "quick_exit_url": settings.server.quick_exit_url,
            "text_max_chars": settings.limits.text_max_chars,
            "privacy_url": "/privacy",
        }
    )


async def nickname_suggestion(request: web.Request) -> web.Response:
    lang = "en" if request.query.get("lang") == "en" else "nl"
    return web.json_response({"nickname": suggest(random.SystemRandom(), lang)}, headers=NO_STORE)


def page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(web_root() / name, headers=NO_STORE)

    return handler


# -- sockets ------------------------------------------------------------------------


def origin_allowed(request: web.Request, settings: Settings) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser
    own = f"{request.scheme}://{request.host}"
    return origin == own or origin in settings.server.allowed_origins


async def _open_socket(request: web.Request) -> tuple[web.WebSocketResponse, Connection]:
    settings = request.app[SETTINGS]
    if not origin_allowed(request, settings):
        raise web.HTTPForbidden(reason="Origin not allowed")
    ws = web.WebSocketResponse(
        protocols=SUBPROTOCOLS,
        max_msg_size=settings.limits.frame_max_bytes,
        heartbeat=settings.limits.heartbeat_seconds,
        timeout=2.0,
        compress=False,
    )
    await ws.prepare(request)
    request.app[SOCKETS].all.add(ws)
    chosen = Subprotocol(ws.ws_protocol) if ws.ws_protocol else Subprotocol.JSON
    node = request.app[SERVICE].node_id
    return ws, Connection(ws, chosen, settings.limits.send_queue_max, node)


async def _pump(
    request: web.Request,
    ws: web.WebSocketResponse,
    conn: Connection,
    handle: Callable[[dict[str, Any]], Awaitable[None]],
    rate: float,
    burst: int,
) -> None:
    """Read frames one at a time and hand them on; errors become error frames."""
    limits = request.app[SETTINGS].limits
    bucket = TokenBucket(rate=rate, burst=burst)
    refused: list[float] = []
    while not conn.closing:
        try:
            msg = await ws.receive(timeout=limits.idle_timeout_seconds)
        except TimeoutError:
            conn.close(CloseCode.IDLE_TIMEOUT, "idle timeout")
            break
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            break
        obj: dict[str, Any] | None = None
        try:
            now = time.monotonic()
            if not bucket.allow(now):
                refused[:] = [t for t in refused if now - t < 10.0] + [now]
                if len(refused) >= limits.flood_refusals:
                    conn.close(CloseCode.TOO_MANY, "sustained flooding")
                    break
                raise FrameError(ErrorCode.RATE_LIMITED, "too many frames; slow down")
            obj = decode(msg.data, conn.protocol)
            await handle(obj)
        except FrameError as exc:
            conn.send(error_frame(exc.code, exc.message, frame_ref(obj) if obj else None))
        except (RedisError, OSError) as exc:
            log.warning("store_unavailable", error=type(exc).__name__)
            conn.send(
                error_frame(
                    ErrorCode.UNAVAILABLE,
                    "the service cannot reach its store right now; please retry",
                    frame_ref(obj) if obj else None,
                )
            )
        except Exception:
            log.exception("frame_failed")
            conn.send(
                error_frame(
                    ErrorCode.INVALID,
                    "this frame could not be handled",
                    frame_ref(obj) if obj else None,
                )
            )


async def visitor_socket(request: web.Request) -> web.WebSocketResponse:
    ws, conn = await _open_socket(request)
    service = request.app[SERVICE]
    settings = request.app[SETTINGS]
    session = VisitorSession(service, conn)
    limit = settings.limits.text_max_chars

    async def handle(obj: dict[str, Any]) -> None:
        await session.handle(parse_visitor(obj, limit))

    try:
        await _pump(
            request, ws, conn, handle, settings.limits.visitor_rate, settings.limits.visitor_burst
        )
    finally:
        try:
            await session.closed()
        except (RedisError, OSError):
            log.warning("visitor_close_unrecorded")
        await conn.finish()
        await ws.close()
    return ws


async def staff_socket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    if not origin_allowed(request, settings):
        raise web.HTTPForbidden(reason="Origin not allowed")
    member = await authenticate(request)
    if member is None:
        raise web.HTTPUnauthorized(reason="log in first")
    ws, conn = await _open_socket(request)
    service = request.app[SERVICE]
    session = StaffSession(service, conn, member)
    limit = settings.limits.text_max_chars

    async def handle(obj: dict[str, Any]) -> None:
        await session.handle(parse_staff(obj, limit))

    try:
        await session.start()
        await _pump(
            request, ws, conn, handle, settings.limits.staff_rate, settings.limits.staff_burst
        )
    finally:
        try:
            await session.closed()
        except (RedisError, OSError):
            log.warning("staff_close_unrecorded")
        await conn.finish()
        await ws.close()
    return ws


def create_app(settings: Settings, redis_url: str) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[security_headers])
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
    return app


def json_dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
