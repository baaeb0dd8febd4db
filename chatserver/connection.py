"""One client socket: a bounded outgoing queue with one writer task, and per-conversation
``seq`` bookkeeping so that every party gets each message once, in order.

Exactly one task reads a socket (the handler); exactly one writes it (the writer here).
A broadcast never waits for a slow client: a reader that lets ``send_queue_max`` frames
pile up is dropped (close 1013, try again later: it reconnects and resumes), not the
server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import structlog
from aiohttp import web

from chatserver.codec import Outgoing, Subprotocol
from chatserver.errors import CloseCode
from chatserver.events import StoredMessage
from chatserver.store import new_id

log = structlog.get_logger("chatserver.connection")


class Connection:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        protocol: Subprotocol,
        queue_max: int,
        node_id: str = "local",
    ) -> None:
        self.id = f"{node_id}.{new_id()}"
        self.ws = ws
        self.protocol = protocol
        self._queue: asyncio.Queue[Outgoing | tuple[int, str]] = asyncio.Queue(queue_max)
        self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.id}")
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
        self._closer: asyncio.Future[bool] | None = None

    # -- sending ------------------------------------------------------------------
    def send(self, frame: dict[str, Any] | Outgoing) -> None:
        if self.closing:
            return
        item = frame if isinstance(frame, Outgoing) else Outgoing(frame)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("slow_reader_dropped", conn=self.id)
            self.close(CloseCode.TRY_AGAIN, "too slow")

    def close(self, code: int, reason: str = "") -> None:
        """Close after what is already queued has been written."""
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait((code, reason))
        if self._queue.full():
            self._writer.cancel()
            self._closer = asyncio.ensure_future(self.ws.close(code=code, message=reason.encode()))

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, tuple):
                    await self.ws.close(code=item[0], message=item[1].encode())
                    return
                data = item.encoded(self.protocol)
                if isinstance(data, bytes):
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(data)
        except (ConnectionError, RuntimeError):
            self.closing = True
            await self.ws.close()

    async def finish(self, timeout: float = 2.0) -> None:
        """Once the handler is done: write what is queued, close, stop the writer."""
        if not self.closing:
            self.close(CloseCode.NORMAL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._writer)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

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
