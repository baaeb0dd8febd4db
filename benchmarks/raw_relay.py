"""A raw relay on aiohttp: the limit of this machine for the benchmark's comparison.

It speaks just enough of the contract for the benchmark clients (login, staff ``welcome``
and ``status``, visitor ``hello`` → ``welcome`` → ``assigned``, ``say`` → ``ack`` +
``message``) over the msgpack subprotocol, pairing visitors with counsellors in one
process: no storage, no queue, no checks. Run: ``python -m benchmarks.raw_relay --port 8099``.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

PROTOCOL = "chat.v1.msgpack"


class Relay:
    def __init__(self) -> None:
        self.free: list[tuple[web.WebSocketResponse, int]] = []  # counsellor, places left
        self.ids = itertools.count(1)

    def pair(self) -> web.WebSocketResponse | None:
        for i, (ws, places) in enumerate(self.free):
            if places > 0 and not ws.closed:
                self.free[i] = (ws, places - 1)
                return ws
        return None


RELAY = web.AppKey("relay", Relay)


async def login(request: web.Request) -> web.Response:
    return web.json_response(
        {"token": "raw", "staff_id": "s", "role": "counsellor", "display_name": "Raw"}
    )


async def staff(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=[PROTOCOL], compress=False)
    await ws.prepare(request)
    relay = request.app[RELAY]
    await ws.send_bytes(
        msgpack.packb(
            {"type": "welcome", "staff_id": "s", "role": "counsellor", "display_name": "Raw"}
        )
    )
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            break
        frame = msgpack.unpackb(msg.data, raw=False)
        if frame["type"] == "status":
            relay.free.append((ws, int(frame.get("capacity", 1))))
    relay.free = [(w, p) for w, p in relay.free if w is not ws]
    return ws


async def visitor(request: web.Request) -> web.WebSocketResponse:
    relay = request.app[RELAY]
    ws = web.WebSocketResponse(protocols=[PROTOCOL], compress=False)
    await ws.prepare(request)
    partner: web.WebSocketResponse | None = None
    conv, seq = "", 0
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            break
        frame: dict[str, Any] = msgpack.unpackb(msg.data, raw=False)
        if frame["type"] == "hello":
            conv = f"r{next(relay.ids)}"
            await ws.send_bytes(
                msgpack.packb(
                    {
                        "type": "welcome",
                        "conversation_id": conv,
                        "visitor_id": conv,
                        "nickname": "x",
                        "resume_token": "x",
                    }
                )
            )
            partner = relay.pair()
            await ws.send_bytes(
                msgpack.packb({"type": "assigned", "conversation_id": conv, "counsellor": "Raw"})
            )
        elif frame["type"] == "say" and partner is not None and not partner.closed:
            seq += 1
            await partner.send_bytes(
                msgpack.packb(
                    {
                        "type": "message",
                        "conversation_id": conv,
                        "seq": seq,
                        "from": "visitor",
                        "author": "x",
                        "text": frame["text"],
                        "ts": 0.0,
                    }
                )
            )
            await ws.send_bytes(msgpack.packb({"type": "ack", "ref": frame.get("ref"), "seq": seq}))
    return ws


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def create_app() -> web.Application:
    app = web.Application()
    app[RELAY] = Relay()
    app.router.add_post("/api/login", login)
    app.router.add_get("/ws/staff", staff)
    app.router.add_get("/ws/visitor", visitor)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        web.run_app(create_app(), host="127.0.0.1", port=args.port, print=None, shutdown_timeout=1)
    else:
        web.run_app(
            create_app(),
            host="127.0.0.1",
            port=args.port,
            print=None,
            shutdown_timeout=1,
            loop=uvloop.new_event_loop(),
        )


if __name__ == "__main__":
    main()
