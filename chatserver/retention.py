"""Retention: message text and nicknames are deleted ``transcripts_days`` after a
conversation ends; the anonymous facts stay (``statistics_days``).

One background job in every process, but each interval's work is done once: a Redis lock
(``SET NX PX``) picks one process, and a cursor (the end time purged up to) means nothing is
done twice and nothing is missed, even across restarts. ``chatserver purge`` runs it now;
a visitor's ``forget`` deletes their own conversation at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import cast

import structlog
from redis.exceptions import RedisError

from chatserver.store import Store

log = structlog.get_logger("chatserver.retention")
DAY = 86400.0


async def forget_conversation(store: Store, conversation_id: str) -> None:
    """Delete a conversation's text, whispers, comments and nickname; keep its anonymous fact."""
    k = store.keys
    await store.rb.delete(
        k.messages(conversation_id),
        k.refs(conversation_id),
        k.whispers(conversation_id),
        k.comments(conversation_id),
    )
    await store.r.delete(
        k.conversation(conversation_id),
        k.watchers(conversation_id),
        k.participants(conversation_id),
    )


async def purge(store: Store, now: float, transcripts_days: float) -> int:
    """Delete everything due; returns how many conversations were purged."""
    k = store.keys
    cutoff = now - transcripts_days * DAY
    start = float(cast(str | None, await store.r.get(k.retention_cursor)) or "-inf")
    due = cast(list[str], await store.r.zrangebyscore(k.facts, f"({start}", cutoff))
    for conv in due:
        await forget_conversation(store, conv)
    await store.r.set(k.retention_cursor, repr(cutoff))
    if due:
        log.info("purged", conversations=len(due))
    return len(due)


async def retention_loop(
    store: Store, transcripts_days: float, clock: Callable[[], float], interval: float = 3600.0
) -> None:
    """Once per interval across all processes: whoever takes the lock does the work."""
    me = secrets.token_hex(8)
    while True:
        with contextlib.suppress(RedisError):
            if await store.r.set(store.keys.retention_lock, me, nx=True, px=int(interval * 1000)):
                await purge(store, clock(), transcripts_days)
        await asyncio.sleep(interval)
