"""One load-generating client process for :mod:`benchmarks.capacity`.

Each process has its own asyncio loop (uvloop when installed) and holds its share of one
target's visitors and counsellors, with the ``websockets`` client library over the
msgpack subprotocol. The controller drives it through a pipe, one command at a time; the
answers are plain data: counts and ``time.monotonic()`` timestamps (one clock for every
process of the machine, so send and delivery times compare across processes).

Every socket has one reader task for its whole life, so that no socket ever stops being
read (a server must never see the benchmark as a slow reader). A client behaves as the
contract allows: a frame answered with ``unavailable`` is sent again, a few times.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import resource
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection as Pipe
from typing import Any

import aiohttp
import msgpack
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("chat.v1.msgpack")
PASSWORD = "benchmark password"
CAPACITY = 10  # chatserver.frames.CAPACITY_MAX: the most conversations one counsellor takes
CONNECT_CONCURRENCY = 16
LOGIN_CONCURRENCY = 4
RETRIES = 5
POLL = 0.02
STALL = 10.0  # seconds without a new assignment: the rest will not come
PLACED = frozenset({"queued", "assigned"})
#: What a visitor says: an ordinary sentence (no digits: a timestamp in digits would send
#: every message through the phone-number matcher, which typical chat text does not),
#: then "~" and the send (or due) time in microseconds, in letters.
SENTENCE = "ik weet niet zo goed hoe ik dit moet vertellen, mag dat"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
ACK = frozenset({"ack"})

monotonic = time.monotonic
packb = msgpack.packb


def raise_fd_limit() -> int:
    """Soft limit on open files up to the hard limit (every socket is one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Party:
    """One socket: a visitor or a counsellor."""

    __slots__ = (
        "acked",
        "answer",
        "assigned_at",
        "closed",
        "failed",
        "name",
        "reader",
        "sent",
        "want",
        "welcomed_at",
        "ws",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        #: The next answer this party waits for: a frame type, an error code, "closed".
        self.answer: asyncio.Future[str] | None = None
        self.want: frozenset[str] = frozenset()
        self.welcomed_at = 0.0
        self.assigned_at = 0.0
        self.sent = 0
        self.acked = 0
        self.failed = 0
        self.closed = False

    def expect(self, want: frozenset[str]) -> asyncio.Future[str]:
        """The next frame of a kind in ``want``, an error code, or "closed"."""
        self.want = want
        self.answer = asyncio.get_running_loop().create_future()
        if self.closed:
            self.answer.set_result("closed")
        return self.answer

    def answered(self, what: str, final: bool = False) -> None:
        if (final or what in self.want) and self.answer is not None and not self.answer.done():
            self.answer.set_result(what)


class Client:
    def __init__(self, port: int, index: int, procs: int) -> None:
        self.host = f"127.0.0.1:{port}"
        self.index = index
        self.procs = procs
        self.visitors: list[Party] = []
        self.counsellors: list[Party] = []
        #: Deliveries to this process's counsellors: receive time and the time in the text.
        self.recv_times: list[float] = []
        self.sent_times: list[float] = []
        self.frames: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.last_seq: dict[str, int] = {}
        self.order_faults = 0
        self.acks_without_seq = 0

    # -- sockets ---------------------------------------------------------------------
    async def _connect(self, path: str, headers: dict[str, str] | None = None) -> ClientConnection:
        return await websockets.connect(
            f"ws://{self.host}{path}",
            subprotocols=[PROTOCOL],
            compression=None,  # permessage-deflate off, as on the server
            ping_interval=None,  # the server sends the heartbeat pings
            max_size=None,
            open_timeout=60,
            close_timeout=2,
            proxy=None,
            additional_headers=headers,
        )

    async def _read(self, party: Party, staff: bool) -> None:
        ws = party.ws
        assert ws is not None
        try:
            async for data in ws:
                self._on_frame(party, staff, msgpack.unpackb(data, raw=False), monotonic())
        except ConnectionClosed:
            pass
        finally:
            party.closed = True
            self.closes[str(ws.close_code)] += 1
            party.answered("closed", final=True)

    def _on_frame(self, party: Party, staff: bool, frame: dict[str, Any], now: float) -> None:
        kind = str(frame.get("type"))
        self.frames[kind] += 1
        if kind == "message":
            self._delivered(frame, now)
        elif kind == "ack":
            party.acked += 1
            if frame.get("seq") is None:
                self.acks_without_seq += 1
            party.answered(kind)
        elif kind in ("welcome", "status", "queued"):
            if kind == "welcome":
                party.welcomed_at = now
            party.answered(kind)
        elif kind == "assigned":
            if not staff and not party.assigned_at:
                party.assigned_at = now
            party.answered(kind)
        elif kind == "error":
            code = str(frame.get("code"))
            self.errors[code] += 1
            party.failed += 1
            party.answered(code, final=True)

    def _delivered(self, frame: dict[str, Any], now: float) -> None:
        text = frame.get("text", "")
        if text.startswith(SENTENCE):
            self.recv_times.append(now)
            self.sent_times.append(unstamp(text.rpartition("~")[2]))
        conv, seq = str(frame.get("conversation_id")), frame.get("seq")
        if isinstance(seq, int):
            last = self.last_seq.get(conv)
            if last is not None and seq != last + 1:
                self.order_faults += 1
            self.last_seq[conv] = seq

    def _start(self, party: Party, ws: ClientConnection, staff: bool) -> None:
        party.ws = ws
        party.reader = asyncio.create_task(self._read(party, staff))

    async def _request(
        self,
        party: Party,
        frame: Callable[[int], dict[str, Any]],
        want: frozenset[str],
        timeout: float,
        done: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Send a frame and wait for its answer (a frame type in ``want``), or until
        ``done()``; again on ``unavailable`` (the contract's "the client may retry").
        ``frame(attempt)`` builds the frame for each attempt."""
        assert party.ws is not None
        for attempt in range(RETRIES):
            answer = party.expect(want)
            with contextlib.suppress(ConnectionClosed):
                await party.ws.send(packb(frame(attempt)))
            try:
                got = await asyncio.wait_for(answer, timeout)
            except TimeoutError:
                return done()
            if got in want or done():
                return True
            if got == "closed" or attempt == RETRIES - 1:
                return False
            self.retries[got] += 1
            await asyncio.sleep(0.05 * 2**attempt)
        return False

    @staticmethod
    async def _bounded(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> None:
        gate = asyncio.Semaphore(limit)

        async def one(job: Callable[[], Awaitable[Any]]) -> None:
            async with gate:
                await job()

        await asyncio.gather(*(one(job) for job in jobs))

    # -- commands ----------------------------------------------------------------------
    async def cmd_counsellors(self, names: list[str], available: bool) -> dict[str, Any]:
        """Log in and open a staff socket for each name; optionally go available at once."""
        began = monotonic()
        async with aiohttp.ClientSession() as http:

            async def login(party: Party) -> None:
                async with http.post(
                    f"http://{self.host}/api/login",
                    json={"username": party.name, "password": PASSWORD},
                ) as r:
                    token = (await r.json())["token"]
                answer = party.expect(frozenset({"welcome"}))
                ws = await self._connect("/ws/staff", {"Authorization": f"Bearer {token}"})
                self._start(party, ws, staff=True)
                if await asyncio.wait_for(answer, 60) != "welcome":
                    raise RuntimeError(f"staff socket of {party.name} got no welcome")
                if available:  # the raw relay does not answer status frames
                    await ws.send(packb(_available(0)))

            parties = [Party(n) for n in names]
            self.counsellors += parties
            await self._bounded([functools.partial(login, p) for p in parties], LOGIN_CONCURRENCY)
        return {"opened": len(names), "seconds": monotonic() - began}

    async def cmd_visitors(self, first: int, count: int, tag: str) -> dict[str, Any]:
        """Open visitor sockets (no frame sent yet): numbers first, first+procs, ..."""
        began = monotonic()
        parties = [
            Party(f"V{tag}{i}") for i in range(first, first + count * self.procs, self.procs)
        ]

        async def open_one(party: Party) -> None:
            self._start(party, await self._connect("/ws/visitor"), staff=False)

        self.visitors += parties
        await self._bounded([functools.partial(open_one, p) for p in parties], CONNECT_CONCURRENCY)
        return {"opened": len(parties), "seconds": monotonic() - began}

    async def cmd_hello(
        self, lo: int, hi: int, start_at: float, window: int, timeout: float
    ) -> dict[str, Any]:
        """From ``start_at`` visitors ``lo`` to ``hi`` of this process send ``hello`` and
        wait for ``welcome``, at most ``window`` at a time (again on ``unavailable``, with
        another nickname: a half-done hello may have kept the first)."""
        await asyncio.sleep(max(0.0, start_at - monotonic()))
        began = monotonic()
        batch = self.visitors[lo:hi]

        def hello(v: Party, attempt: int) -> dict[str, Any]:
            nickname = v.name if attempt == 0 else f"{v.name}r{attempt}"
            return {"type": "hello", "nickname": nickname, "lang": "en"}

        async def one(v: Party) -> None:
            # Done once placed (queued or assigned), not at welcome: the server goes on
            # with the hello after its welcome, and the window is meant to bound that too.
            # An error after the welcome (that tail failed) leaves the visitor welcomed.
            await self._request(
                v, functools.partial(hello, v), PLACED, timeout, lambda: v.welcomed_at > 0
            )

        await self._bounded([functools.partial(one, v) for v in batch], window)
        welcomed = [v.welcomed_at for v in batch if v.welcomed_at]
        return {"began": began, "welcomed": welcomed}

    async def cmd_available(self, start_at: float, window: int, timeout: float) -> dict[str, Any]:
        """From ``start_at`` every counsellor says ``status available`` (capacity 10), at
        most ``window`` at a time, and waits for the server's ``status`` answer."""
        await asyncio.sleep(max(0.0, start_at - monotonic()))
        began = monotonic()
        results: list[bool] = []

        async def one(c: Party) -> None:
            results.append(await self._request(c, _available, frozenset({"status"}), timeout))

        await self._bounded([functools.partial(one, c) for c in self.counsellors], window)
        return {"began": began, "available": sum(results)}

    async def cmd_assigned(self, lo: int, hi: int, timeout: float) -> dict[str, Any]:
        """Wait until every welcomed visitor from ``lo`` to ``hi`` has its ``assigned``."""
        deadline = monotonic() + timeout
        waiting = [v for v in self.visitors[lo:hi] if v.welcomed_at]
        count, moved = -1, monotonic()
        for _ in range(int(timeout / POLL) + 1):
            if monotonic() > deadline or all(v.assigned_at or v.closed for v in waiting):
                break
            now_count = sum(1 for v in waiting if v.assigned_at)
            if now_count != count:
                count, moved = now_count, monotonic()
            elif monotonic() - moved > STALL:
                break  # e.g. orphaned conversations took the places (see the report)
            await asyncio.sleep(POLL)
        return {"assigned": [v.assigned_at for v in waiting if v.assigned_at]}

    def _senders(self) -> list[Party]:
        senders = [v for v in self.visitors if v.assigned_at and not v.closed]
        if not senders:
            raise RuntimeError("no paired visitor to send from")
        return senders

    async def cmd_open_loop(
        self, rate: float, start_at: float, seconds: float, drain: float
    ) -> dict[str, Any]:
        """Offer ``rate`` msg/s (this process's share), each message due at a fixed time,
        round robin over the paired visitors; the text carries the due time. Nothing is
        sent again: an error answer counts as answered, not as delivered."""
        senders = self._senders()
        total = int(rate * seconds)
        interval = 1.0 / rate
        k = 0
        while k < total:
            await asyncio.sleep(max(0.0, start_at + k * interval - monotonic()))
            now = monotonic()
            while k < total and start_at + k * interval <= now:
                v = senders[k % len(senders)]
                due = start_at + k * interval
                assert v.ws is not None
                with contextlib.suppress(ConnectionClosed):
                    await v.ws.send(packb({"type": "say", "text": say_text(due), "ref": _ref(v)}))
                    v.sent += 1
                k += 1
        return await self._drain(senders, drain) | {"sent": k}

    async def cmd_closed_loop(
        self, inflight: int, start_at: float, seconds: float, drain: float
    ) -> dict[str, Any]:
        """``inflight`` visitors each send their next message once the last one is acked
        (sent again on ``unavailable``)."""
        senders = self._senders()[:inflight]
        end = start_at + seconds
        sent = 0

        def say(v: Party, attempt: int) -> dict[str, Any]:
            nonlocal sent
            sent += 1
            v.sent += 1
            return {"type": "say", "text": say_text(monotonic()), "ref": f"r{v.acked}"}

        async def chat(v: Party) -> None:
            for _ in range(1_000_000):
                if monotonic() >= end or v.closed:
                    return
                if not await self._request(v, functools.partial(say, v), ACK, drain):
                    return

        await asyncio.sleep(max(0.0, start_at - monotonic()))
        await asyncio.gather(*(chat(v) for v in senders))
        return await self._drain(senders, drain) | {"sent": sent}

    async def _drain(self, senders: list[Party], timeout: float) -> dict[str, Any]:
        """Wait until every message sent has an answer (ack or error), or ``timeout``."""
        deadline = monotonic() + timeout
        for _ in range(int(timeout / POLL) + 1):
            if monotonic() > deadline or all(
                v.acked + v.failed >= v.sent or v.closed for v in senders
            ):
                break
            await asyncio.sleep(POLL)
        return {
            "unanswered": sum(max(0, v.sent - v.acked - v.failed) for v in senders if not v.closed)
        }

    async def cmd_collect(self) -> dict[str, Any]:
        """Deliveries recorded since the last collect, and the running fault counts."""
        recv, sent = self.recv_times, self.sent_times
        self.recv_times, self.sent_times = [], []
        return {
            "recv": recv,
            "sent": sent,
            "open": sum(not p.closed for p in self.visitors + self.counsellors),
            "errors": dict(self.errors),
            "retries": dict(self.retries),
            "closes": dict(self.closes),
            "order_faults": self.order_faults,
            "acks_without_seq": self.acks_without_seq,
            "frames": dict(self.frames),
        }

    async def cmd_warmup(self, counsellor: str | None) -> dict[str, Any]:
        """One visitor (hello, leave) and one counsellor socket, so that what a server
        loads on first use is not counted as memory per connection."""
        v = Party(f"Warm{self.index}")
        self._start(v, await self._connect("/ws/visitor"), staff=False)
        hello = {"type": "hello", "nickname": v.name, "lang": "en"}
        if not await self._request(v, lambda _: hello, PLACED, 30, lambda: v.welcomed_at > 0):
            raise RuntimeError("warm-up visitor got no welcome")
        assert v.ws is not None
        await v.ws.send(packb({"type": "leave"}))
        await asyncio.sleep(0.2)
        await v.ws.close()
        if counsellor is not None:
            await self.cmd_counsellors([counsellor], available=False)
            c = self.counsellors.pop()
            assert c.ws is not None
            await c.ws.close()
        return {}

    async def cmd_probe(self) -> dict[str, Any]:
        """What the server negotiates for a client that offers permessage-deflate."""
        ws = await websockets.connect(
            f"ws://{self.host}/ws/visitor", subprotocols=[PROTOCOL], proxy=None
        )
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        subprotocol = ws.subprotocol
        await ws.close()
        return {"deflate_negotiated": bool(extensions), "subprotocol": subprotocol}

    async def close_all(self, timeout: float = 15.0) -> None:
        parties = self.visitors + self.counsellors

        async def close(ws: ClientConnection) -> None:
            await ws.close()

        sockets = [p.ws for p in parties if p.ws is not None]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._bounded([functools.partial(close, ws) for ws in sockets], 256)
        for p in parties:
            if p.reader is not None:
                p.reader.cancel()


def stamp(t: float) -> str:
    n, out = int(t * 1e6), []
    for _ in range(20):
        n, digit = divmod(n, 26)
        out.append(LETTERS[digit])
        if not n:
            break
    return "".join(reversed(out))


def unstamp(code: str) -> float:
    n = 0
    for c in code:
        n = n * 26 + LETTERS.index(c)
    return n / 1e6


def say_text(t: float) -> str:
    return f"{SENTENCE} ~{stamp(t)}"


def _available(attempt: int) -> dict[str, Any]:
    return {"type": "status", "state": "available", "capacity": CAPACITY}


def _ref(v: Party) -> str:
    return f"o{v.sent}"


async def serve(pipe: Pipe, port: int, index: int, procs: int) -> None:
    client = Client(port, index, procs)
    # The client is the instrument: its own collector pauses would count as latency. Each
    # command's survivors (sockets, parties) are frozen out of later collections, and young
    # collections run ten times less often (the server does the same: chatserver.cli.tune_gc).
    gc.set_threshold(7_000, 20, 100)
    try:
        for _ in range(1_000_000):
            try:
                command, kwargs = await asyncio.to_thread(pipe.recv)
            except EOFError:
                break  # the controller is gone
            if command == "exit":
                break
            try:
                result = await getattr(client, f"cmd_{command}")(**kwargs)
            except Exception:
                pipe.send(("error", traceback.format_exc()))
            else:
                pipe.send(("ok", result))
            gc.collect()  # between commands: outside every measured window
            gc.freeze()
    finally:
        await client.close_all()
        with contextlib.suppress(OSError):
            pipe.send(("ok", {}))


def run(pipe: Pipe, port: int, index: int, procs: int) -> None:
    """Entry point of a client process (``multiprocessing``, spawn)."""
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(pipe, port, index, procs))
    else:
        uvloop.run(serve(pipe, port, index, procs))
