"""One client socket: a bounded outgoing queue, at most one writer at a time, and
per-conversation ``seq`` bookkeeping so that every party gets each message once, in order.

Exactly one task reads a socket (the handler); frames are written in the order they were
sent. An idle socket holds no queue and no task: a frame sent while nothing is waiting and
the transport takes data is written there and then (without compression aiohttp writes a
frame synchronously); otherwise it waits in a deque that a writer task empties, and the
task ends with it. A broadcast never waits for a slow client: a reader that lets
``send_queue_max`` frames pile up is dropped (close 1013, try again later: it reconnects and
resumes), not the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Coroutine, Iterator
from typing import Any, Protocol

import structlog
from aiohttp import web

from chatserver.codec import Outgoing, Subprotocol
from chatserver.errors import CloseCode
from chatserver.events import StoredMessage
from chatserver.store import new_id

log = structlog.get_logger("chatserver.connection")

#: A close to make once what was queued before it is written: (code, reason).
_Close = tuple[int, str]


class WritePausable(Protocol):
    """What a connection asks of the transport's protocol (aiohttp's ``request.protocol``)."""

    @property
    def writing_paused(self) -> bool: ...


async def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Run to its end a coroutine stepped by hand that suspended on ``waiting`` (a future,
    or None for a bare yield), as a task would."""
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait((waiting,))
            try:
                waiting = coro.send(None)
            except StopIteration:
                return
    finally:
        coro.close()


class Connection:
    __slots__ = (
        "_buffers",
        "_own",
        "_pending",
        "_queue_max",
        "_transport",
        "_writer",
        "closing",
        "id",
        "protocol",
        "seqs",
        "session",
        "staff_id",
        "supervises",
        "watching",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        protocol: Subprotocol,
        queue_max: int,
        node_id: str = "local",
        transport: WritePausable | None = None,
    ) -> None:
        self.id = f"{node_id}.{new_id()}"
        self.ws = ws
        self.protocol = protocol
        self._queue_max = queue_max
        #: What ``transport`` says about flow control; without it every frame goes through
        #: the writer task.
        self._transport = transport
        #: Frames (and at most one close) waiting for the writer; None while nothing waits.
        self._pending: deque[Outgoing | _Close] | None = None
        #: The one task writing (or closing) this socket, while there is one.
        self._writer: asyncio.Task[None] | None = None
        #: Highest seq this connection has been given, per conversation.
        self.seqs: dict[str, int] = {}
        self._buffers: dict[str, list[StoredMessage]] = {}
        #: Seqs this socket stored itself (it got an ack): never echoed back as a message.
        self._own: dict[str, set[int]] = {}
        self.closing = False
        #: Set on staff sockets: who is on the other end, and whether they supervise.
        self.staff_id: str | None = None
        self.supervises = False
        #: Conversations this socket watches as a supervisor (start/stop_watching keep it):
        #: not the ones it holds, which it follows too.
        self.watching: set[str] = set()
        #: Hash of the staff session this socket was opened with (logout closes it).
        self.session: str | None = None

    # -- sending ------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Frames waiting for the writer (0 while frames are written as they are sent)."""
        return len(self._pending) if self._pending is not None else 0

    def send(self, frame: dict[str, Any] | Outgoing) -> None:
        if self.closing:
            return
        item = frame if isinstance(frame, Outgoing) else Outgoing(frame)
        pending = self._pending
        if pending is None:
            if self._writer is None and self._writable():
                self._write_now(item)
                return
            pending = self._pending = deque()
        elif len(pending) >= self._queue_max:
            log.warning("slow_reader_dropped", conn=self.id)
            self.close(CloseCode.TRY_AGAIN, "too slow")
            return
        pending.append(item)
        if self._writer is None:
            self._start(self._write_loop())

    def close(self, code: int, reason: str = "") -> None:
        """Close after what is already queued has been written (a reader too slow to take
        ``queue_max`` frames is not waited for)."""
        if self.closing:
            return
        self.closing = True
        pending = self._pending
        if pending is not None and len(pending) >= self._queue_max:
            pending.clear()
            if self._writer is not None:
                self._writer.cancel()
                self._writer = None
            self._start(self._close_now(code, reason))
            return
        if pending is None:
            pending = self._pending = deque()
        pending.append((code, reason))
        if self._writer is None:
            self._start(self._write_loop())

    def _writable(self) -> bool:
        """Whether a frame can be written without waiting: no compression (which may take
        a lock or an executor) and a transport that is not asking us to pause."""
        transport = self._transport
        return transport is not None and not transport.writing_paused and not self.ws.compress

    def _write_now(self, item: Outgoing) -> None:
        data = item.encoded(self.protocol)
        coro = self.ws.send_bytes(data) if isinstance(data, bytes) else self.ws.send_str(data)
        try:
            waiting = coro.send(None)
        except StopIteration:
            return  # written
        except (ConnectionError, RuntimeError):
            self._lost()
            return
        # Not expected while the transport takes data; if it happens (the transport paused
        # just then), a task finishes the send and whatever is sent meanwhile waits behind it.
        self._start(self._write_loop(coro, waiting))

    def _lost(self) -> None:
        """The transport is gone: stop sending, and close our side."""
        self.closing = True
        if self._pending is not None:
            self._pending.clear()
        if self._writer is None:
            self._start(self._close_now(CloseCode.NORMAL, ""))

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        self._writer = asyncio.get_running_loop().create_task(coro)

    def _done(self) -> None:
        """Called by the writer as it ends: the next frame is written directly again."""
        if self._writer is asyncio.current_task():
            self._writer = None
            if not self._pending:
                self._pending = None

    async def _write_loop(
        self, started: Coroutine[Any, Any, None] | None = None, waiting: Any = None
    ) -> None:
        try:
            if started is not None:
                await _resume(started, waiting)
            while pending := self._pending:
                item = pending.popleft()
                if isinstance(item, tuple):
                    pending.clear()
                    await self.ws.close(code=item[0], message=item[1].encode())
                    return
                data = item.encoded(self.protocol)
                if isinstance(data, bytes):
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(data)
        except (ConnectionError, RuntimeError):
            self.closing = True
            if self._pending is not None:
                self._pending.clear()
            await self.ws.close()
        finally:
            self._done()

    async def _close_now(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code=code, message=reason.encode())
        finally:
            self._done()

    async def finish(self, timeout: float = 2.0) -> None:
        """Once the handler is done: write what is queued, close, stop the writer."""
        if not self.closing:
            self.close(CloseCode.NORMAL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (writer := self._writer) is not None and not writer.done():
                    await asyncio.wait((writer,))
        writer = self._writer
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    # -- ordered delivery ---------------------------------------------------------------
    @contextlib.contextmanager
    def syncing(self, conversation_id: str) -> Iterator[None]:
        """While history is sent from the store, live messages wait in a buffer."""
        self._buffers.setdefault(conversation_id, [])
        try:
            yield
        finally:
            buffered = self._buffers.pop(conversation_id, [])
            for message in buffered:
                self.deliver(conversation_id, message, None)

    def stored_own(self, conversation_id: str, seq: int) -> None:
        """This socket's own message got ``seq``: it gets the ack, not the message."""
        if seq > self.seqs.get(conversation_id, 0):
            self._own.setdefault(conversation_id, set()).add(seq)

    def send_history(self, conversation_id: str, messages: list[StoredMessage]) -> None:
        for message in messages:
            self.deliver(conversation_id, message, None)

    def deliver(
        self,
        conversation_id: str,
        message: StoredMessage,
        out: Outgoing | None,
        *,
        own: bool = False,
    ) -> bool:
        """Send one message if it is the next one; False when there is a gap to fill.

        ``own`` (or a seq this socket was acked for) advances the count without sending:
        the sender of a ``say`` gets the ``ack``, every other party the ``message``.
        """
        buffer = self._buffers.get(conversation_id)
        if buffer is not None:
            buffer.append(message)
            return True
        last = self.seqs.get(conversation_id, 0)
        if message.seq <= last:
            return True
        if message.seq > last + 1:
            return False
        self.seqs[conversation_id] = message.seq
        mine = self._own.get(conversation_id)
        if mine:
            if message.seq in mine:
                own = True
                mine.discard(message.seq)
            if mine:
                # What is left is this socket's says still in flight (a handful at most) and
                # seqs stranded behind a jump of ``seqs`` (a resync): drop the passed ones.
                mine.difference_update([s for s in mine if s <= message.seq])
            if not mine:
                del self._own[conversation_id]
        if not own:
            self.send(out or Outgoing(message.frame(conversation_id)))
        return True
