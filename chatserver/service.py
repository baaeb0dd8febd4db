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
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.exceptions import RedisError

from chatserver.config import Settings
from chatserver.events import event
from chatserver.hub import Hub
from chatserver.overview import build_overview
from chatserver.retention import retention_loop
from chatserver.store import Store, new_id
from queueing.hours import OpeningHours
from queueing.policy import PRIORITY_CRISIS, QueuePolicy, plan_assignments

log = structlog.get_logger("chatserver.service")

DAY = 86400


class Service:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.hub = Hub(store)
        self.hub.on_assignable = self.request_assignment
        self.hub.closes_at = self.closes_at
        self.hub.build_overview = lambda: build_overview(self.store, self.clock())
        self.policy = QueuePolicy(skill_wait_seconds=settings.queue.skill_wait_seconds)
        self.hours = OpeningHours.from_table(settings.hours)
        self._assign_due = asyncio.Event()
        self.clock: Callable[[], float] = time.time
        #: This process, for heartbeats; every connection id starts with it.
        self.node_id = new_id()
        self.stopping = False

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
                retention_loop(self.store, self.settings.retention.transcripts_days, self.clock),
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
        """Plan with the pure policy, claim atomically; again while claims fail."""
        claimed = 0
        for _attempt in range(5):
            waiting = await self.store.waiting_snapshot()
            if not waiting:
                return claimed
            counsellors = await self.store.available_snapshot()
            if not counsellors:
                return claimed
            now = self.clock()
            plan = plan_assignments(waiting, counsellors, now, self.policy)
            if not plan:
                return claimed
            failed = 0
            for pairing in plan:
                name = (await self.store.staff_state(pairing.staff_id)).get("name", "")
                if await self.store.claim(pairing.conversation_id, pairing.staff_id, name, now):
                    claimed += 1
                    log.info(
                        "assigned",
                        conversation_id=pairing.conversation_id,
                        staff_id=pairing.staff_id,
                    )
                else:
                    failed += 1
            if not failed:
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
        """Tell the others we live; take over the sockets of a process that stopped."""
        while not self.stopping:
            try:
                now = self.clock()
                await self.store.heartbeat(self.node_id, now)
                await self.reap_dead_nodes(now)
            except RedisError as exc:
                log.warning("heartbeat_failed", error=type(exc).__name__)
            except Exception:
                log.exception("heartbeat_crashed")
            await asyncio.sleep(self.settings.grace.node_dead_seconds / 4)

    async def reap_dead_nodes(self, now: float) -> None:
        for node in await self.store.dead_nodes(now - self.settings.grace.node_dead_seconds):
            if node == self.node_id:
                continue
            entries = await self.store.take_node(node)
            log.warning("node_dead", node=node, sockets=len(entries))
            for entry in entries:
                kind, ident, conn_id = entry.split("|", 2)
                if kind == "v":
                    await self.visitor_dropped(ident, conn_id)
                else:
                    await self.staff_dropped(ident, conn_id)

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
        await self.store.record_fact(conversation_id, fact, ended, ttl)
        await self.store.record_outcome(abandoned=assigned is None)

    async def notice(self, conversation_id: str, to: str, code: str, message: str = "") -> None:
        await self.store.publish(
            event("notice", c=conversation_id, to=to, code=code, message=message)
        )

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
                await self.notice(conv, "visitor", "counsellor_back", "Je hulpverlener is er weer.")

    async def staff_dropped(self, staff_id: str, conn_id: str) -> None:
        """The last socket of a staff member closed: no new chats, tell their visitors."""
        if await self.store.remove_staff_connection(staff_id, conn_id) > 0:
            return
        state = await self.store.staff_state(staff_id)
        if state.get("state") == "available":
            await self.store.set_status(staff_id, "paused", None, self.clock())
        convs = await self.store.staff_conversation_ids(staff_id)
        if convs:
            await self.store.start_grace(
                f"s:{staff_id}", self.clock() + self.settings.grace.counsellor_seconds
            )
            for conv in convs:
                await self.notice(
                    conv,
                    "visitor",
                    "counsellor_reconnecting",
                    "De verbinding van je hulpverlener is even weg. Blijf "
                    "gerust, je gesprek blijft bewaard.",
                )

    async def crisis_signal(
        self, conversation_id: str, nickname: str, categories: tuple[str, ...]
    ) -> None:
        """A crisis signal: flag the conversation, move a waiting visitor ahead of every
        non-urgent one, and alert the supervisors (once per conversation)."""
        meta = await self.store.conversation(conversation_id) or {}
        first = meta.get("crisis") != "1"
        if meta.get("state") == "waiting":
            await self.store.prioritise(conversation_id, PRIORITY_CRISIS, crisis=True)
            self.request_assignment()
        else:
            await self.store.update_conversation(conversation_id, {"crisis": "1"})
        log.warning(
            "crisis_signal", conversation_id=conversation_id, categories=categories, first=first
        )
        if first:
            await self.store.publish(
                event(
                    "alert",
                    kind="crisis",
                    c=conversation_id,
                    message=f"Crisissignaal bij {nickname} / crisis signal "
                    f"({', '.join(categories)})",
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
        """A trainee is only assigned while at least one supervisor watches them."""
        key = self.store.keys.trainee_watchers(trainee_id)
        if on:
            await self.store.r.sadd(key, supervisor_id)
        else:
            await self.store.r.srem(key, supervisor_id)
        watched = await self.store.r.scard(key) > 0
        await self.store.r.hset(
            self.store.keys.staff_state(trainee_id), "watched", "1" if watched else "0"
        )
        await self.store.publish(event("status", s=trainee_id))

    async def stats_fact(self, kind: str, **fields: Any) -> None:
        """Hook for anonymous statistics facts (no text, no nickname)."""
        log.debug("fact", kind=kind, **fields)
