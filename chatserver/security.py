"""Security headers on every answer: a strict Content-Security-Policy (no inline scripts,
nothing from another origin), no framing, no referrer, no caching of chat pages and API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from chatserver.addresses import public_scheme
from chatserver.appkeys import SETTINGS

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        raise
    if not response.prepared:  # a websocket is already prepared; headers went out
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def csrf_ok(request: web.Request) -> bool:
    """A state-changing request authenticated by cookie must come from our own pages:
    not cross-site (Sec-Fetch-Site), our own Origin if any, and our pages' custom header."""
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return True  # a bearer token is never sent by a browser on its own
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    scheme = public_scheme(request, request.app[SETTINGS].server.trust_forwarded_for)
    if origin is not None and origin != f"{scheme}://{request.host}":
        return False
    return request.headers.get("X-Requested-With") == "chat"
