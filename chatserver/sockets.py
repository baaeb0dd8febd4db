"""The two websocket endpoints: one reader per socket, errors as frames, limits enforced.

Before upgrade: the Origin allow-list (403) and, for staff, a live session (401). After
upgrade: a blocked network is closed with 1008, too many sockets from one (hashed) address
with 4429; then frames are read one at a time through a token bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog
from aiohttp import WSMsgType, web
from redis.exceptions import RedisError

from chatserver.addresses import client_address, public_scheme
from chatserver.appkeys import ADDRESSES, SERVICE, SETTINGS, SOCKETS, STORE
from chatserver.auth import StaffMember, session_hash
from chatserver.codec import SUBPROTOCOLS, Subprotocol, decode
from chatserver.config import Settings
from chatserver.connection import Connection
from chatserver.errors import CloseCode, ErrorCode, FrameError
from chatserver.frames import error_frame, frame_ref, parse_staff, parse_visitor
from chatserver.login import authenticate, member_for_session, request_token
from chatserver.staff import StaffSession
from chatserver.visitor import VisitorSession
from moderation.limits import TokenBucket

log = structlog.get_logger("chatserver.sockets")

#: Set on a request once its websocket is upgraded: no HTTP answer can follow.
UPGRADED = web.RequestKey("upgraded", bool)

#: A staff socket's frames refresh its session at most this often (one write a minute).
SESSION_REFRESH_SECONDS = 60.0


def origin_allowed(request: web.Request, settings: Settings) -> bool:
    """Exact match against our own origin (its scheme from X-Forwarded-Proto behind a trusted
    proxy) and the configured ones; ``null`` is refused."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser
    own = f"{public_scheme(request, settings.server.trust_forwarded_for)}://{request.host}"
    return origin == own or origin in settings.server.allowed_origins


async def _acquire(request: web.Request, address: str) -> tuple[bool, bool]:
    """(admitted, counted): one more socket for this hashed address, counted in Redis so the
    limit holds across every process. Without the store: admitted, uncounted."""
    limit = request.app[SETTINGS].limits.connections_per_address
    if not limit:
        return True, False
    try:
        admitted = await request.app[STORE].acquire_connection(
            address, limit, request.app[SERVICE].node_id
        )
    except (RedisError, OSError):
        return True, False
    return admitted, admitted


async def _release(request: web.Request, address: str) -> None:
    with contextlib.suppress(RedisError, OSError):
        await request.app[STORE].release_connection(address, request.app[SERVICE].node_id)


async def _open(
    request: web.Request,
) -> tuple[web.WebSocketResponse, Connection, str, bool, bool]:
    """Upgrade; returns the socket, its connection, the hashed address, whether it is
    admitted (counted against the per-address limit before the upgrade, so no race), and
    whether it was counted (to be released on close)."""
    settings = request.app[SETTINGS]
    if request.headers.get("Sec-WebSocket-Version", "13") != "13":
        raise web.HTTPUpgradeRequired(  # RFC 6455 4.4: say which version we speak
            reason="only WebSocket version 13", headers={"Sec-WebSocket-Version": "13"}
        )
    address = await request.app[ADDRESSES].hash(
        client_address(request, settings.server.trust_forwarded_for)
    )
    sockets = request.app[SOCKETS]
    admitted, counted = await _acquire(request, address)
    ws = web.WebSocketResponse(
        protocols=SUBPROTOCOLS,
        max_msg_size=settings.limits.frame_max_bytes,
        heartbeat=heartbeat_interval(settings.limits.heartbeat_seconds, random.random()),
        timeout=2.0,
        compress=settings.limits.permessage_deflate,
    )
    try:
        await ws.prepare(request)
    except BaseException:
        if counted:
            await _release(request, address)
        raise
    request[UPGRADED] = True
    sockets.all.add(ws)
    chosen = Subprotocol(ws.ws_protocol) if ws.ws_protocol else Subprotocol.JSON
    conn = Connection(
        ws,
        chosen,
        settings.limits.send_queue_max,
        request.app[SERVICE].node_id,
        transport=request.protocol,
    )
    if not admitted:
        log.warning("too_many_connections_from_one_address")
        conn.close(CloseCode.TOO_MANY, "too many connections")
    return ws, conn, address, admitted, counted


#: Each socket's ping interval is the configured one times a factor within ±this.
HEARTBEAT_JITTER = 0.1


def heartbeat_interval(heartbeat: float, u: float) -> float | None:
    """This socket's ping interval (``u`` uniform in [0, 1)); None: no heartbeat.

    Sockets opened together (a shift starting, a reconnect wave, clients waiting on a start
    screen) would otherwise be pinged together for good, since each ping follows the last
    traffic by the same interval: at 5,000 sockets that is a burst of pings and pongs that
    stalls the loop for 100 ms or more every interval. Intervals a little apart spread the
    bursts out within a few rounds."""
    if heartbeat <= 0:
        return None
    return heartbeat * (1 + HEARTBEAT_JITTER * (2 * u - 1))


def receive_timeout(idle_timeout: float, heartbeat: float) -> float | None:
    """The timeout for each ``receive``, or None where it could never fire.

    Any traffic restarts it, the client's pongs too (aiohttp answers and reads them inside
    ``receive``). With the heartbeat on, a live client's pong comes within 1.5 of its
    socket's heartbeats (at most 10 % over the configured one) of its last traffic, aiohttp
    rounding timers of 5 s or more up to a whole second (2 s more at most), and a client
    that stops answering is closed by the heartbeat itself by then: an idle timeout longer
    than that cannot fire, and is left out (a timer armed and cancelled for every frame,
    and one held by every idle socket)."""
    if heartbeat > 0 and idle_timeout > 2 * heartbeat + 2:
        return None
    return idle_timeout


async def _pump(
    request: web.Request,
    ws: web.WebSocketResponse,
    conn: Connection,
    handle: Callable[[dict[str, Any]], Awaitable[None]],
    rate: float,
    burst: int,
    on_frame: Callable[[float], Awaitable[None]] | None = None,
) -> None:
    """Read frames one at a time and hand them on; errors become error frames."""
    limits = request.app[SETTINGS].limits
    bucket = TokenBucket(rate=rate, burst=burst)
    refused: list[float] = []
    idle = receive_timeout(limits.idle_timeout_seconds, limits.heartbeat_seconds)
    while not conn.closing:
        try:
            msg = await ws.receive(timeout=idle)
        except TimeoutError:
            conn.close(CloseCode.IDLE_TIMEOUT, "idle timeout")
            break
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            break
        now = time.monotonic()
        obj: dict[str, Any] | None = None
        try:
            if on_frame is not None:
                await on_frame(now)
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
            with contextlib.suppress(RedisError, OSError):
                await request.app[STORE].count(f"rejected:{exc.code.value}")
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
            # A bug or corrupt state, not a bad frame: say so with 1011 and let the client
            # reconnect and resume from the store, rather than go on in an unknown state.
            log.exception("frame_failed")
            conn.close(CloseCode.INTERNAL, "internal error")
            break


def session_check_delays(every: float) -> Iterator[float]:
    """Seconds before each session check: the first at a random point in [0.5, 1] × ``every``,
    then ``every`` ± 10 %, so sockets opened together (a shift starting, a reconnect wave) do
    not all read the store in the same instant."""
    yield every * random.uniform(0.5, 1.0)
    while True:
        yield every * random.uniform(0.9, 1.1)


async def _watch_session(
    app: web.Application, conn: Connection, token_hash: str, member: StaffMember, every: float
) -> None:
    """About every ``every`` seconds (jittered: :func:`session_check_delays`), whatever the
    traffic: re-read the session (without refreshing it) and the account; an expired or
    ended session, or a changed role, closes with 4401."""
    for delay in session_check_delays(every):
        if conn.closing:
            return
        await asyncio.sleep(delay)
        try:
            current = await member_for_session(app, token_hash, refresh=False)
        except (RedisError, OSError):
            continue  # the store cannot say right now: frames are told "unavailable"
        if current is None or current.role is not member.role:
            log.info("staff_session_ended", staff_id=member.staff_id)
            conn.close(CloseCode.UNAUTHORISED, "session ended")
            return


async def _started(session: StaffSession, conn: Connection) -> bool:
    """Send the staff welcome; without the store, say so and close 1013 (try again)."""
    try:
        await session.start()
    except (RedisError, OSError) as exc:
        log.warning("store_unavailable", error=type(exc).__name__)
        conn.send(error_frame(ErrorCode.UNAVAILABLE, "the service cannot reach its store"))
        conn.close(CloseCode.TRY_AGAIN, "store unavailable")
        return False
    return True


async def _blocked(request: web.Request, address_hash: str) -> bool:
    """Whether this network is blocked (by today's hash, ``address_hash`` from
    :func:`_open`, or yesterday's); open when the store cannot say (help comes first)."""
    address = client_address(request, request.app[SETTINGS].server.trust_forwarded_for)
    try:
        return await request.app[STORE].is_blocked(
            addresses=await request.app[ADDRESSES].recent(address, today=address_hash)
        )
    except (RedisError, OSError):
        return False


async def visitor_socket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    if not origin_allowed(request, settings):
        raise web.HTTPForbidden(reason="Origin not allowed")
    ws, conn, address, admitted, counted = await _open(request)
    session = VisitorSession(request.app[SERVICE], conn, address)
    limit = settings.limits.text_max_chars

    async def handle(obj: dict[str, Any]) -> None:
        await session.handle(parse_visitor(obj, limit))

    try:
        if admitted and await _blocked(request, address):
            conn.close(CloseCode.POLICY, "blocked")
        elif admitted:
            await _pump(
                request,
                ws,
                conn,
                handle,
                settings.limits.visitor_rate,
                settings.limits.visitor_burst,
            )
    finally:
        if counted:
            await _release(request, address)
        try:
            await session.closed()
        except (RedisError, OSError):
            log.warning("visitor_close_unrecorded")
            request.app[SERVICE].drop_unrecorded("v", session.conversation_id, conn.id)
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
    token_hash = session_hash(request_token(request) or "")
    ws, conn, address, admitted, counted = await _open(request)
    conn.session = token_hash
    session = StaffSession(request.app[SERVICE], conn, member)
    limit = settings.limits.text_max_chars

    async def handle(obj: dict[str, Any]) -> None:
        await session.handle(parse_staff(obj, limit))

    auth = settings.auth
    refresh_every = min(SESSION_REFRESH_SECONDS, auth.session_idle_minutes * 30)
    last_refresh = time.monotonic()  # the handshake just refreshed it

    async def on_frame(now: float) -> None:
        """A real user frame keeps the session alive (throttled)."""
        nonlocal last_refresh
        if now - last_refresh >= refresh_every:
            last_refresh = now
            with contextlib.suppress(RedisError, OSError):
                await member_for_session(request.app, token_hash)

    watcher = asyncio.create_task(
        _watch_session(request.app, conn, token_hash, member, auth.session_check_seconds),
        name=f"session-{conn.id}",
    )
    try:
        if admitted and await _started(session, conn):
            await _pump(
                request,
                ws,
                conn,
                handle,
                settings.limits.staff_rate,
                settings.limits.staff_burst,
                on_frame,
            )
    finally:
        watcher.cancel()
        if counted:
            await _release(request, address)
        if admitted:
            try:
                await session.closed()
            except (RedisError, OSError):
                log.warning("staff_close_unrecorded")
                request.app[SERVICE].drop_unrecorded("s", member.staff_id, conn.id)
        await conn.finish()
        await ws.close()
    return ws
