"""This process's sockets, and the one listener that routes events to them.

Every process subscribes to the one event channel. Stored messages reach each party
through :meth:`Connection.deliver`, which notices a gap in ``seq`` (a lost pub/sub
message, a reconnect of the subscriber) and fills it from the store, so delivery follows
from the store and not from fire-and-forget pub/sub alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import types
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import structlog
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatserver.codec import Outgoing
from chatserver.connection import Connection
from chatserver.errors import CloseCode
from chatserver.events import Event, MessageEvent, decode_event
from chatserver.store import Store
from queueing.eta import estimate_waits
from queueing.hours import helped_before_closing

CLOSING_SOON = {
    "nl": "Eerlijk is eerlijk: de chat sluit waarschijnlijk voordat jij aan de beurt bent. "
    "Je mag blijven wachten. Heb je nu hulp nodig? Bel 113 (0800-0113) of in nood 112.",
    "en": "To be honest: the chat will probably close before it is your turn. You may keep "
    "waiting. Need help now? Call 113 (0800-0113), or 112 in an emergency.",
}

#: Notices to visitors, in their language (``lang`` on the conversation).
VISITOR_TEXTS: dict[str, dict[str, str]] = {
    "counsellor_reconnecting": {
        "nl": "De verbinding van je hulpverlener is even weg. Blijf gerust, je gesprek "
        "blijft bewaard.",
        "en": "Your counsellor's connection dropped for a moment. Don't worry, your "
        "conversation is kept.",
    },
    "counsellor_back": {
        "nl": "Je hulpverlener is er weer.",
        "en": "Your counsellor is back.",
    },
    "transferred": {
        "nl": "Je gesprek gaat verder met een andere hulpverlener. Je berichten blijven staan.",
        "en": "Your conversation continues with another counsellor. Your messages stay.",
    },
    "requeued": {
        "nl": "Je hulpverlener kan niet verder. Je staat vooraan in de rij voor de volgende "
        "hulpverlener; je berichten blijven staan.",
        "en": "Your counsellor cannot go on. You are first in line for the next counsellor; "
        "your messages stay.",
    },
    "history_lost": {
        "nl": "Door een storing zijn de laatste berichten niet bewaard. Sorry! Schrijf gerust "
        "opnieuw wat je wilde zeggen.",
        "en": "Because of a fault the latest messages were not kept. Sorry! Please write "
        "again what you wanted to say.",
    },
    "closing_soon": CLOSING_SOON,
}
#: Staff read both languages in one text (as alerts do).
HISTORY_LOST_STAFF = (
    "Door een storing zijn berichten na dit punt niet bewaard. / Messages after this point "
    "were lost by the store."
)


def visitor_text(code: str, lang: str) -> str:
    texts = VISITOR_TEXTS[code]
    return texts.get(lang) or texts["nl"]


log = structlog.get_logger("chatserver.hub")


def whisper_frame(conversation_id: str, whisper: Mapping[str, Any]) -> dict[str, Any]:
    """The ``whisper`` frame staff get, live or with a history (never a visitor)."""
    return {
        "type": "whisper",
        "conversation_id": conversation_id,
        "author": whisper["author"],
        "text": whisper["text"],
        "ts": whisper["ts"],
    }


def eta_moved(told: int | None, now: int | None) -> bool:
    """Whether a waiting visitor should hear a new estimate although the place is the same:
    it appeared or vanished, or moved by at least a minute and a quarter of what was told."""
    if told is None or now is None:
        return told != now
    return abs(now - told) >= max(60, told // 4)


class VisitorLink:
    """What the hub knows of a local visitor socket."""

    __slots__ = ("conn", "conversation_id", "eta", "lang", "position", "state", "warned_closing")

    def __init__(
        self, conn: Connection, conversation_id: str, state: str, lang: str = "nl"
    ) -> None:
        self.conn = conn
        self.conversation_id = conversation_id
        self.state = state
        self.lang = lang if lang in ("nl", "en") else "nl"
        self.position: int | None = None
        self.eta: int | None = None
        self.warned_closing = False


#: (handling times, places on shift, free places, abandonment share, ages, wrap-up left)
WaitFigures = tuple[list[float], int, int, float, list[float], list[float]]


class Hub:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.visitors: dict[str, VisitorLink] = {}
        self.staff: dict[str, set[Connection]] = defaultdict(set)
        #: Staff connections following a conversation: its counsellor's sockets, watchers.
        self.followers: dict[str, set[Connection]] = defaultdict(set)
        self._positions_due = asyncio.Event()
        #: The waiting count staff sockets were last told, and the sockets not told yet.
        self._told_waiting: int | None = None
        self._untold_staff: set[Connection] = set()
        self._overview_due = asyncio.Event()
        self.overview_subscribers: set[Connection] = set()
        #: Local supervisor sockets following a trainee: trainee staff id -> sockets.
        self.trainee_watchers: dict[str, set[Connection]] = defaultdict(set)
        self.build_overview: Callable[[], Awaitable[dict[str, Any]]] | None = None
        self.on_auto_watch: Callable[[Connection, str], Awaitable[None]] | None = None
        self.on_assignable: Callable[[], None] = lambda: None
        self.closes_at: Callable[[], float | None] = lambda: None
        self.connected = False
        #: Subscribed and caught up since the last (re)subscription: writes may go on.
        self.ready = False
        self._background: set[asyncio.Future[None]] = set()
        self.stopping = False
        self.clock: Callable[[], float] = time.time
        #: When eta is unknown, a conversation is assumed to take this long (closing check).
        self.assumed_handling_seconds = 900.0
        #: Waiting visitors are looked at this often even when nothing changed (closing).
        self.recheck_seconds = 30.0
        #: Seconds the figures behind waiting estimates are used again: one read touches
        #: every staff hash and every active conversation, and a burst of arrivals would
        #: otherwise read them once per visitor. Whatever changes the places (a status,
        #: an assignment, an end, a requeue or transfer) has them read afresh.
        self.figures_seconds = 1.0
        #: Least seconds between two reads: under a stream of assignments (each one a
        #: change) the reads would otherwise follow one another without pause.
        self.figures_min_interval = 0.1
        #: (as of, figures, changes counted when the read began)
        self._figures: tuple[float, WaitFigures, int] | None = None
        self._figures_lock = asyncio.Lock()
        self._figures_changes = 0
        self._figures_read_at = -math.inf  # loop time of the last read
        #: Times the figures were read from Redis (tests and benchmarks look).
        self.figures_reads = 0

    # -- registry -----------------------------------------------------------------
    def add_visitor(self, link: VisitorLink) -> None:
        old = self.visitors.get(link.conversation_id)
        if old is not None and old.conn is not link.conn:
            old.conn.close(1000, "resumed elsewhere")
        self.visitors[link.conversation_id] = link

    def remove_visitor(self, conn: Connection, conversation_id: str) -> None:
        link = self.visitors.get(conversation_id)
        if link is not None and link.conn is conn:
            del self.visitors[conversation_id]

    def add_staff(self, staff_id: str, conn: Connection) -> None:
        self.staff[staff_id].add(conn)
        self._untold_staff.add(conn)

    def supervisors(self) -> list[Connection]:
        return [c for conns in self.staff.values() for c in conns if c.supervises]

    def remove_staff(self, staff_id: str, conn: Connection) -> None:
        self.staff[staff_id].discard(conn)
        if not self.staff[staff_id]:
            del self.staff[staff_id]
        self.overview_subscribers.discard(conn)
        self._untold_staff.discard(conn)
        for conns in self.trainee_watchers.values():
            conns.discard(conn)
        for conv in [c for c, conns in self.followers.items() if conn in conns]:
            self.unfollow(conv, conn)

    def follow(self, conversation_id: str, conn: Connection) -> None:
        self.followers[conversation_id].add(conn)

    def unfollow(self, conversation_id: str, conn: Connection) -> None:
        conns = self.followers.get(conversation_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.followers[conversation_id]
        conn.seqs.pop(conversation_id, None)

    # -- listening ------------------------------------------------------------------
    #: Seconds with nothing on the subscription before it is sent a PING ...
    listen_ping_seconds: ClassVar[float] = 5.0
    #: ... and seconds its pong (or anything else) may take before the subscription counts
    #: as lost: a peer gone silent (a NAT or load balancer that dropped the connection
    #: without a reset, a frozen network) never fails a read, it just never answers.
    listen_pong_seconds: ClassVar[float] = 5.0

    async def listen(self) -> None:
        """Subscribe and route, reconnecting with capped exponential backoff. A subscription
        that fails, or that stops answering pings, is lost: resubscribe and resync."""
        delay = 0.1
        while not self.stopping:
            pubsub = self.store.subscriber.pubsub()
            self._notice_silent_reconnects(pubsub)
            try:
                await pubsub.subscribe(self.store.keys.channel)
                # The reply, before anything counts as subscribed: a new connection into a
                # silent path takes the SUBSCRIBE and never answers.
                if await pubsub.get_message(timeout=self.listen_pong_seconds) is None:
                    raise RedisTimeoutError("the subscription was not confirmed")
                self.connected = True
                delay = 0.1
                await self.resync()
                self.ready = True
                await self._route_while_answering(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.connected = self.ready = False
                log.warning("event_listener_lost", error=type(exc).__name__, retry_in=delay)
            finally:
                self.connected = self.ready = False
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _route_while_answering(self, pubsub: Any) -> None:
        """Route what arrives until the subscription fails, or stays quiet for
        ``listen_ping_seconds`` and then answers no PING within ``listen_pong_seconds``
        (raises redis' TimeoutError). A subscribed connection answers PING with a ``pong``
        message in the stream. One task reads and routes, and only counts what arrives (no
        timer per message); this one looks at the count now and then."""
        heard = 0

        async def route() -> None:
            nonlocal heard
            async for message in pubsub.listen():
                heard += 1
                if message["type"] == "message":
                    await self.dispatch(message["data"])

        reader = asyncio.create_task(route(), name="event-listener-reader")
        try:
            seen = heard
            while not await self._ended(reader, self.listen_ping_seconds):
                if heard == seen:
                    await pubsub.ping()
                    if await self._ended(reader, self.listen_pong_seconds):
                        return
                    if heard == seen:
                        raise RedisTimeoutError("the subscription answered no ping")
                seen = heard
        finally:
            reader.cancel()
            await asyncio.wait({reader})
            if not reader.cancelled():
                reader.exception()  # retrieved: it ended (or failed) just before the cancel

    @staticmethod
    async def _ended(reader: asyncio.Task[None], seconds: float) -> bool:
        """Whether ``reader`` ended within ``seconds``; its error, if any, is raised."""
        done, _ = await asyncio.wait({reader}, timeout=seconds)
        if done:
            reader.result()
        return bool(done)

    def _notice_silent_reconnects(self, pubsub: Any) -> None:
        """redis-py reconnects a pub/sub connection and resubscribes by itself, without
        ``listen`` ever failing: hook that, so what was published meanwhile is resynced
        (and writes wait for it) exactly as after a reconnect of our own."""
        resubscribe = pubsub.on_connect

        async def on_connect(_pubsub: Any, connection: Any) -> None:
            await resubscribe(connection)
            if self.ready:
                self.ready = False
                task = asyncio.ensure_future(self._resync_after_reconnect())
                self._background.add(task)
                task.add_done_callback(self._background.discard)

        # A bound method (the client keeps only a weak reference), held by the pubsub.
        setattr(pubsub, "on_connect", types.MethodType(on_connect, pubsub))  # noqa: B010

    async def _resync_after_reconnect(self) -> None:
        log.warning("event_listener_resubscribed")
        while not self.stopping and self.connected:
            try:
                await self.resync()
            except (RedisError, OSError) as exc:
                log.warning("resync_failed", error=type(exc).__name__)
                await asyncio.sleep(0.5)
            else:
                self.ready = self.connected
                return

    async def resync(self) -> None:
        """After (re)subscribing: fetch whatever was published while we were away."""
        for conv in set(self.followers) | set(self.visitors):
            meta = await self.store.conversation(conv)
            if meta is not None and meta.get("state") == "ended":
                # Ended while we were not subscribed: the ``ended`` event is gone, the state not.
                await self._on_ended(Event("ended", {"c": conv, "r": meta.get("reason", "")}))
                continue
            count = await self.store.message_count(conv)
            conns = [(c, HISTORY_LOST_STAFF) for c in self.followers.get(conv, ())]
            if conv in self.visitors:
                link = self.visitors[conv]
                conns.append((link.conn, visitor_text("history_lost", link.lang)))
            for conn, text in conns:
                seen = conn.seqs.get(conv, count)
                if seen < count:
                    await self._fill(conn, conv, count)
                elif seen > count:
                    log.warning("history_lost", conversation_id=conv, seen=seen, stored=count)
                    conn.seqs[conv] = count
                    conn.send(
                        {
                            "type": "notice",
                            "conversation_id": conv,
                            "code": "history_lost",
                            "stored_seq": count,
                            "message": text,
                        }
                    )
        self._positions_due.set()

    async def dispatch(self, payload: bytes) -> None:
        try:
            ev = decode_event(payload)
            if isinstance(ev, MessageEvent):
                await self._on_message(ev)
            else:
                handler = self._handlers.get(ev.kind)
                if handler is not None:
                    await handler(self, ev)
        except RedisError:
            raise
        except Exception:
            log.exception("event_dispatch_failed")

    def _parties(self, conversation_id: str) -> list[Connection]:
        conns = list(self.followers.get(conversation_id, ()))
        link = self.visitors.get(conversation_id)
        if link is not None:
            conns.append(link.conn)
        return conns

    async def _on_message(self, ev: MessageEvent) -> None:
        out = Outgoing(ev.message.frame(ev.conversation_id))
        for conn in self._parties(ev.conversation_id):
            own = conn.id == ev.conn_id
            if not conn.deliver(ev.conversation_id, ev.message, out, own=own):
                await self._fill(conn, ev.conversation_id, ev.message.seq)

    async def _fill(self, conn: Connection, conversation_id: str, until: int) -> None:
        after = conn.seqs.get(conversation_id, 0)
        missing = await self.store.messages(conversation_id, after=after, until=until)
        log.info("gap_filled", conversation_id=conversation_id, count=len(missing))
        conn.send_history(conversation_id, missing)

    async def _on_queue(self, ev: Event) -> None:
        self._positions_due.set()
        self._overview_due.set()

    async def _on_assigned(self, ev: Event) -> None:
        self.figures_changed()
        conv, staff_id = ev.data["c"], ev.data["s"]
        link = self.visitors.get(conv)
        meta = None
        if link is not None or staff_id in self.staff:
            meta = await self.store.conversation(conv)
        if meta is None:
            return
        link = self.visitors.get(conv)  # again: the await above let the visitor move on
        # Only a link still waiting is told (the visitor's own catch-up may have told it).
        if link is not None and link.state == "waiting":
            link.state = "active"
            link.position = None
            link.conn.send(
                {
                    "type": "assigned",
                    "conversation_id": conv,
                    "counsellor": meta.get("counsellor_name", ""),
                }
            )
        for conn in list(self.staff.get(staff_id, ())):
            await self.send_assigned(conn, conv, meta)
        if self.on_auto_watch is not None:
            for conn in list(self.trainee_watchers.get(staff_id, ())):
                await self.on_auto_watch(conn, conv)
        self._overview_due.set()

    async def send_assigned(
        self,
        conn: Connection,
        conversation_id: str,
        meta: dict[str, str],
        extra: dict[str, Any] | None = None,
    ) -> None:
        """The staff ``assigned`` frame with the whole history; then live messages follow."""
        if conn in self.followers.get(conversation_id, ()):
            return
        self.follow(conversation_id, conn)
        with conn.syncing(conversation_id):
            # at once: the listener waits for these before it routes the next event
            history, whispers = await asyncio.gather(
                self.store.messages(conversation_id), self.store.whispers(conversation_id)
            )
            assigned_at = float(meta.get("assigned") or time.time())
            frame: dict[str, Any] = {
                "type": "assigned",
                "conversation_id": conversation_id,
                "visitor_id": meta.get("visitor_id", ""),
                "visitor": meta.get("nickname", ""),
                "topic": meta.get("topic") or None,
                "waited_seconds": round(assigned_at - float(meta.get("enqueued") or 0), 1),
                "history": [m.frame(conversation_id) for m in history],
                "transfer_note": meta.get("transfer_note") or None,
                "whispers": [whisper_frame(conversation_id, w) for w in whispers],
                **(extra or {}),
            }
            conn.send(frame)
            if history:
                conn.seqs[conversation_id] = history[-1].seq

    async def _on_ended(self, ev: Event) -> None:
        self.figures_changed()
        conv, reason = ev.data["c"], ev.data["r"]
        frame = Outgoing({"type": "ended", "conversation_id": conv, "reason": reason})
        link = self.visitors.get(conv)
        if link is not None and link.state != "ended":  # told once (a resync may repeat it)
            link.state = "ended"
            link.conn.send(frame)
            if reason == "blocked":
                link.conn.close(CloseCode.POLICY, "blocked")
        for conn in list(self.followers.get(conv, ())):
            conn.send(frame)
            self.unfollow(conv, conn)
        self.on_assignable()
        self._overview_due.set()

    async def _on_typing(self, ev: Event) -> None:
        conv = ev.data["c"]
        frame = Outgoing(
            {
                "type": "typing",
                "conversation_id": conv,
                "from": ev.data["from"],
                "active": ev.data["active"],
            }
        )
        for conn in self._parties(conv):
            if conn.id != ev.data.get("conn"):
                conn.send(frame)

    async def _on_notice(self, ev: Event) -> None:
        conv = ev.data["c"]
        frame = Outgoing(
            {
                "type": "notice",
                "conversation_id": conv,
                "code": ev.data["code"],
                "message": ev.data.get("message", ""),
            }
        )
        to = ev.data["to"]
        if to == "visitor":
            link = self.visitors.get(conv)
            if link is not None:
                link.conn.send(frame)
        else:
            only = to[6:] if to.startswith("staff:") else None
            for conn in list(self.followers.get(conv, ())):
                if only is None or conn.staff_id == only:
                    conn.send(frame)

    async def _on_status(self, ev: Event) -> None:
        self.figures_changed()
        self.on_assignable()
        self._overview_due.set()

    async def _on_logout(self, ev: Event) -> None:
        for conns in list(self.staff.values()):
            for conn in list(conns):
                if conn.session == ev.data["session"]:
                    conn.close(4401, "logged out")

    async def _on_sessions_revoked(self, ev: Event) -> None:
        """An account was disabled or its password reset: its sockets here close 4401."""
        for conn in list(self.staff.get(ev.data["s"], ())):
            conn.close(CloseCode.UNAUTHORISED, "session ended")

    async def _on_whisper(self, ev: Event) -> None:
        """Whispers go to the conversation's staff followers only: never a visitor link."""
        conv = ev.data["c"]
        frame = Outgoing(whisper_frame(conv, ev.data))
        for conn in list(self.followers.get(conv, ())):
            conn.send(frame)

    async def _on_alert(self, ev: Event) -> None:
        frame: dict[str, Any] = {
            "type": "alert",
            "kind": ev.data["kind"],
            "message": ev.data.get("message", ""),
        }
        if ev.data.get("c"):
            frame["conversation_id"] = ev.data["c"]
        out = Outgoing(frame)
        for conn in self.supervisors():
            conn.send(out)

    async def _on_overview(self, ev: Event) -> None:
        self._overview_due.set()

    def _release_staff(self, conv: str, staff_id: str, reason: str) -> None:
        frame = Outgoing({"type": "ended", "conversation_id": conv, "reason": reason})
        for conn in list(self.followers.get(conv, ())):
            if conn.staff_id == staff_id:
                conn.send(frame)
                self.unfollow(conv, conn)

    async def _on_requeued(self, ev: Event) -> None:
        self.figures_changed()
        conv, old = ev.data["c"], ev.data["s"]
        self._release_staff(conv, old, "transferred")
        link = self.visitors.get(conv)
        if link is not None:
            link.state = "waiting"
            link.position = None
            link.conn.send(
                {
                    "type": "notice",
                    "conversation_id": conv,
                    "code": "transferred",
                    "message": visitor_text("requeued", link.lang),
                }
            )
        self._positions_due.set()
        self._overview_due.set()

    async def _on_transferred(self, ev: Event) -> None:
        self.figures_changed()
        conv, old, new = ev.data["c"], ev.data["from"], ev.data["to"]
        self._release_staff(conv, old, "transferred")
        link = self.visitors.get(conv)
        if link is not None:
            link.conn.send(
                {
                    "type": "notice",
                    "conversation_id": conv,
                    "code": "transferred",
                    "message": visitor_text("transferred", link.lang),
                }
            )
            link.conn.send(
                {"type": "assigned", "conversation_id": conv, "counsellor": ev.data.get("name", "")}
            )
        if new in self.staff:
            meta = await self.store.conversation(conv)
            if meta is not None:
                for conn in list(self.staff[new]):
                    self.unfollow(conv, conn)
                    await self.send_assigned(conn, conv, meta)
        self._overview_due.set()

    _handlers: ClassVar[dict[str, Callable[[Hub, Event], Any]]] = {
        "queue": _on_queue,
        "assigned": _on_assigned,
        "ended": _on_ended,
        "typing": _on_typing,
        "notice": _on_notice,
        "status": _on_status,
        "whisper": _on_whisper,
        "logout": _on_logout,
        "sessions_revoked": _on_sessions_revoked,
        "alert": _on_alert,
        "overview": _on_overview,
        "requeued": _on_requeued,
        "transferred": _on_transferred,
    }

    # -- queue positions ------------------------------------------------------------
    async def positions_loop(self, min_interval: float = 0.25) -> None:
        """Send ``queued`` to each local waiting visitor whose position changed; every
        ``recheck_seconds`` look again anyway, as closing time comes nearer by itself.

        Coalesced: events during a run or the ``min_interval`` pause after it make one
        more run (the trailing edge, so the last state is always sent), however many."""
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.recheck_seconds):
                    await self._positions_due.wait()
            self._positions_due.clear()
            try:
                await self.update_positions()
            except RedisError as exc:
                log.warning("positions_update_failed", error=type(exc).__name__)
            await asyncio.sleep(min_interval)

    async def overview_loop(self, min_interval: float = 0.25) -> None:
        """Send a fresh overview to subscribed supervisors, at most every ``min_interval``."""
        while not self.stopping:
            await self._overview_due.wait()
            self._overview_due.clear()
            if self.overview_subscribers and self.build_overview is not None:
                try:
                    out = Outgoing(await self.build_overview())
                except RedisError as exc:
                    log.warning("overview_failed", error=type(exc).__name__)
                else:
                    for conn in list(self.overview_subscribers):
                        conn.send(out)
            await asyncio.sleep(min_interval)

    def overview_changed(self) -> None:
        self._overview_due.set()

    def positions_changed(self) -> None:
        self._positions_due.set()

    async def update_positions(self, force: VisitorLink | None = None) -> None:
        """Without ``force``: one run of :meth:`positions_loop` for every local waiting
        visitor and the staff's waiting count. With ``force`` (a visitor that just joined
        or resumed): tell that visitor its place now, reading only its own rank."""
        if force is not None:
            if force.state == "waiting":
                total, (place,) = await self.store.queue_places([force.conversation_id])
                await self._tell_places(total, [] if place is None else [(place, force)], force)
            return
        waiting_links = [v for v in self.visitors.values() if v.state == "waiting"]
        if not waiting_links and not self.staff:
            return
        total, places = await self.store.queue_places([v.conversation_id for v in waiting_links])
        self._tell_staff(total)
        here = [(p, v) for p, v in zip(places, waiting_links, strict=True) if p is not None]
        await self._tell_places(total, here, None)

    def _tell_staff(self, total: int) -> None:
        """The ``queue`` frame to every staff socket when the count changed, else only to
        the sockets that joined since it was last sent."""
        if total != self._told_waiting:
            self._told_waiting = total
            targets = [conn for conns in self.staff.values() for conn in conns]
        else:
            targets = list(self._untold_staff)
        self._untold_staff.clear()
        frame = Outgoing({"type": "queue", "waiting": total})
        for conn in targets:
            conn.send(frame)

    async def wait_figures(self, now: float) -> WaitFigures:
        """Handling times, places on shift, free places, abandonment, conversation ages and
        wrap-up left, as of ``now``: read at most once per ``figures_seconds``, and afresh
        once anything changed the places (:meth:`figures_changed`). Callers share reads: a
        caller takes any read that began after the last change it knew of, so a burst of
        arrivals during a stream of assignments waits for one read, not one each; reads
        are at least ``figures_min_interval`` apart. Ages and wrap-up are moved on by the
        time since the read."""
        known = self._figures_changes
        async with self._figures_lock:
            cached = self._figures
            if (
                cached is None
                or cached[2] < known
                or not 0 <= now - cached[0] < self.figures_seconds
            ):
                loop = asyncio.get_running_loop()
                pause = self._figures_read_at + self.figures_min_interval - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                self._figures_read_at = loop.time()
                changes = self._figures_changes
                self.figures_reads += 1
                handling = await self.store.handling_times()
                servers, free, ages, wrapup = await self.store.shift_places(now)
                abandon = await self.store.abandon_share()
                cached = self._figures = (
                    now,
                    (handling, servers, free, abandon, ages, wrapup),
                    changes,
                )
        at, (handling, servers, free, abandon, ages, wrapup), _changes = cached
        if now == at:
            return cached[1]
        gone = now - at
        left = [w - gone for w in wrapup]
        free += sum(1 for w in left if w <= 0)
        return (
            handling,
            servers,
            free,
            abandon,
            [a + gone for a in ages],
            [w for w in left if w > 0],
        )

    def figures_changed(self) -> None:
        """The places changed: callers from now on wait for a read that begins after this."""
        self._figures_changes += 1

    async def _tell_places(
        self, total: int, here: list[tuple[int, VisitorLink]], force: VisitorLink | None
    ) -> None:
        """``queued`` (and ``closing_soon``) to the waiting links at these places."""
        if not here:
            return
        now = self.clock()
        handling, servers, free, abandon, ages, wrapup = await self.wait_figures(now)
        closes_at = self.closes_at()
        # one sweep over the positions, not one search per visitor
        last = max(position for position, _ in here)
        etas = estimate_waits(last, handling, servers, free, abandon, ages, wrapup)
        for position, link in here:
            if link.state != "waiting":  # assigned or gone while the figures were read
                continue
            eta = etas[position - 1]
            if position != link.position or link is force or eta_moved(link.eta, eta):
                link.position, link.eta = position, eta
                link.conn.send(
                    {"type": "queued", "position": position, "waiting": total, "eta_seconds": eta}
                )
            if eta is None:
                # No estimate (too few samples, nobody on shift): position times a typical
                # conversation, shared over the counsellors there are (at least one).
                mean = sum(handling) / len(handling) if handling else self.assumed_handling_seconds
                eta = round(position * mean / max(1, servers))
            if not link.warned_closing and not helped_before_closing(now, closes_at, eta):
                link.warned_closing = True
                link.conn.send(
                    {
                        "type": "notice",
                        "conversation_id": link.conversation_id,
                        "code": "closing_soon",
                        "message": CLOSING_SOON[link.lang],
                    }
                )
