"""The operations of the service, shared by the visitor and staff sockets.

One :class:`Service` per process. It owns the hub (local sockets), the assigner task
(runs the pure queue policy over a store snapshot and applies each pairing with an
atomic, guarded claim) and the grace sweeper (ends what a dropped party left behind,
on exactly one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatserver.config import Settings
from chatserver.errors import ErrorCode, FrameError
from chatserver.events import crisis_alert_text, event
from chatserver.hub import Hub, visitor_text
from chatserver.overview import build_overview
from chatserver.retention import retention_loop
from chatserver.store import Store, new_id
from queueing.hours import OpeningHours
from queueing.policy import PRIORITY_CRISIS, QueuePolicy, plan_assignments

log = structlog.get_logger("chatserver.service")

DAY = 86400

#: Waiting visitors one plan looks at, from the head of the queue. A plan that claimed
#: all it planned from a full snapshot is followed by another at once: more wait behind.
ASSIGN_SNAPSHOT = 200

#: An unrecorded drop whose replay fails this often (not for want of Redis) is given up.
REPLAY_ATTEMPTS = 3


class Service:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.hub = Hub(store)
        self.hub.on_assignable = self.request_assignment
        self.hub.closes_at = self.closes_at
        self.hub.clock = lambda: self.clock()
        self.hub.build_overview = lambda: build_overview(self.store, self.clock())
        self.policy = QueuePolicy(skill_wait_seconds=settings.queue.skill_wait_seconds)
        self.hours = OpeningHours.from_table(settings.hours)
        self._assign_due = asyncio.Event()
        self.clock: Callable[[], float] = time.time
        #: This process, for heartbeats; every connection id starts with it.
        self.node_id = new_id()
        self.stopping = False
        #: Monotonic time of the first heartbeat since this process's last Redis error.
        self._healthy_since: float | None = None
        self._registered = False
        #: Socket closes Redis did not hear of (kind, id, connection), replayed later.
        self._unrecorded: deque[tuple[str, str, str]] = deque(maxlen=10_000)
        #: Failed replays of the head of ``_unrecorded`` (dropped at REPLAY_ATTEMPTS).
        self._replay_failures = 0

    @property
    def retention_seconds(self) -> int:
        return max(60, int(self.settings.retention.transcripts_days * DAY))

    # -- background tasks -----------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        tasks = [
            asyncio.create_task(self.hub.listen(), name="event-listener"),
            asyncio.create_task(self.hub.positions_loop(), name="positions"),
            asyncio.create_task(self.hub.overview_loop(), name="overview"),
            asyncio.create_task(self._assigner(), name="assigner"),
            asyncio.create_task(self._sweeper(), name="grace-sweeper"),
            asyncio.create_task(self._heartbeat(), name="heartbeat"),
            asyncio.create_task(
                retention_loop(self.store, self.settings.retention, lambda: self.clock()),
                name="retention",
            ),
        ]
        try:
            yield self
        finally:
            # A flag as well as cancel(): a client library that swallows one
            # CancelledError must not keep a loop alive at shutdown.
            self.stopping = True
            self.hub.stopping = True
            self._assign_due.set()
            for task in tasks:
                task.cancel()
            _, stuck = await asyncio.wait(tasks, timeout=5)
            for task in stuck:
                log.warning("background_task_stuck", task=task.get_name())
            with contextlib.suppress(RedisError, OSError):
                await self.store.flush_counts()

    def require_live(self) -> None:
        """Writes wait until the event listener is subscribed and caught up: a ``say``
        accepted before could reuse a lost seq and be skipped by a party."""
        if not self.hub.ready:
            raise FrameError(
                ErrorCode.UNAVAILABLE, "the service is reconnecting to its store; please retry"
            )

    def request_assignment(self) -> None:
        self._assign_due.set()

    async def _assigner(self, period: float = 2.0) -> None:
        while not self.stopping:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._assign_due.wait()
            self._assign_due.clear()
            try:
                await self.assign_pass()
            except RedisError as exc:
                log.warning("assignment_pass_failed", error=type(exc).__name__)
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("assignment_pass_crashed")
                await asyncio.sleep(0.5)

    async def assign_pass(self) -> int:
        """Plan with the pure policy, claim atomically; again while claims fail, and
        again while a plan took a whole snapshot (more visitors wait behind it).

        A plan's claims go to Redis together, in plan order (crisis first); each re-checks
        its preconditions, so one that fails (the visitor left, the place went) is only
        counted, the others still happen, and the next attempt plans afresh."""
        claimed = 0
        failures = 0
        while failures < 5:
            waiting = await self.store.waiting_snapshot(ASSIGN_SNAPSHOT)
            if not waiting:
                return claimed
            counsellors = await self.store.available_snapshot()
            if not counsellors:
                return claimed
            counsellors = [
                replace(c, watched=await self.trainee_watched(c.staff_id)) if c.trainee else c
                for c in counsellors
            ]
            now = self.clock()
            plan = plan_assignments(waiting, counsellors, now, self.policy)
            if not plan:
                return claimed
            results = await self.store.claim_all(
                [(p.conversation_id, p.staff_id) for p in plan], now
            )
            error: RedisError | None = None
            failed = 0
            for pairing, result in zip(plan, results, strict=True):
                if isinstance(result, RedisError):
                    error = error or result
                elif result:
                    claimed += 1
                    log.info(
                        "assigned",
                        conversation_id=pairing.conversation_id,
                        staff_id=pairing.staff_id,
                    )
                else:
                    failed += 1
            if error is not None:
                raise error
            if failed:
                failures += 1
            elif len(waiting) < ASSIGN_SNAPSHOT:
                return claimed
        return claimed

    async def _sweeper(self, period: float = 1.0) -> None:
        while not self.stopping:
            await asyncio.sleep(period)
            try:
                await self.sweep_graces()
            except RedisError as exc:
                log.warning("grace_sweep_failed", error=type(exc).__name__)
            except Exception:
                log.exception("grace_sweep_crashed")

    async def _heartbeat(self) -> None:
        """Tell the others we live; take over the sockets of a process that stopped; then
        replay drops Redis did not hear of (apart: a failing replay is no Redis outage)."""
        while not self.stopping:
            beaten = False
            try:
                await self.beat()
                beaten = True
                await self.store.flush_counts()  # this process's messages, for /metrics
            except RedisError as exc:
                self._healthy_since = None
                log.warning("heartbeat_failed", error=type(exc).__name__)
            except Exception:
                log.exception("heartbeat_crashed")
            if beaten and self._unrecorded:
                try:
                    await self.replay_unrecorded()
                except Exception as exc:
                    log.warning("unrecorded_replay_failed", error=type(exc).__name__)
            await asyncio.sleep(self.heartbeat_seconds)

    @property
    def heartbeat_seconds(self) -> float:
        return self.settings.grace.node_dead_seconds / 4

    async def beat(self) -> None:
        """One heartbeat: re-register if we were reaped, then reap.

        Taking a node (:meth:`Store.take_node`) removes it from the heartbeat set in the
        same script that takes its registry, so our ZADD listing us anew is exactly "we
        were reaped" (or Redis lost its data): then every open socket registers again.

        A process reaps others only once it has itself beaten for ``node_dead_seconds``
        without a Redis error: after an outage every process looks stale, and each must
        first get the chance to beat again before anyone is declared dead."""
        now = self.clock()
        listed_anew = await self.store.heartbeat(self.node_id, now)
        if self._healthy_since is None:
            self._healthy_since = time.monotonic()
        if self._registered and listed_anew:
            await self.reregister()
        elif self.store.unsynced_connections:
            await self.store.sync_connections(self.node_id)
        self._registered = True
        if time.monotonic() - self._healthy_since >= self.settings.grace.node_dead_seconds:
            await self.reap_dead_nodes(now)

    async def reregister(self) -> None:
        """We were declared dead while alive: register every open socket again and cancel
        the graces the reaper started for them (their parties are told we are back)."""
        log.warning("node_reregistered", node=self.node_id)
        await self.store.sync_connections(self.node_id, every=True)
        for conv, link in list(self.hub.visitors.items()):
            if link.state in ("waiting", "active") and not link.conn.closing:
                await self.visitor_returned(conv, link.conn.id)
        for staff_id, conns in list(self.hub.staff.items()):
            live = [conn for conn in conns if not conn.closing]
            for conn in live:
                await self.staff_connected(staff_id, conn.id)
            if live:
                await self._undo_reap_pause(staff_id)
        for trainee, conns in list(self.hub.trainee_watchers.items()):
            for conn in list(conns):
                if not conn.closing and conn.staff_id:
                    await self.store.add_trainee_watch(trainee, conn.staff_id, conn.id)
            await self.trainee_watch_changed(trainee)
        self.request_assignment()

    async def _undo_reap_pause(self, staff_id: str) -> None:
        """A counsellor the reaper paused (their sockets looked dead) is available again."""
        state = await self.store.staff_state(staff_id)
        if state.get("state") == "paused" and state.get("paused_by_reap") == "1":
            await self.store.set_status(staff_id, "available", None, self.clock())
            await self.store.publish(event("status", s=staff_id))
            log.info("reap_pause_undone", staff_id=staff_id)

    # -- drops Redis did not hear of ----------------------------------------------
    def drop_unrecorded(self, kind: str, ident: str | None, conn_id: str) -> None:
        """A socket closed while Redis was away: keep the drop to replay (bounded)."""
        if ident is None:
            return
        if len(self._unrecorded) == self._unrecorded.maxlen:
            log.warning("unrecorded_drop_forgotten")
        self._unrecorded.append((kind, ident, conn_id))

    async def replay_unrecorded(self) -> None:
        """Record the kept drops, oldest first. One that keeps failing while Redis answers
        (say a ``ResponseError``) is given up after :data:`REPLAY_ATTEMPTS` tries, so it
        never blocks the ones behind it; without Redis, the error is raised for later."""
        while self._unrecorded:
            kind, ident, conn_id = self._unrecorded[0]
            try:
                if kind == "v":
                    await self.visitor_dropped(ident, conn_id)
                else:
                    await self.staff_conn_closed(ident, conn_id)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                raise
            except Exception as exc:
                self._replay_failures += 1
                if self._replay_failures < REPLAY_ATTEMPTS:
                    raise
                self._unrecorded.popleft()
                self._replay_failures = 0
                log.error(
                    "unrecorded_drop_given_up",
                    kind=kind,
                    id=ident,
                    conn=conn_id,
                    error=type(exc).__name__,
                )
                continue
            self._unrecorded.popleft()
            self._replay_failures = 0
            log.info("unrecorded_drop_replayed", kind=kind)

    async def staff_conn_closed(self, staff_id: str, conn_id: str) -> None:
        """What a staff socket's close leaves in Redis: its trainee watches, its presence."""
        gone = [
            e
            for e in await self.store.node_registry(self.node_id)
            if e.startswith("t|") and e.endswith(f"|{conn_id}")
        ]
        for entry in gone:
            _, trainee, supervisor, _conn = entry.split("|", 3)
            await self.store.remove_trainee_watch(trainee, supervisor, conn_id)
            await self.trainee_watch_changed(trainee)
        await self.staff_dropped(staff_id, conn_id)

    async def reap_dead_nodes(self, now: float) -> None:
        cutoff = now - self.settings.grace.node_dead_seconds
        for node in await self.store.dead_nodes(cutoff):
            if node == self.node_id:
                continue
            entries = await self.store.take_node(node, cutoff)
            log.warning("node_dead", node=node, sockets=len(entries))
            for entry in entries:
                kind, ident, conn_id = entry.split("|", 2)
                if kind == "v":
                    await self.visitor_dropped(ident, conn_id)
                elif kind == "t":
                    supervisor, _, conn = conn_id.partition("|")
                    await self.store.remove_trainee_watch(ident, supervisor, conn)
                    await self.trainee_watch_changed(ident)
                else:
                    await self.staff_dropped(ident, conn_id, reaped=True)

    async def sweep_graces(self) -> None:
        for member in await self.store.due_graces(self.clock()):
            if not await self.store.take_grace(member):
                continue  # another process took it
            kind, _, ident = member.partition(":")
            if kind == "v":
                log.info("visitor_grace_expired", conversation_id=ident)
                await self.end(ident, "timeout")
            elif kind == "s":
                log.info("counsellor_grace_expired", staff_id=ident)
                await self.store.set_status(ident, "offline", None, self.clock())
                for conv in await self.store.staff_conversation_ids(ident):
                    await self.store.requeue(conv, ident, self.clock(), "")
                self.request_assignment()

    # -- operations ------------------------------------------------------------------
    async def end(self, conversation_id: str, reason: str) -> str | None:
        prev = await self.store.end_conversation(
            conversation_id,
            reason,
            self.clock(),
            self.settings.queue.wrapup_seconds,
            self.retention_seconds,
        )
        if prev is not None:
            log.info("conversation_ended", conversation_id=conversation_id, reason=reason, was=prev)
            self.request_assignment()
            await self.record_fact(conversation_id)
        return prev

    async def record_fact(self, conversation_id: str) -> None:
        """Keep what statistics need of an ended conversation: no text, no nickname."""
        meta = await self.store.conversation(conversation_id)
        if meta is None:
            return
        enqueued = float(meta.get("enqueued") or meta.get("created") or 0)
        ended = float(meta.get("ended") or self.clock())
        assigned = float(meta["assigned"]) if meta.get("assigned") else None
        fact = {
            "created": meta.get("created", ""),
            "ended": repr(ended),
            "reason": meta.get("reason", ""),
            "topic": meta.get("topic", ""),
            "entry": meta.get("entry", ""),
            "lang": meta.get("lang", ""),
            "crisis": meta.get("crisis", "0"),
            "abandoned": "0" if assigned is not None else "1",
            "waited": repr(round((assigned if assigned is not None else ended) - enqueued, 3)),
            "duration": repr(round(ended - assigned, 3)) if assigned is not None else "",
            "wrapup_topics": meta.get("wrapup_topics", ""),
        }
        ttl = max(60, int(self.settings.retention.statistics_days * DAY))
        await self.store.record_fact(
            conversation_id, fact, ended, ttl, self.settings.server.allowed_entries
        )
        await self.store.record_outcome(abandoned=assigned is None)

    async def notice(self, conversation_id: str, to: str, code: str, message: str = "") -> None:
        await self.store.publish(
            event("notice", c=conversation_id, to=to, code=code, message=message)
        )

    async def visitor_notice(self, conversation_id: str, code: str) -> None:
        """A notice to the visitor, in the language they chose (on the conversation)."""
        lang = (await self.store.conversation(conversation_id) or {}).get("lang", "nl")
        await self.notice(conversation_id, "visitor", code, visitor_text(code, lang))

    async def typing(self, conversation_id: str, sender: str, active: bool, conn_id: str) -> None:
        await self.store.publish(
            event("typing", c=conversation_id, **{"from": sender}, active=active, conn=conn_id)
        )

    async def visitor_dropped(self, conversation_id: str, conn_id: str) -> None:
        """A visitor socket closed: keep the place for the grace period."""
        if not await self.store.release_visitor_presence(conversation_id, conn_id):
            return  # the visitor is already back on another socket
        meta = await self.store.conversation(conversation_id)
        if meta is None or meta.get("state") == "ended":
            return
        await self.store.start_grace(
            f"v:{conversation_id}", self.clock() + self.settings.grace.visitor_seconds
        )
        if meta.get("state") == "active":
            await self.notice(
                conversation_id,
                "staff",
                "visitor_disconnected",
                "The visitor's connection dropped; waiting for them to return.",
            )

    async def visitor_returned(self, conversation_id: str, conn_id: str) -> None:
        await self.store.set_visitor_presence(conversation_id, conn_id)
        if await self.store.cancel_grace(f"v:{conversation_id}"):
            await self.notice(
                conversation_id, "staff", "visitor_reconnected", "The visitor is back."
            )

    async def staff_connected(self, staff_id: str, conn_id: str) -> None:
        await self.store.add_staff_connection(staff_id, conn_id)
        if await self.store.cancel_grace(f"s:{staff_id}"):
            for conv in await self.store.staff_conversation_ids(staff_id):
                await self.visitor_notice(conv, "counsellor_back")

    async def staff_dropped(self, staff_id: str, conn_id: str, *, reaped: bool = False) -> None:
        """The last socket of a staff member closed: no new chats, tell their visitors.
        ``reaped``: its process was taken for dead; the pause is marked, to be undone if
        that process was alive after all (:meth:`reregister`)."""
        if await self.store.remove_staff_connection(staff_id, conn_id) > 0:
            return
        state = await self.store.staff_state(staff_id)
        if state.get("state") == "available":
            mark = {"paused_by_reap": "1"} if reaped else None
            await self.store.set_status(staff_id, "paused", None, self.clock(), mark)
        convs = await self.store.staff_conversation_ids(staff_id)
        if convs:
            await self.store.start_grace(
                f"s:{staff_id}", self.clock() + self.settings.grace.counsellor_seconds
            )
            for conv in convs:
                await self.visitor_notice(conv, "counsellor_reconnecting")

    async def crisis_signal(
        self, conversation_id: str, nickname: str, categories: tuple[str, ...]
    ) -> None:
        """A crisis signal: flag the conversation, move a waiting visitor ahead of every
        non-urgent one, and alert the supervisors (once per conversation)."""
        meta = await self.store.conversation(conversation_id) or {}
        if meta.get("state") == "waiting":
            # A crisis raises the priority to at least crisis level, never lowers it.
            priority = max(int(meta.get("priority") or 0), PRIORITY_CRISIS)
            await self.store.prioritise(conversation_id, priority, crisis=True)
            self.request_assignment()
        else:
            await self.store.update_conversation(conversation_id, {"crisis": "1"})
        # When and why, kept for a supervisor who connects later (supervision.replay_alerts);
        # whoever records them first alerts, so two signals at once alert once.
        first = await self.store.first_crisis_alert(conversation_id, self.clock(), categories)
        log.warning(
            "crisis_signal", conversation_id=conversation_id, categories=categories, first=first
        )
        if first:
            await self.store.publish(
                event(
                    "alert",
                    kind="crisis",
                    c=conversation_id,
                    message=crisis_alert_text(nickname, categories),
                )
            )
            await self.store.publish(event("overview"))

    def closed_now(self) -> tuple[bool, str | None]:
        """Whether the service is outside opening hours now, and when it opens (ISO 8601)."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        if self.hours.is_open(now):
            return False, None
        opens = self.hours.opens_at(now)
        return True, opens.isoformat() if opens else None

    def closes_at(self) -> float | None:
        end = self.hours.closes_at(datetime.fromtimestamp(self.clock(), UTC))
        return end.timestamp() if end else None

    async def trainee_watch(self, trainee_id: str, supervisor_id: str, on: bool) -> None:
        """A trainee is only assigned while a supervisor watches them: one entry per live
        supervisor socket (the hub's ``trainee_watchers``), removed when it closes or its
        process is reaped, so a dead watcher never keeps a trainee "watched"."""
        local = {
            c.id
            for c in self.hub.trainee_watchers.get(trainee_id, ())
            if c.staff_id == supervisor_id
        }
        if on:
            for conn_id in local:
                await self.store.add_trainee_watch(trainee_id, supervisor_id, conn_id)
        else:
            prefix = f"{self.node_id}."
            for member in await self.store.trainee_watch_entries(trainee_id):
                sup, _, conn_id = member.partition("|")
                if sup == supervisor_id and conn_id.startswith(prefix) and conn_id not in local:
                    await self.store.remove_trainee_watch(trainee_id, supervisor_id, conn_id)
        await self.trainee_watch_changed(trainee_id)

    async def trainee_watch_changed(self, trainee_id: str) -> None:
        """Keep the ``watched`` field (read by the transfer script) equal to the live answer."""
        watched = await self.trainee_watched(trainee_id)
        await self.store.r.hset(
            self.store.keys.staff_state(trainee_id), "watched", "1" if watched else "0"
        )
        await self.store.publish(event("status", s=trainee_id))

    async def trainee_watched(self, trainee_id: str) -> bool:
        """Whether a live socket of a supervisor who is not offline watches the trainee."""
        for member in await self.store.trainee_watch_entries(trainee_id):
            supervisor, sep, _conn = member.partition("|")
            if not sep:
                continue  # an entry of the old, per-supervisor form: no live socket behind it
            if (await self.store.staff_state(supervisor)).get("state") != "offline":
                return True
        return False

    async def stats_fact(self, kind: str, **fields: Any) -> None:
        """Hook for anonymous statistics facts (no text, no nickname)."""
        log.debug("fact", kind=kind, **fields)
