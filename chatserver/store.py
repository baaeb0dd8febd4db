"""The one store interface over Redis. Multi-step changes are Lua scripts (atomic).

Hashes come back as ``dict[str, str]`` (the client decodes responses); message entries
are msgpack bytes read through a second, binary client on the same pool settings.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

import msgpack
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from chatserver.batching import ScriptBatcher
from chatserver.events import StoredMessage, event, pack_entry, unpack_entry
from chatserver.keys import Keys
from chatserver.stats import safe_entry
from queueing.policy import PRIORITY_WEIGHT, CounsellorSlot, WaitingVisitor

SCRIPTS = ("say", "hello", "claim", "end", "status", "release", "reassign", "requeue", "prioritise")


def _script(name: str) -> str:
    return (resources.files("chatserver") / "lua" / f"{name}.lua").read_text("utf-8")


#: KEYS[1] heartbeat zset, KEYS[2] the node's registry, KEYS[3] the addresses it counts,
#: KEYS[4..] their count hashes. ARGV[1] node, ARGV[2] heartbeat cutoff. Only while its last
#: heartbeat is still older than the cutoff: remove the node, drop its connection counts and
#: return its registry (atomically, so a node that beats again at that moment keeps all).
TAKE_NODE = """
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not beat or tonumber(beat) > tonumber(ARGV[2]) then return {} end
redis.call('ZREM', KEYS[1], ARGV[1])
local entries = redis.call('SMEMBERS', KEYS[2])
for i = 4, #KEYS do redis.call('HDEL', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[2], KEYS[3])
return entries
"""


#: KEYS[1] conversation hash, KEYS[2] visitor presence, KEYS[3] the node's registry,
#: KEYS[4] grace zset, KEYS[5] the nickname's pending-hello key. ARGV[1] conversation,
#: ARGV[2] connection. Registry entry and presence first, then the hello's grace deadline
#: goes (a failing write stops the script before it): a conversation never has neither.
#: Nothing when it has ended (0).
ATTACH_VISITOR = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'ended' then return 0 end
redis.call('SADD', KEYS[3], 'v|' .. ARGV[1] .. '|' .. ARGV[2])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[4], 'v:' .. ARGV[1])
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
return 1
"""


def new_id() -> str:
    return uuid.uuid4().hex[:16]


#: Why reassign.lua refused a transfer to a colleague (its negative return codes).
REASSIGN_REFUSALS = {
    -1: "that colleague is not available or paused",
    -2: "that colleague has no free place (at capacity)",
    -3: "that colleague is in wrap-up time",
    -4: "that colleague is a trainee and no supervisor watches them",
    -5: "a trainee never takes a crisis conversation",
}


#: Upper bounds (seconds) of the ``chat_wait_seconds`` histogram buckets.
WAIT_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


#: Open sockets per hashed address are counted per process: a hash ``conns:ADDR`` with one
#: field per node id, and a set ``node-addrs:NODE`` of the addresses a node counts. When a
#: dead node is taken (:data:`TAKE_NODE`) its fields go, so a crash leaks nothing however
#: busy the address stays. The TTL is only a backstop (set when the hash is made, never
#: refreshed): a lost count only ever makes the limit looser.
CONNECTION_COUNT_TTL = 86400

#: KEYS[1] conns:ADDR, KEYS[2] node-addrs:NODE. ARGV[1] node, ARGV[2] limit, ARGV[3] ttl,
#: ARGV[4] address hash. Counts one more socket of this node unless the sum is at the limit.
_CONN_ACQUIRE = """
local total = 0
for _, n in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(n) end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""
#: Same keys; ARGV[1] node, ARGV[2] address hash. One socket of this node fewer.
_CONN_RELEASE = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
return n
"""
#: Same keys; ARGV[1] node, ARGV[2] count, ARGV[3] ttl, ARGV[4] address hash. Set this
#: node's count to what it holds (after a false reap, or a Redis error mid-count).
_CONN_SYNC = """
if tonumber(ARGV[2]) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[4])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""
#: KEYS[1] a conversation; ARGV[1] when, ARGV[2] categories. 1 for the first crisis signal
#: of a conversation that exists (it records when and why), else 0.
_CRISIS_ALERT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'crisis_ts', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'crisis_categories', ARGV[2])
return 1
"""
#: KEYS[1] a conversation; ARGV field, value pairs, set only while it exists (1), else 0.
_UPDATE_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


#: Fields of a fact the conversation may hold before the fact is kept (a survey sent, a
#: wrap-up filed while the fact was being written): :meth:`Store.record_fact` copies them.
FACT_FROM_CONVERSATION = ("survey_rating", "survey_understood", "wrapup_topics")

#: KEYS[1] facts index, KEYS[2] the fact, KEYS[3] wait histogram, KEYS[4] the conversation.
#: ARGV[1] conversation id, ARGV[2] ended, ARGV[3] ttl, ARGV[4] wait ('' when not helped),
#: ARGV[5] n bucket bounds, then the bounds, then m field names to copy from the
#: conversation, those names, then the fact's field/value pairs. The index entry (the
#: "kept" marker) comes last: a script that fails half-way leaves no marker, and a retry
#: writes it all again.
_RECORD_FACT = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local n = tonumber(ARGV[5])
local m = tonumber(ARGV[6 + n])
local first = 7 + n + m
redis.call('HSET', KEYS[2], unpack(ARGV, first, #ARGV))
for i = 7 + n, 6 + n + m do
  local v = redis.call('HGET', KEYS[4], ARGV[i])
  if v and v ~= '' then redis.call('HSET', KEYS[2], ARGV[i], v) end
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then
  local waited = tonumber(ARGV[4])
  for i = 6, 5 + n do
    if waited <= tonumber(ARGV[i]) then redis.call('HINCRBY', KEYS[3], ARGV[i], 1) end
  end
  redis.call('HINCRBY', KEYS[3], 'count', 1)
  redis.call('HINCRBYFLOAT', KEYS[3], 'sum', ARGV[4])
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

#: KEYS[1] the fact; ARGV field/value pairs. Only a kept fact is added to (never one
#: without its expiry).
_UPDATE_FACT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


#: KEYS[1] conversation hash; ARGV flags. Adds each flag once to its comma list
#: (only while the conversation exists); returns how many were new.
ADD_FLAGS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = redis.call('HGET', KEYS[1], 'flags') or ''
local have, added = {}, 0
for f in string.gmatch(current, '[^,]+') do have[f] = true end
for i = 1, #ARGV do
  if not have[ARGV[i]] then
    have[ARGV[i]] = true
    current = current == '' and ARGV[i] or (current .. ',' .. ARGV[i])
    added = added + 1
  end
end
if added > 0 then redis.call('HSET', KEYS[1], 'flags', current) end
return added
"""


@dataclass(frozen=True, slots=True)
class SayResult:
    seq: int
    duplicate: bool


class Store:
    """Queue, conversations, messages, counsellors, accounts and sessions in Redis."""

    def __init__(self, text: aioredis.Redis, binary: aioredis.Redis, keys: Keys) -> None:
        self.r = text
        self.rb = binary
        #: Client to subscribe with (on a cluster: a plain client to one node).
        self.subscriber = binary
        self.keys = keys
        self._scripts: dict[str, AsyncScript] = {
            name: binary.register_script(_script(name)) for name in SCRIPTS
        }
        #: Inline scripts, run through the text client (EVALSHA, loaded on first use).
        self._inline: dict[str, AsyncScript] = {}
        #: ``say.lua`` calls of one loop turn go to Redis as one pipeline.
        self.says = ScriptBatcher(binary, self._scripts["say"])
        #: Pipelines of scripts (``claim_all``) only off a cluster, as ``says``.
        self.pipelined = self.says.pipelined
        #: Sockets this process counts per hashed address (to count them again when a
        #: false reap dropped the counts in Redis).
        self.held_connections: Counter[str] = Counter()
        #: Addresses whose count a Redis error left unsure (set again on the next beat).
        self.unsynced_connections: set[str] = set()
        #: Messages stored by this process not yet added to the shared ``messages``
        #: counter: :meth:`say` counts here (the counter lives in the global slot, the
        #: messages in their conversation's, so one script cannot do both on a cluster);
        #: :meth:`flush_counts` adds them, on every heartbeat and before /metrics reads.
        self.unflushed_messages = 0

    async def ping(self) -> bool:
        return bool(await self.r.ping())

    async def publish(self, payload: bytes) -> None:
        await self.rb.publish(self.keys.channel, payload)

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)

    def script(self, name: str, source: str) -> AsyncScript:
        """An inline script, registered once per store (decoded replies; works on a
        cluster like the ``lua/`` ones: every key it touches is passed in KEYS)."""
        found = self._inline.get(name)
        if found is None:
            found = self._inline[name] = self.r.register_script(source)
        return found

    # -- accounts and sessions --------------------------------------------------------
    async def create_account(self, fields: dict[str, str]) -> bool:
        key = self.keys.account(fields["username"])
        if not await self.r.hsetnx(key, "id", fields["id"]):
            return False
        await self.r.hset(key, mapping=cast(Any, fields))
        await self.r.hset(self.keys.staff_index, fields["id"], fields["username"])
        return True

    async def update_account(self, username: str, fields: dict[str, str]) -> None:
        await self.r.hset(self.keys.account(username), mapping=cast(Any, fields))

    async def account(self, username: str) -> dict[str, str] | None:
        data = cast(dict[str, str], await self.r.hgetall(self.keys.account(username)))
        return data or None

    async def account_by_id(self, staff_id: str) -> dict[str, str] | None:
        username = cast(str | None, await self.r.hget(self.keys.staff_index, staff_id))
        return await self.account(username) if username else None

    async def all_accounts(self) -> list[dict[str, str]]:
        names = cast(dict[str, str], await self.r.hgetall(self.keys.staff_index))
        pipe = self.r.pipeline(transaction=False)
        for name in names.values():
            pipe.hgetall(self.keys.account(name))
        return [a for a in (await pipe.execute() if names else []) if a]

    async def change_account(
        self, staff_id: str, fields: dict[str, str], *, revoke_sessions: bool
    ) -> dict[str, str] | None:
        """Set fields of an existing account (never makes one) and, with
        ``revoke_sessions``, raise its ``session_gen`` in the same transaction: every
        session made before is dead. The account as it is now, or None if there is none."""
        username = cast(str | None, await self.r.hget(self.keys.staff_index, staff_id))
        key = self.keys.account(username) if username else None
        if key is None or not await self.r.exists(key):
            return None
        pipe = self.r.pipeline(transaction=True)
        if fields:
            pipe.hset(key, mapping=cast(Any, fields))
        if revoke_sessions:
            pipe.hincrby(key, "session_gen", 1)
        pipe.hgetall(key)
        return cast(dict[str, str], (await pipe.execute())[-1])

    async def refresh_staff_state(self, staff_id: str, fields: dict[str, str]) -> None:
        """Copy changed account fields (``name``, ``skills``, ``trainee``) into the live
        staff state, if the member has one, so the next assignment uses them."""
        key = self.keys.staff_state(staff_id)
        if fields and await self.r.exists(key):
            await self.r.hset(key, mapping=cast(Any, fields))

    async def create_session(
        self, token_hash: str, staff_id: str, idle_seconds: int, now: float, generation: str = "0"
    ) -> None:
        """``generation``: the account's ``session_gen`` when the login read it."""
        key = self.keys.session(token_hash)
        await self.r.hset(
            key, mapping={"staff_id": staff_id, "created": now, "seen": now, "gen": generation}
        )
        await self.r.expire(key, idle_seconds)

    async def touch_session(
        self, token_hash: str, idle_seconds: int, absolute_seconds: float, now: float
    ) -> tuple[str, str] | None:
        """The session's staff id and generation, refreshing its idle timeout; None when
        gone or too old."""
        found = await self.session_staff(token_hash, absolute_seconds, now)
        if found is not None:
            key = self.keys.session(token_hash)
            await self.r.hset(key, "seen", now)
            await self.r.expire(key, idle_seconds)
        return found

    async def session_staff(
        self, token_hash: str, absolute_seconds: float, now: float
    ) -> tuple[str, str] | None:
        """The session's staff id and generation without refreshing it; None when gone or
        too old."""
        key = self.keys.session(token_hash)
        data = cast(dict[str, str], await self.r.hgetall(key))
        if not data:
            return None
        if now - float(data["created"]) > absolute_seconds:
            await self.r.delete(key)
            return None
        return data["staff_id"], data.get("gen", "0")

    async def delete_session(self, token_hash: str) -> None:
        await self.r.delete(self.keys.session(token_hash))

    # -- open sockets per hashed address (across every process) ----------------------
    async def acquire_connection(self, address_hash: str, limit: int, node_id: str) -> bool:
        """Count one more open socket of ``node_id`` for this address; False (nothing
        counted) when the sockets of every process from it reach the limit."""
        k = self.keys
        try:
            admitted = await self.script("conn_acquire", _CONN_ACQUIRE)(
                keys=[k.connections(address_hash), k.node_addresses(node_id)],
                args=[node_id, limit, CONNECTION_COUNT_TTL, address_hash],
            )
        except BaseException:
            self.unsynced_connections.add(address_hash)  # Redis may have counted it
            raise
        if admitted:
            self.held_connections[address_hash] += 1
        return bool(admitted)

    async def release_connection(self, address_hash: str, node_id: str) -> None:
        """One socket fewer (counted here at once, in Redis when it answers)."""
        self.held_connections[address_hash] -= 1
        if self.held_connections[address_hash] <= 0:
            del self.held_connections[address_hash]
        k = self.keys
        try:
            await self.script("conn_release", _CONN_RELEASE)(
                keys=[k.connections(address_hash), k.node_addresses(node_id)],
                args=[node_id, address_hash],
            )
        except BaseException:
            self.unsynced_connections.add(address_hash)
            raise

    async def sync_connections(self, node_id: str, *, every: bool = False) -> None:
        """Make this node's counts in Redis what it holds: for the addresses a Redis error
        left unsure, or (``every``, after a false reap took them) all it holds."""
        k = self.keys
        sync = self.script("conn_sync", _CONN_SYNC)
        todo = set(self.unsynced_connections)
        if every:
            todo |= set(self.held_connections)
        for address_hash in sorted(todo):
            await sync(
                keys=[k.connections(address_hash), k.node_addresses(node_id)],
                args=[
                    node_id,
                    self.held_connections.get(address_hash, 0),
                    CONNECTION_COUNT_TTL,
                    address_hash,
                ],
            )
            self.unsynced_connections.discard(address_hash)

    # -- conversations --------------------------------------------------------------
    async def open_conversation(
        self,
        conversation_id: str,
        nick_key: str,
        score: float,
        token_hash: str,
        resume_ttl: int,
        max_waiting: int,
        fields: dict[str, str],
        *,
        grace_deadline: float | None = None,
        grace_seconds: float = 0.0,
    ) -> int:
        """1 ok, -1 nickname taken, -2 queue full.

        With ``grace_deadline`` (the visitor path always gives one: now + ``grace_seconds``)
        the conversation is created with that grace deadline and listed as the nickname's
        pending hello, in the same script: until :meth:`attach_visitor` registers a socket,
        the grace sweeper ends it, whatever fails in between."""
        k = self.keys
        flat: list[str] = []
        for name, value in fields.items():
            flat += [name, value]
        return int(
            await self._run(
                "hello",
                [
                    k.nicknames,
                    k.queue,
                    k.conversation(conversation_id),
                    k.resume(token_hash),
                    k.grace,
                    k.pending_hello(nick_key),
                ],
                [
                    nick_key,
                    max_waiting,
                    repr(score),
                    resume_ttl,
                    conversation_id,
                    k.channel,
                    event("queue"),
                    "" if grace_deadline is None else repr(grace_deadline),
                    int(grace_seconds) + 60,
                    *flat,
                ],
            )
        )

    async def attach_visitor(self, conversation_id: str, nick_key: str, conn_id: str) -> bool:
        """After hello: register the socket's presence (and the node registry entry the
        reaper needs), then clear the hello's grace deadline and pending entry, in one
        script. False (nothing changed) when the conversation ended meanwhile."""
        k = self.keys
        return bool(
            await self.script("attach_visitor", ATTACH_VISITOR)(
                keys=[
                    k.conversation(conversation_id),
                    k.visitor_presence(conversation_id),
                    self._node_key(conn_id),
                    k.grace,
                    k.pending_hello(nick_key),
                ],
                args=[conversation_id, conn_id],
            )
        )

    async def pending_hello(self, nick_key: str) -> str | None:
        """The conversation of this nickname whose hello never got a socket attached."""
        return cast(str | None, await self.r.get(self.keys.pending_hello(nick_key)))

    async def conversation(self, conversation_id: str) -> dict[str, str] | None:
        data = cast(dict[str, str], await self.r.hgetall(self.keys.conversation(conversation_id)))
        return data or None

    async def update_conversation(self, conversation_id: str, fields: dict[str, str]) -> bool:
        """Set fields of a conversation that still exists; False (and nothing written) when
        it is gone: forgotten by its visitor or purged, a wrap-up note or a crisis flag
        arriving just after must not make a record again, one no retention would remove."""
        key = self.keys.conversation(conversation_id)
        if not fields:
            return bool(await self.r.exists(key))
        flat: list[str] = []
        for name, value in fields.items():
            flat += [name, value]
        update = self.script("update_existing", _UPDATE_EXISTING)
        return bool(await update(keys=[key], args=flat))

    async def resume_target(self, token_hash: str) -> str | None:
        value = await self.r.get(self.keys.resume(token_hash))
        return cast(str | None, value)

    async def say(
        self,
        conversation_id: str,
        ref_key: str | None,
        sender: str,
        author: str,
        text: str,
        ts: float,
        conn_id: str,
        *,
        flags: tuple[str, ...] = (),
        stored_text: str | None = None,
    ) -> SayResult:
        """Store a message (``stored_text`` when it must differ: redacted) and announce it."""
        k = self.keys
        live = pack_entry(sender, author, text, ts, flags)
        stored = live if stored_text is None else pack_entry(sender, author, stored_text, ts, flags)
        seq, dup = await self.says(
            [k.messages(conversation_id), k.refs(conversation_id)],
            [
                ref_key or "",
                stored,
                k.channel,
                conversation_id,
                conn_id,
                b"" if stored is live else live,
            ],
        )
        if not dup:
            self.unflushed_messages += 1  # for /metrics: added by flush_counts
        return SayResult(int(seq), bool(dup))

    async def messages(
        self, conversation_id: str, after: int = 0, until: int = -1
    ) -> list[StoredMessage]:
        """Messages with ``seq > after`` (and ``seq <= until`` when given), in order."""
        raw = await self.rb.lrange(
            self.keys.messages(conversation_id), after, until - 1 if until > 0 else -1
        )
        return [unpack_entry(after + i + 1, cast(bytes, e)) for i, e in enumerate(raw)]

    async def message_count(self, conversation_id: str) -> int:
        return int(await self.rb.llen(self.keys.messages(conversation_id)))

    async def end_conversation(
        self,
        conversation_id: str,
        reason: str,
        now: float,
        wrapup_seconds: float,
        retention_seconds: int,
    ) -> str | None:
        """End once; returns the previous state, or None when it was already ended."""
        k = self.keys
        meta = await self.conversation(conversation_id)
        staff_id = (meta or {}).get("counsellor", "")
        ended = event("ended", c=conversation_id, r=reason, s=staff_id)
        prev = await self._run(
            "end",
            [
                k.conversation(conversation_id),
                k.queue,
                k.nicknames,
                k.grace,
                k.active,
                k.handling,
                k.available,
                k.staff_state(staff_id or "-"),
                k.staff_conversations(staff_id or "-"),
            ],
            [
                conversation_id,
                reason,
                now,
                k.channel,
                ended,
                event("queue"),
                wrapup_seconds,
                retention_seconds,
            ],
        )
        if prev is None:
            return None
        await self.rb.expire(k.messages(conversation_id), retention_seconds)
        await self.rb.expire(k.refs(conversation_id), retention_seconds)
        return prev.decode() if isinstance(prev, bytes) else str(prev)

    # -- anonymous facts for statistics ----------------------------------------------
    async def record_fact(
        self,
        conversation_id: str,
        fields: dict[str, str],
        ended: float,
        ttl_seconds: int,
        allowed_entries: tuple[str, ...] = (),
    ) -> bool:
        """Keep one ended conversation's anonymous fact, once (False when it was already
        kept). The entry is kept only as a safe label (else "other"); a helped visitor's
        wait is added to the cumulative histogram behind ``chat_wait_seconds``; a survey or
        wrap-up already on the conversation is folded in. One script: the index entry that
        says "kept" is written last, so a failed write is simply tried again."""
        k = self.keys
        fields = {**fields, "entry": safe_entry(fields.get("entry"), allowed_entries)}
        helped = fields.get("abandoned") != "1" and fields.get("waited")
        waited = repr(max(0.0, float(fields["waited"]))) if helped else ""
        flat = [item for pair in fields.items() for item in pair]
        done = await self.script("record_fact", _RECORD_FACT)(
            keys=[
                k.facts,
                k.fact(conversation_id),
                k.wait_histogram,
                k.conversation(conversation_id),
            ],
            args=[
                conversation_id,
                repr(ended),
                ttl_seconds,
                waited,
                len(WAIT_BUCKETS),
                *(repr(b) for b in WAIT_BUCKETS),
                len(FACT_FROM_CONVERSATION),
                *FACT_FROM_CONVERSATION,
                *flat,
            ],
        )
        return bool(done)

    async def wait_histogram(self) -> dict[str, Any]:
        """Cumulative waits of helped visitors: ``buckets`` (upper bound → count of waits at
        most that long), ``count`` and ``sum``. Only ever incremented."""
        raw = cast(dict[str, str], await self.r.hgetall(self.keys.wait_histogram))
        return {
            "buckets": {b: int(v) for b, v in raw.items() if b not in ("count", "sum")},
            "count": int(raw.get("count", 0)),
            "sum": float(raw.get("sum", 0.0)),
        }

    async def update_fact(self, conversation_id: str, fields: dict[str, str]) -> None:
        """Add to a kept fact. Callers first put the same fields on the conversation: a fact
        not kept yet takes them from there when :meth:`record_fact` writes it."""
        if not fields:
            return
        flat = [item for pair in fields.items() for item in pair]
        await self.script("update_fact", _UPDATE_FACT)(
            keys=[self.keys.fact(conversation_id)], args=flat
        )

    async def trim_facts(self, before: float) -> int:
        """Drop index entries of facts that ended before ``before`` (their hashes expire by
        themselves); returns how many went."""
        return int(await self.r.zremrangebyscore(self.keys.facts, "-inf", f"({before!r}"))

    async def facts_between(self, start: float, end: float) -> list[dict[str, str]]:
        ids = cast(list[str], await self.r.zrangebyscore(self.keys.facts, start, end))
        pipe = self.r.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(self.keys.fact(cid))
        return [f for f in await pipe.execute() if f]

    async def count(self, name: str, amount: int = 1) -> None:
        await self.r.hincrby(self.keys.counters, name, amount)

    async def flush_counts(self) -> None:
        """Add this process's unflushed message count to the shared counter (kept for the
        next try when the write fails: the count is late then, not lost)."""
        amount, self.unflushed_messages = self.unflushed_messages, 0
        if not amount:
            return
        try:
            await self.r.hincrby(self.keys.counters, "messages", amount)
        except BaseException:
            self.unflushed_messages += amount
            raise

    async def counters(self) -> dict[str, int]:
        """The shared counters, this process's own messages flushed into them first."""
        await self.flush_counts()
        raw = cast(dict[str, str], await self.r.hgetall(self.keys.counters))
        return {k: int(v) for k, v in raw.items()}

    # -- queue and assignment ---------------------------------------------------------
    async def queue_ids(self) -> list[str]:
        return cast(list[str], await self.r.zrange(self.keys.queue, 0, -1))

    async def waiting_count(self) -> int:
        return int(await self.r.zcard(self.keys.queue))

    async def queue_places(self, conversation_ids: Sequence[str]) -> tuple[int, list[int | None]]:
        """How many wait, and the place (1 = next) of each given conversation (None: not
        waiting), in one transaction: a rank per visitor asked for, not the whole queue."""
        pipe = self.r.pipeline(transaction=True)
        pipe.zcard(self.keys.queue)
        for cid in conversation_ids:
            pipe.zrank(self.keys.queue, cid)
        total, *ranks = await pipe.execute()
        return int(total), [None if r is None else int(r) + 1 for r in ranks]

    async def waiting_snapshot(self, limit: int = 200) -> list[WaitingVisitor]:
        ids = cast(list[str], await self.r.zrange(self.keys.queue, 0, limit - 1))
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for cid in ids:
            pipe.hmget(
                self.keys.conversation(cid),
                "queued_at",
                "enqueued",
                "priority",
                "topic",
                "crisis",
                "past_counsellors",
                "requeued_at",
            )
        rows = await pipe.execute()
        out = []
        for cid, (queued_at, enq, prio, topic, crisis, past, requeued) in zip(
            ids, rows, strict=True
        ):
            at = queued_at if queued_at is not None else enq
            if at is None:
                continue
            out.append(
                WaitingVisitor(
                    cid,
                    float(at),
                    int(prio or 0),
                    topic or None,
                    crisis == "1",
                    avoid=frozenset(s for s in (past or "").split(",") if s),
                    requeued_at=float(requeued) if requeued else None,
                )
            )
        return out

    async def available_snapshot(self) -> list[CounsellorSlot]:
        ids = cast(list[str], await self.r.zrange(self.keys.available, 0, -1))
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for sid in ids:
            pipe.hmget(
                self.keys.staff_state(sid),
                "capacity",
                "load",
                "idle_since",
                "skills",
                "trainee",
                "watched",
                "wrapup_until",
            )
        rows = await pipe.execute()
        now = time.time()
        out = []
        for sid, (cap, load, idle, skills, trainee, watched, wrapup) in zip(ids, rows, strict=True):
            if float(wrapup or 0) > now:
                continue
            out.append(
                CounsellorSlot(
                    sid,
                    int(cap or 1),
                    int(load or 0),
                    float(idle or 0),
                    frozenset(s for s in (skills or "").split(",") if s),
                    trainee == "1",
                    watched == "1",
                )
            )
        return out

    def _claim_call(
        self, conversation_id: str, staff_id: str, now: float, *, queue_event: bool
    ) -> tuple[list[str], list[Any]]:
        """``claim.lua``'s keys and arguments; without ``queue_event`` the script publishes
        no ``queue`` event (the caller publishes one for a whole batch)."""
        k = self.keys
        keys = [
            k.queue,
            k.conversation(conversation_id),
            k.staff_state(staff_id),
            k.available,
            k.staff_conversations(staff_id),
            k.active,
        ]
        assigned = event("assigned", c=conversation_id, s=staff_id)
        queue = event("queue") if queue_event else b""
        return keys, [conversation_id, staff_id, now, k.channel, assigned, queue]

    async def claim(self, conversation_id: str, staff_id: str, now: float) -> bool:
        """Give a waiting visitor to a counsellor if both still allow it (``claim.lua``
        re-checks everything; the display name is the counsellor state's own)."""
        keys, args = self._claim_call(conversation_id, staff_id, now, queue_event=True)
        return bool(await self._run("claim", keys, args))

    async def claim_all(
        self, pairings: Sequence[tuple[str, str]], now: float
    ) -> list[bool | RedisError]:
        """Claim each (conversation, counsellor) pairing, in this order: the result of each
        (claimed or not), or the error of its own call.

        One pipeline, not a transaction: every ``claim.lua`` call is atomic and re-checks
        its preconditions, so a claim that lost its visitor or the counsellor's last place
        to an earlier one (or to anyone else) is just not claimed, and the rest go on. The
        claims publish their ``assigned`` events and the pipeline one ``queue`` event after
        the last (the event only makes every process read the places afresh). On a Redis
        Cluster one call after the other, each with its own ``queue`` event (redis-py
        refuses a pipeline of scripts across slots)."""
        if not pairings:
            return []
        if not self.pipelined:
            out: list[bool | RedisError] = []
            for conversation_id, staff_id in pairings:
                try:
                    out.append(await self.claim(conversation_id, staff_id, now))
                except ResponseError as exc:  # that call's own error: the others go on
                    out.append(exc)
                except RedisError as exc:  # the store went away: the rest are not sent
                    out += [exc] * (len(pairings) - len(out))
                    break
            return out
        script = self._scripts["claim"]
        pipe = self.rb.pipeline(transaction=False)
        for conversation_id, staff_id in pairings:
            keys, args = self._claim_call(conversation_id, staff_id, now, queue_event=False)
            await script(keys=keys, args=args, client=pipe)
        pipe.publish(self.keys.channel, event("queue"))
        try:
            *replies, _subscribers = await pipe.execute(raise_on_error=False)
        except RedisError:
            # Some claims may have run without the pipeline's queue event after them.
            with contextlib.suppress(RedisError):
                await self.publish(event("queue"))
            raise
        return [r if isinstance(r, RedisError) else bool(r) for r in replies]

    async def set_status(
        self,
        staff_id: str,
        state: str,
        capacity: int | None,
        now: float,
        extra: dict[str, str] | None = None,
    ) -> int:
        """Set the state; ``paused_by_reap`` is cleared unless ``extra`` sets it (only the
        reaper's pause of a live counsellor is undone when their process comes back)."""
        flat: list[str] = []
        for name, value in {"paused_by_reap": "0", **(extra or {})}.items():
            flat += [name, value]
        return int(
            await self._run(
                "status",
                [self.keys.staff_state(staff_id), self.keys.available],
                [staff_id, state, "" if capacity is None else capacity, now, *flat],
            )
        )

    async def staff_state(self, staff_id: str) -> dict[str, str]:
        return cast(dict[str, str], await self.r.hgetall(self.keys.staff_state(staff_id)))

    async def staff_conversation_ids(self, staff_id: str) -> list[str]:
        ids = cast(set[str], await self.r.smembers(self.keys.staff_conversations(staff_id)))
        return sorted(ids)

    async def record_outcome(self, abandoned: bool) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.lpush(self.keys.outcomes, "a" if abandoned else "s")
        pipe.ltrim(self.keys.outcomes, 0, 199)
        await pipe.execute()

    async def abandon_share(self) -> float:
        outcomes = cast(list[str], await self.r.lrange(self.keys.outcomes, 0, -1))
        return outcomes.count("a") / len(outcomes) if outcomes else 0.0

    async def handling_times(self) -> list[float]:
        return [float(x) for x in await self.r.lrange(self.keys.handling, 0, -1)]

    async def shift_places(self, now: float) -> tuple[int, int, list[float], list[float]]:
        """For the waiting estimate, in two reads whatever the numbers: the places of the
        counsellors on shift (available ones), those free now (as the free places of
        :meth:`available_snapshot`: capacity left and not in wrap-up, judged at ``now``),
        how long each conversation they hold has been going on, and the wrap-up left of
        each free place in wrap-up."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.staff_index)
        pipe.smembers(self.keys.active)
        index, active = await pipe.execute()
        staff, convs = list(cast(dict[str, str], index)), sorted(cast(set[str], active))
        pipe = self.r.pipeline(transaction=False)
        for sid in staff:
            pipe.hmget(self.keys.staff_state(sid), "state", "capacity", "load", "wrapup_until")
        for cid in convs:
            pipe.hmget(self.keys.conversation(cid), "state", "counsellor", "assigned")
        rows = await pipe.execute() if staff or convs else []
        places, free, wrapup, on_shift = 0, 0, [], set()
        for sid, (state, cap, load, until) in zip(staff, rows[: len(staff)], strict=True):
            if state != "available":
                continue
            on_shift.add(sid)
            places += int(cap or 1)
            left = max(0, int(cap or 1) - int(load or 0))
            if float(until or 0) > now:
                wrapup += [float(until) - now] * left
            else:
                free += left
        ages = [
            max(0.0, now - float(at))
            for state, sid, at in rows[len(staff) :]
            if state == "active" and sid in on_shift and at
        ]
        return places, free, ages, wrapup

    # -- presence and grace -------------------------------------------------------------
    def _node_key(self, conn_id: str) -> str:
        return self.keys.node_connections(conn_id.split(".", 1)[0])

    async def set_visitor_presence(self, conversation_id: str, conn_id: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.visitor_presence(conversation_id), conn_id)
        pipe.sadd(self._node_key(conn_id), f"v|{conversation_id}|{conn_id}")
        await pipe.execute()

    async def release_visitor_presence(self, conversation_id: str, conn_id: str) -> bool:
        """Drop the presence only if it still names this connection."""
        await self.r.srem(self._node_key(conn_id), f"v|{conversation_id}|{conn_id}")
        return bool(
            await self._run("release", [self.keys.visitor_presence(conversation_id)], [conn_id])
        )

    async def add_staff_connection(self, staff_id: str, conn_id: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.sadd(self.keys.staff_connections(staff_id), conn_id)
        pipe.sadd(self._node_key(conn_id), f"s|{staff_id}|{conn_id}")
        await pipe.execute()

    async def remove_staff_connection(self, staff_id: str, conn_id: str) -> int:
        """Removes the connection; returns how many the staff member still has."""
        key = self.keys.staff_connections(staff_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.srem(key, conn_id)
        pipe.srem(self._node_key(conn_id), f"s|{staff_id}|{conn_id}")
        pipe.scard(key)
        return int((await pipe.execute())[-1])

    async def heartbeat(self, node_id: str, now: float) -> bool:
        """Record that ``node_id`` lives; True when it was not listed (new, or reaped)."""
        return bool(await self.r.zadd(self.keys.nodes, {node_id: now}))

    async def node_registry(self, node_id: str) -> set[str]:
        """The sockets (and trainee watches) a node has registered."""
        return cast(set[str], await self.r.smembers(self.keys.node_connections(node_id)))

    async def dead_nodes(self, before: float) -> list[str]:
        return cast(list[str], await self.r.zrangebyscore(self.keys.nodes, "-inf", before))

    async def take_node(self, node_id: str, cutoff: float) -> list[str]:
        """For exactly one process: the sockets of a node whose last heartbeat is at most
        ``cutoff``, to clean up (its connection counts are dropped); else [].

        One script, so a node that comes back and beats or re-registers at the same moment
        either loses all (and re-registers after) or nothing: its new entries are never
        taken. A count it made after its addresses were read stays, and re-registering
        lists it again (:meth:`sync_connections`)."""
        k = self.keys
        addresses = sorted(cast(set[str], await self.r.smembers(k.node_addresses(node_id))))
        entries = await self.script("take_node", TAKE_NODE)(
            keys=[
                k.nodes,
                k.node_connections(node_id),
                k.node_addresses(node_id),
                *(k.connections(a) for a in addresses),
            ],
            args=[node_id, repr(cutoff)],
        )
        return sorted(cast(list[str], entries or []))

    # -- trainee watches: one entry per live supervisor socket ---------------------------
    async def add_trainee_watch(self, trainee_id: str, supervisor_id: str, conn_id: str) -> None:
        member = f"{supervisor_id}|{conn_id}"
        pipe = self.r.pipeline(transaction=True)
        pipe.sadd(self.keys.trainee_watchers(trainee_id), member)
        pipe.sadd(self._node_key(conn_id), f"t|{trainee_id}|{member}")
        await pipe.execute()

    async def remove_trainee_watch(self, trainee_id: str, supervisor_id: str, conn_id: str) -> None:
        member = f"{supervisor_id}|{conn_id}"
        pipe = self.r.pipeline(transaction=True)
        pipe.srem(self.keys.trainee_watchers(trainee_id), member)
        pipe.srem(self._node_key(conn_id), f"t|{trainee_id}|{member}")
        await pipe.execute()

    async def trainee_watch_entries(self, trainee_id: str) -> set[str]:
        """``supervisor_id|conn_id`` of each live supervisor socket watching the trainee."""
        return cast(set[str], await self.r.smembers(self.keys.trainee_watchers(trainee_id)))

    async def start_grace(self, member: str, deadline: float) -> None:
        await self.r.zadd(self.keys.grace, {member: deadline})

    async def cancel_grace(self, member: str) -> bool:
        return bool(await self.r.zrem(self.keys.grace, member))

    async def due_graces(self, now: float) -> list[str]:
        return cast(list[str], await self.r.zrangebyscore(self.keys.grace, "-inf", now))

    async def take_grace(self, member: str) -> bool:
        """True for exactly one process: the one that removed the deadline."""
        return bool(await self.r.zrem(self.keys.grace, member))

    # -- supervision ---------------------------------------------------------------------
    async def add_whisper(
        self, conversation_id: str, author_id: str, author: str, text: str, ts: float
    ) -> None:
        entry = msgpack.packb([author_id, author, text, ts], use_bin_type=True)
        key = self.keys.whispers(conversation_id)
        await self.rb.rpush(key, entry)
        await self.rb.expire(key, 86400 * 400)

    async def whispers(self, conversation_id: str) -> list[dict[str, Any]]:
        raw = await self.rb.lrange(self.keys.whispers(conversation_id), 0, -1)
        out = []
        for entry in raw:
            author_id, author, text, ts = msgpack.unpackb(entry, raw=False)
            out.append({"author_id": author_id, "author": author, "text": text, "ts": ts})
        return out

    async def reassign(
        self,
        conversation_id: str,
        old: str,
        new: str,
        new_name: str,
        now: float,
        note: str,
        published: bytes,
        *,
        rules: bool = False,
        trainee: bool | None = None,
    ) -> int:
        """1 handed over, 0 the conversation changed; with ``rules`` (a transfer to a
        colleague) a negative :data:`REASSIGN_REFUSALS` code when the colleague may not
        take it now. ``trainee``: None not a trainee, else whether a supervisor watches
        them, read by the caller just before; every other rule is checked and applied in
        one script, so no race lets it through."""
        k = self.keys
        return int(
            await self._run(
                "reassign",
                [
                    k.conversation(conversation_id),
                    k.staff_state(old),
                    k.staff_conversations(old),
                    k.staff_state(new),
                    k.staff_conversations(new),
                    k.available,
                ],
                [
                    conversation_id,
                    old,
                    new,
                    new_name,
                    now,
                    note,
                    k.channel,
                    published,
                    "1" if rules else "0",
                    "" if trainee is None else ("w" if trainee else "u"),
                ],
            )
        )

    async def requeue(self, conversation_id: str, old: str, now: float, note: str) -> bool:
        """Back to the front of the queue. The old counsellor is remembered in
        ``past_counsellors`` (the policy avoids them) and their idle time restarts."""
        k = self.keys
        requeued = event("requeued", c=conversation_id, s=old)
        return bool(
            await self._run(
                "requeue",
                [
                    k.conversation(conversation_id),
                    k.queue,
                    k.staff_state(old),
                    k.staff_conversations(old),
                    k.available,
                    k.active,
                ],
                [
                    conversation_id,
                    old,
                    now,
                    note,
                    k.channel,
                    requeued,
                    event("queue"),
                    PRIORITY_WEIGHT,
                ],
            )
        )

    async def prioritise(
        self, conversation_id: str, priority: int, crisis: bool | None = None
    ) -> bool:
        k = self.keys
        flag = "" if crisis is None else ("1" if crisis else "0")
        return bool(
            await self._run(
                "prioritise",
                [k.conversation(conversation_id), k.queue],
                [conversation_id, priority, PRIORITY_WEIGHT, k.channel, event("queue"), flag],
            )
        )

    async def first_crisis_alert(
        self, conversation_id: str, ts: float, categories: tuple[str, ...]
    ) -> bool:
        """Whether this signal is the conversation's first, so the one to alert: it records
        when (``crisis_ts``) and why, in one script, so of two signals at once one alerts.
        False for a conversation that is gone."""
        first = await self.script("crisis_alert", _CRISIS_ALERT)(
            keys=[self.keys.conversation(conversation_id)], args=[repr(ts), ",".join(categories)]
        )
        return bool(first)

    async def add_flags(self, conversation_id: str, flags: tuple[str, ...]) -> bool:
        """Mark the conversation (``abuse``, ``pii``, ``help_requested``) for the overview;
        True when a flag was new. One script, so two marks at once both stay."""
        if not flags:
            return False
        added = await self.script("add_flags", ADD_FLAGS)(
            keys=[self.keys.conversation(conversation_id)], args=sorted(set(flags))
        )
        return bool(added)

    async def audit(
        self,
        actor: str,
        role: str,
        action: str,
        conversation_id: str = "",
        extra: dict[str, str] | None = None,
        ts: float | None = None,
    ) -> str:
        """Append one audit record; returns its id. Nothing ever edits or deletes one."""
        fields = {
            "ts": repr(ts if ts is not None else time.time()),
            "actor": actor,
            "role": role,
            "action": action,
            "conversation_id": conversation_id,
            **(extra or {}),
        }
        entry_id = await self.r.xadd(self.keys.audit, cast(Any, fields))
        return str(entry_id)

    async def audit_entries(self, since: float = 0.0, count: int = 1000) -> list[dict[str, str]]:
        start = f"{int(since * 1000)}-0" if since > 0 else "-"
        rows = cast(
            list[tuple[str, dict[str, str]]],
            await self.r.xrange(self.keys.audit, min=start, count=count),
        )
        return [{"id": entry_id, **fields} for entry_id, fields in rows]

    async def set_watching(self, conversation_id: str, staff_id: str, on: bool) -> int:
        key = self.keys.watchers(conversation_id)
        if on:
            await self.r.sadd(key, staff_id)
            await self.r.expire(key, 86400)
        else:
            await self.r.srem(key, staff_id)
        return int(await self.r.scard(key))

    async def watcher_ids(self, conversation_id: str) -> set[str]:
        return cast(set[str], await self.r.smembers(self.keys.watchers(conversation_id)))

    async def join(self, conversation_id: str, staff_id: str) -> bool:
        key = self.keys.participants(conversation_id)
        added = bool(await self.r.sadd(key, staff_id))
        await self.r.expire(key, 86400)
        return added

    async def has_joined(self, conversation_id: str, staff_id: str) -> bool:
        return bool(await self.r.sismember(self.keys.participants(conversation_id), staff_id))

    async def active_ids(self) -> list[str]:
        return sorted(cast(set[str], await self.r.smembers(self.keys.active)))

    async def add_comment(
        self,
        conversation_id: str,
        seq: int,
        author_id: str,
        author: str,
        text: str,
        ts: float,
        ttl: int,
    ) -> None:
        key = self.keys.comments(conversation_id)
        entry = msgpack.packb([seq, author_id, author, text, ts], use_bin_type=True)
        await self.rb.rpush(key, entry)
        await self.rb.expire(key, ttl)

    async def comments(self, conversation_id: str) -> list[dict[str, Any]]:
        raw = await self.rb.lrange(self.keys.comments(conversation_id), 0, -1)
        out = []
        for entry in raw:
            seq, author_id, author, text, ts = msgpack.unpackb(entry, raw=False)
            out.append(
                {"seq": seq, "author_id": author_id, "author": author, "text": text, "ts": ts}
            )
        return out

    async def ended_ids(self, since: float, until: float, limit: int = 500) -> list[str]:
        return cast(
            list[str],
            await self.r.zrevrangebyscore(self.keys.facts, until, since, start=0, num=limit),
        )

    # -- blocks (hashed addresses and resume tokens only) ---------------------------------
    async def is_blocked(
        self, *, addresses: Sequence[str] = (), token_hash: str | None = None
    ) -> bool:
        """Whether any of these address hashes (today's and yesterday's: the secret
        rotates daily) or this resume-token hash is blocked."""
        keys = [self.keys.blocked_address(a) for a in addresses if a]
        if token_hash:
            keys.append(self.keys.blocked_token(token_hash))
        return bool(keys) and bool(await self.r.exists(*keys))

    async def block(self, conversation_id: str, token_hash: str, seconds: int) -> None:
        """Keep the conversation's browser and (for at most 24 h) its network out."""
        address = cast(
            str | None, await self.r.get(self.keys.conversation_address(conversation_id))
        )
        pipe = self.r.pipeline(transaction=False)
        if token_hash:
            pipe.set(self.keys.blocked_token(token_hash), "1", ex=max(1, seconds))
        if address:
            pipe.set(self.keys.blocked_address(address), "1", ex=max(1, min(seconds, 86400)))
        await pipe.execute()

    async def remember_address(self, conversation_id: str, address: str) -> None:
        await self.r.set(self.keys.conversation_address(conversation_id), address, ex=86400)
