"""Calls of one Lua script (``say.lua``) on a connection of their own, pipelined and batched.

Every message a visitor or counsellor sends runs ``say.lua`` (store it, publish it). Through
the client's pool each call pays a pool checkout, a timeout context for the write and one for
the read, a retry wrapper, a write and a read of its own, and waits for its reply before the
connection serves the next. :class:`ScriptBatcher` sends them another way:

* **one dedicated connection**, pipelined: a call is written as soon as it is made, without
  waiting for the replies before it; one reader task takes the replies off in order (Redis
  answers in order) and gives each caller its own — the result, or the error of its own
  call. A message is still stored before its sender hears of it: the reply comes after Redis
  ran the call.
* **batched by turn of the event loop**: the first call of a turn opens a batch and yields
  once (``sleep(0)``) so that the other calls made in that turn (under load, many sockets'
  frames are read in one turn) join it; the batch goes out in one write.
* **timeouts without a timer per call**: a watchdog checks once per ``timeout`` that the
  oldest unanswered call is younger than that; if not, every waiting caller gets a
  :class:`redis.exceptions.TimeoutError` and the connection is dropped (the next call opens
  a new one). A lost connection fails every waiting caller with a ``ConnectionError``, which
  the service answers as ``unavailable``; the client resends by ``ref`` and ``say.lua``
  stores a resent message once.

On a Redis Cluster every call goes through the cluster client on its own (the keys of
different conversations live on different nodes). The connection is made from the client's
pool settings (its URL, password, TLS, database; through Sentinel, the current master).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

MAX_BATCH = 512
"""Most calls in one write; a longer turn opens another batch."""
DRAIN_ABOVE = 256 * 1024
"""Bytes waiting in the connection's send buffer above which a batch waits to flush."""

_Call = tuple[list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """``await batcher(keys, args)``: the script's reply, as ``await script(keys, args)``."""

    def __init__(self, client: aioredis.Redis, script: AsyncScript, timeout: float = 5.0) -> None:
        self.client = client
        self.script = script
        self.timeout = timeout
        self.pipelined = not isinstance(client, RedisCluster)
        self._open: list[_Call] | None = None
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()
        #: Calls written and not answered yet, oldest first: (future, when written).
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Future[None]] = set()
        self.closed = False
        #: Calls made, and writes (batches) they went out in (benchmarks and tests read).
        self.calls = 0
        self.batches = 0

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        self.calls += 1
        if not self.pipelined:
            return await self.script(keys=keys, args=args, client=self.client)
        try:
            return await self._call(keys, args)
        except NoScriptError:  # Redis restarted or lost its scripts: load, then once more
            await self.client.script_load(self.script.script)
            return await self._call(keys, args)

    async def _call(self, keys: list[Any], args: list[Any]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        batch = self._open
        if batch is not None and len(batch) < MAX_BATCH:
            batch.append((keys, args, future))
            return await future
        batch = self._open = [(keys, args, future)]
        try:
            await asyncio.sleep(0)  # the other calls of this turn join
        except asyncio.CancelledError:
            if self._open is batch:
                self._open = None
            if len(batch) > 1:  # the others are still sent
                task = asyncio.ensure_future(self._send(batch[1:]))
                self._sending.add(task)  # held until done (the loop keeps weak references)
                task.add_done_callback(self._sending.discard)
            raise
        if self._open is batch:
            self._open = None
        await self._send(batch)
        return await future

    async def _send(self, batch: list[_Call]) -> None:
        """Write a batch; a failure to connect or write fails its callers."""
        try:
            conn = await self._connection()
            head = b"$7\r\nEVALSHA\r\n" + _bulk(self.script.sha)
            packed = [evalsha(head, keys, args) for keys, args, _future in batch]
            if not conn.is_connected:  # dropped while we packed
                raise RedisConnectionError("the say connection was lost")
            now = time.monotonic()
            # No await between the write and the queueing of its futures: replies match.
            writer = conn._writer
            assert writer is not None
            writer.writelines(packed)
            for _keys, _args, future in batch:
                self._waiting.append((future, now))
            self.batches += 1
            self._arm()
            if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
                await writer.drain()
        except (RedisError, OSError) as exc:
            for _keys, _args, future in batch:
                if not future.done():
                    future.set_exception(_as_redis_error(exc))

    async def _connection(self) -> AbstractConnection:
        conn = self._conn
        if conn is not None and conn.is_connected and self._reader is not None:
            return conn
        async with self._connecting:
            if self.closed:
                raise RedisConnectionError("the store is closed")
            conn = self._conn
            if conn is None or not conn.is_connected or self._reader is None:
                pool: Any = self.client.connection_pool
                conn = pool.connection_class(**pool.connection_kwargs)
                await conn.connect()  # with the pool's timeouts
                await conn.send_command("SCRIPT", "LOAD", self.script.script)
                await conn.read_response()  # loaded before the first call needs it
                conn.socket_timeout = None  # from here on the watchdog times the calls
                self._conn = conn
                self._reader = asyncio.create_task(self._read(conn), name="say-replies")
            return conn

    async def _read(self, conn: AbstractConnection) -> None:
        """Hand out the replies in order until the connection fails or closes."""
        waiting = self._waiting
        try:
            while True:
                try:
                    reply = await conn.read_response(disconnect_on_error=False)
                except ResponseError as error:  # that call's own error; the stream goes on
                    reply = error
                if not waiting:
                    raise RedisConnectionError("a reply nobody asked for")
                future, _sent = waiting.popleft()
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except asyncio.CancelledError:
            self._lost(RedisConnectionError("the store is closing"))
            raise
        except (RedisError, OSError) as exc:
            self._lost(_as_redis_error(exc))
        finally:
            if self._conn is conn:
                self._conn = None
                self._reader = None
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    def _lost(self, error: RedisError) -> None:
        """Every call still waiting fails with ``error``."""
        while self._waiting:
            future, _sent = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def _arm(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout, self._check)

    def _check(self) -> None:
        """The oldest call waits longer than ``timeout``: give up on the connection."""
        self._watchdog = None
        if not self._waiting:
            return
        if time.monotonic() - self._waiting[0][1] >= self.timeout:
            self._lost(RedisTimeoutError("Redis did not answer in time"))
            if self._reader is not None:
                self._reader.cancel()
            return
        self._arm()

    async def aclose(self) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        reader = self._reader
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def _bulk(value: str | bytes | int) -> bytes:
    """One RESP bulk string: str as UTF-8 (strict, as redis-py's encoder), int in decimal."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode()
    elif isinstance(value, int) and not isinstance(value, bool):
        data = b"%d" % value
    else:
        raise TypeError(f"say.lua takes str, bytes or int, not {type(value).__name__}")
    return b"$%d\r\n%s\r\n" % (len(data), data)


def evalsha(head: bytes, keys: list[Any], args: list[Any]) -> bytes:
    """``EVALSHA sha numkeys *keys *args`` as RESP (``head``: the command and sha, packed
    once per batch); the bytes redis-py's ``pack_command`` joins for it, without its
    generic encoder (the tests compare the two)."""
    parts = [_bulk(len(keys)), *map(_bulk, keys), *map(_bulk, args)]
    return b"*%d\r\n%s%s" % (len(parts) + 2, head, b"".join(parts))


def _as_redis_error(exc: BaseException) -> RedisError:
    if isinstance(exc, RedisError):
        return exc
    return RedisConnectionError(f"{type(exc).__name__}: {exc}")
