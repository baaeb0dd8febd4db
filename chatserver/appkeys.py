"""Typed application state keys (aiohttp ``web.AppKey``): no module-level singletons."""

from __future__ import annotations

import weakref

from aiohttp import web

from chatserver.addresses import AddressHasher
from chatserver.config import Settings
from chatserver.service import Service
from chatserver.store import Store


class OpenSockets:
    """Every open websocket, weakly held, so shutdown can close them with 1001."""

    def __init__(self) -> None:
        self.all: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()


SETTINGS = web.AppKey("settings", Settings)
REDIS_URL = web.AppKey("redis_url", str)
STORE = web.AppKey("store", Store)
SERVICE = web.AppKey("service", Service)
SOCKETS = web.AppKey("sockets", OpenSockets)
ADDRESSES = web.AppKey("addresses", AddressHasher)
