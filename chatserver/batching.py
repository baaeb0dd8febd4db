"""Calls of one Lua script made in the same turn of the event loop, sent to Redis together.

Under load many sockets' frames are read in one turn of the loop, and each handler then runs
the same script (``say.lua``: store one message and publish it). Awaited one by one, every
call costs a pool checkout, a timeout, a write and a read of its own, in the client and in
Redis. :class:`ScriptBatcher` gathers the calls of one turn instead: the first caller opens a
batch, yields once (``sleep(0)``) so that the others in that turn join it, and sends it as one
non-transactional pipeline of ``EVALSHA``s (one write and one read). Each caller gets its
own reply or its own error. On a Redis Cluster every call is sent on its own, as before:
redis-py refuses ``EVALSHA`` in a cluster pipeline.

What does not change: every call is still its own script run (atomic on its own, and on a
cluster in its own slot); a caller's reply still comes only after Redis ran its call, so a
message is stored before its ack. Calls in one batch run in the order they were made; two
batches may be in flight at once (each on its own pool connection), like two plain calls.
A batch of one is sent as a plain call (no pipeline), so a quiet service pays one extra loop
turn per call and nothing else.

A caller cancelled while its batch is in flight (its socket closed) does not cancel the
others: a batch of more than one call is sent by a task of its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

MAX_BATCH = 512
"""Most calls in one pipeline; a longer turn opens another batch."""

_Call = tuple[list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """``await batcher(keys, args)``: the script's reply, as ``await script(keys, args)``."""

    def __init__(self, client: aioredis.Redis, script: AsyncScript) -> None:
        self.client = client
        self.script = script
        self._open: list[_Call] | None = None
        self.pipelined = not isinstance(client, RedisCluster)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Calls sent and pipelines used (benchmarks read the mean batch size).
        self.calls = 0
        self.pipelines = 0

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        if not self.pipelined:
            self.calls += 1
            return await self.script(keys=keys, args=args, client=self.client)
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
            if len(batch) > 1:
                self._spawn(batch[1:])  # the others are still sent
            raise
        if self._open is batch:
            self._open = None
        if len(batch) == 1:
            self.calls += 1
            return await self.script(keys=keys, args=args, client=self.client)
        self._spawn(batch)
        return await future

    def _spawn(self, batch: list[_Call]) -> None:
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Call]) -> None:
        self.calls += len(batch)
        try:
            replies = await self._pipeline(batch)
            missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if missing:  # Redis restarted or was flushed: load once, run those again
                await self.client.script_load(self.script.script)
                again = await self._pipeline([batch[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except asyncio.CancelledError:  # shutting down: the callers hear of an outage
            self._fail(batch, RedisConnectionError("the batch was cancelled"))
            raise
        except Exception as exc:  # the pipeline failed as a whole: every caller hears
            self._fail(batch, exc)
            return
        for (_keys, _args, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    @staticmethod
    def _fail(batch: list[_Call], exc: Exception) -> None:
        for _keys, _args, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        self.pipelines += 1
        pipe = self.client.pipeline(transaction=False)
        sha = self.script.sha
        for keys, args, _future in batch:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
