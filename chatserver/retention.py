"""Retention: message text and nicknames are deleted ``transcripts_days`` after a
conversation ends; the anonymous facts stay (``statistics_days``).

One background job in every process, but each interval's work is done once: time is cut
into slots of ``purge_interval_seconds`` (wall clock, shared by all machines), and a
compare-and-set on the last slot taken (a Lua script) lets exactly one process run each
slot. A cursor (the end time purged up to, only ever raised) means a slot that nobody ran
leaves no work behind: the next run does it. The purge itself is idempotent and safe to run
at the same time as another (``chatserver purge`` runs it now, beside the job): deleting
twice is harmless, and a conversation counts as purged only for the run that deleted it.
A visitor's ``forget`` deletes their own conversation at once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import cast

import structlog
from redis.exceptions import RedisError

from chatserver.config import RetentionSettings
from chatserver.store import Store

log = structlog.get_logger("chatserver.retention")
DAY = 86400.0

#: KEYS[1] cursor. ARGV[1] new cutoff. Raise the cursor, never lower it.
RAISE_CURSOR = """
local current = redis.call('GET', KEYS[1])
if current == false or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""

#: KEYS[1] last slot taken, KEYS[2] run log, KEYS[3] counters. ARGV[1] slot, ARGV[2] node.
TAKE_SLOT = """
local last = redis.call('GET', KEYS[1])
if last ~= false and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[1] .. ':' .. ARGV[2])
redis.call('LTRIM', KEYS[2], 0, 99)
redis.call('HINCRBY', KEYS[3], 'purge_runs', 1)
return 1
"""


async def forget_conversation(store: Store, conversation_id: str) -> bool:
    """Delete a conversation's text, whispers, comments and nickname; keep its anonymous
    fact. True when this call deleted the conversation (False: it was gone already)."""
    k = store.keys
    deleted = bool(await store.r.delete(k.conversation(conversation_id)))
    await store.rb.delete(
        k.messages(conversation_id),
        k.refs(conversation_id),
        k.whispers(conversation_id),
        k.comments(conversation_id),
    )
    await store.r.delete(k.watchers(conversation_id), k.participants(conversation_id))
    return deleted


async def purge(
    store: Store, now: float, transcripts_days: float, statistics_days: float | None = None
) -> int:
    """Delete everything due; returns how many conversations this run purged. With
    ``statistics_days`` the facts index also drops entries older than that (never one whose
    text is not purged yet)."""
    k = store.keys
    cutoff = now - transcripts_days * DAY
    start = cast(str | None, await store.r.get(k.retention_cursor))
    low = f"({start}" if start is not None else "-inf"
    due = cast(list[str], await store.r.zrangebyscore(k.facts, low, cutoff))
    purged = 0
    for conv in due:
        purged += await forget_conversation(store, conv)
    await store.script("raise_cursor", RAISE_CURSOR)(keys=[k.retention_cursor], args=[repr(cutoff)])
    if statistics_days is not None:
        await store.trim_facts(min(cutoff, now - statistics_days * DAY))
    if purged:
        await store.count("purged_conversations", purged)
        log.info("purged", conversations=purged)
    return purged


async def take_slot(store: Store, slot: int, node: str) -> bool:
    """True for exactly one caller per slot (and never for a slot older than one taken)."""
    k = store.keys
    take = store.script("take_slot", TAKE_SLOT)
    return bool(await take(keys=[k.retention_lock, k.retention_log, k.counters], args=[slot, node]))


async def retention_loop(
    store: Store,
    settings: RetentionSettings,
    clock: Callable[[], float],
    wall: Callable[[], float] = time.time,
) -> None:
    """At each slot boundary every process tries; the one that takes the slot purges.

    ``clock`` is the service clock (what "now" is for retention); ``wall`` cuts the slots.
    """
    interval = max(0.05, settings.purge_interval_seconds)
    me = secrets.token_hex(8)
    while True:
        now = wall()
        target = int(now // interval) + 1
        await asyncio.sleep(target * interval - now)
        slot = max(target, int(wall() // interval))  # a timer may fire a hair early
        try:
            if await take_slot(store, slot, me):
                await purge(store, clock(), settings.transcripts_days, settings.statistics_days)
        except RedisError as exc:
            log.warning("purge_failed", error=type(exc).__name__)
        except Exception:
            log.exception("purge_crashed")
