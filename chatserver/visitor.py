"""The visitor socket: ``hello`` → ``welcome`` → ``queued`` → ``assigned`` → chat → ``ended``."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

import structlog
from redis.exceptions import RedisError

from chatserver.connection import Connection
from chatserver.errors import CloseCode, ErrorCode, FrameError
from chatserver.events import event
from chatserver.frames import Hello, Leave, Say, Survey, Typing, VisitorFrame, ack_frame
from chatserver.hub import VisitorLink
from chatserver.retention import forget_conversation
from chatserver.service import Service
from chatserver.store import new_id
from moderation import analyse, redact
from nickname import NicknameError, nickname_key, taken_message, validate
from queueing.policy import queue_score
from queueing.topics import topics_for

log = structlog.get_logger("chatserver.visitor")

RESUME_TTL = 86400
PII_WARNING = {
    "nl": "Let op: je deelde misschien persoonlijke gegevens, zoals een telefoonnummer of "
    "adres. Dat hoeft niet: je mag hier anoniem blijven. We bewaren het niet.",
    "en": "Heads up: you may have shared personal details, like a phone number or address. "
    "You don't have to: you can stay anonymous here. We don't keep them.",
}
HISTORY_LOST = {
    "nl": "Door een storing zijn de laatste berichten niet bewaard. Sorry! Schrijf gerust "
    "opnieuw wat je wilde zeggen.",
    "en": "Because of a fault the latest messages were not kept. Sorry! Please write again "
    "what you wanted to say.",
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class VisitorSession:
    """One visitor socket's state; frames come in through :meth:`handle`."""

    def __init__(self, service: Service, conn: Connection, address: str = "") -> None:
        #: Keyed hash of the client address (never the address); kept 24 h for blocks.
        self.address = address
        self.service = service
        self.store = service.store
        self.conn = conn
        self.link: VisitorLink | None = None
        self.nickname = ""
        self.lang = "nl"

    @property
    def conversation_id(self) -> str | None:
        return self.link.conversation_id if self.link else None

    async def handle(self, frame: VisitorFrame) -> None:
        if isinstance(frame, Hello):
            await self._hello(frame)
            return
        if self.link is None:
            raise FrameError(ErrorCode.CONFLICT, "send hello first")
        if isinstance(frame, Say):
            await self._say(frame)
        elif isinstance(frame, Typing):
            if self.link.state == "active":
                await self.service.typing(
                    self.link.conversation_id, "visitor", frame.active, self.conn.id
                )
        elif isinstance(frame, Leave) and frame.forget:
            await self._forget(frame)
        elif isinstance(frame, Leave):
            await self._leave()
        elif isinstance(frame, Survey):
            await self._survey(frame)

    async def closed(self) -> None:
        if self.link is None:
            return
        self.service.hub.remove_visitor(self.conn, self.link.conversation_id)
        if self.link.state in ("waiting", "active"):
            await self.service.visitor_dropped(self.link.conversation_id, self.conn.id)

    # -- hello ----------------------------------------------------------------------
    async def _hello(self, frame: Hello) -> None:
        if self.link is not None:
            raise FrameError(ErrorCode.CONFLICT, "hello was already sent")
        self.lang = frame.lang
        if frame.previous_token and await self.store.is_blocked(
            token_hash=token_hash(frame.previous_token)
        ):
            # The browser of a blocked chat, new or resumed.
            self.conn.close(CloseCode.POLICY, "blocked")
            return
        if frame.resume is not None:
            await self._resume(frame)
            return
        assert frame.nickname is not None
        try:
            nickname = validate(frame.nickname, frame.lang)
        except NicknameError as exc:
            raise FrameError(ErrorCode.NICKNAME_INVALID, exc.message) from None
        settings = self.service.settings
        now = self.service.clock()
        closed, opens_at = self.service.closed_now()
        if closed:
            self._closed("outside_hours", opens_at)
            return
        topics = {t.id: t for t in topics_for(settings.topics)}
        if frame.topic is not None and frame.topic not in topics:
            raise FrameError(ErrorCode.INVALID, "field 'topic' is not one of the topics")
        conv, visitor_id = new_id(), new_id()
        token = secrets.token_urlsafe(24)
        fields = {
            "state": "waiting",
            "visitor_id": visitor_id,
            "nickname": nickname,
            "nick_key": nickname_key(nickname),
            "topic": frame.topic or "",
            "lang": frame.lang,
            "entry": frame.entry or "",
            "created": repr(now),
            "enqueued": repr(now),
            "priority": "0",
            "crisis": "0",
            "token_hash": token_hash(token),
        }
        result = await self._open(conv, nickname, now, token, fields)
        if result == -1:
            raise FrameError(ErrorCode.NICKNAME_TAKEN, taken_message(frame.lang))
        if result == -2:
            self._closed("queue_full")
            return
        # The conversation exists with a grace deadline (hello.lua): until the socket is
        # attached, a failure anywhere leaves it to the grace sweeper, never queued forever.
        try:
            attached = await self.store.attach_visitor(conv, nickname_key(nickname), self.conn.id)
        except (RedisError, OSError, asyncio.CancelledError):
            # Whether the attach ran is unknown: record the drop, replayed once Redis answers
            # (it releases a presence this socket got, starting the normal grace). The socket
            # stays usable for a fresh hello.
            self.service.drop_unrecorded("v", conv, self.conn.id)
            raise
        self.nickname = nickname
        log.info("visitor_queued", conversation_id=conv, attached=attached)
        self.conn.send(
            {
                "type": "welcome",
                "visitor_id": visitor_id,
                "conversation_id": conv,
                "nickname": nickname,
                "resume_token": token,
            }
        )
        self.link = VisitorLink(self.conn, conv, "waiting", self.lang)
        self.service.hub.add_visitor(self.link)
        # From here a failure is told `unavailable`, after the welcome: the client has its
        # resume token and the conversation its presence (a close starts the grace).
        if self.address:
            await self.store.remember_address(conv, self.address)
        if frame.topic and topics[frame.topic].crisis:  # a topic marked crisis = true
            await self.service.crisis_signal(conv, nickname, ("topic",))
        await self._catch_up()
        if self.link.state == "waiting":
            await self.service.hub.update_positions(force=self.link)
        self.service.request_assignment()

    async def _open(
        self, conv: str, nickname: str, now: float, token: str, fields: dict[str, str]
    ) -> int:
        """hello.lua: the conversation, queued, with a grace deadline until attached.

        The nickname may be held by an earlier hello that never got a socket attached (it
        failed half-way, most likely this visitor's own, and without a welcome it cannot
        resume): that orphan is ended (``timeout``) and the hello tried once more."""
        settings = self.service.settings
        grace = settings.grace.visitor_seconds
        for attempt in range(2):
            result = await self.store.open_conversation(
                conv,
                nickname_key(nickname),
                queue_score(0, now),
                token_hash(token),
                RESUME_TTL,
                settings.queue.max_waiting,
                fields,
                grace_deadline=now + grace,
                grace_seconds=grace,
            )
            if result != -1 or attempt:
                return result
            orphan = await self.store.pending_hello(nickname_key(nickname))
            if orphan is None or await self.service.end(orphan, "timeout") is None:
                return result
            log.info("hello_orphan_ended", conversation_id=orphan)
        return -1

    async def _catch_up(self) -> None:
        """Events published before this socket was registered in the hub are not lost:
        re-read the state once registered. No await between check and change, so the
        hub and this never both send the same frame."""
        assert self.link is not None
        conv = self.link.conversation_id
        meta = await self.store.conversation(conv) or {}
        state = meta.get("state", "ended")
        if state == "active" and self.link.state == "waiting":
            self.link.state = "active"
            self.conn.send(
                {
                    "type": "assigned",
                    "conversation_id": conv,
                    "counsellor": meta.get("counsellor_name", ""),
                }
            )
        elif state == "ended" and self.link.state != "ended":
            self.link.state = "ended"
            self.conn.send(
                {"type": "ended", "conversation_id": conv, "reason": meta.get("reason", "timeout")}
            )

    def _closed(self, reason: str, opens_at: str | None = None) -> None:
        texts = self.service.settings.texts
        if reason == "queue_full":
            message = texts.queue_full_en if self.lang == "en" else texts.queue_full_nl
        else:
            message = texts.closed_en if self.lang == "en" else texts.closed_nl
        self.conn.send(
            {"type": "closed", "reason": reason, "opens_at": opens_at, "message": message}
        )
        self.conn.close(1000, reason)

    async def _resume(self, frame: Hello) -> None:
        assert frame.resume is not None
        if await self.store.is_blocked(token_hash=token_hash(frame.resume)):
            self.conn.close(CloseCode.POLICY, "blocked")
            return
        conv = await self.store.resume_target(token_hash(frame.resume))
        meta = await self.store.conversation(conv) if conv else None
        if conv is None or meta is None:
            raise FrameError(
                ErrorCode.RESUME_INVALID,
                "Dit gesprek bestaat niet meer."
                if self.lang == "nl"
                else "This conversation no longer exists.",
            )
        state = meta.get("state", "ended")
        self.nickname = meta.get("nickname", "")
        self.conn.send(
            {
                "type": "welcome",
                "visitor_id": meta.get("visitor_id", ""),
                "conversation_id": conv,
                "nickname": self.nickname,
                "resume_token": frame.resume,
            }
        )
        self.link = VisitorLink(self.conn, conv, state, self.lang)
        log.info("visitor_resumed", conversation_id=conv, state=state)
        with self.conn.syncing(conv):
            self.service.hub.add_visitor(self.link)
            if state != "ended":
                await self.service.visitor_returned(conv, self.conn.id)
            if state == "active":
                self.conn.send(
                    {
                        "type": "assigned",
                        "conversation_id": conv,
                        "counsellor": meta.get("counsellor_name", ""),
                    }
                )
            count = await self.store.message_count(conv)
            if frame.last_seq > count:
                # The store has fewer messages than this client saw: Redis lost history
                # (a crash without fsync, a failover). Say so rather than show a silent gap.
                log.warning(
                    "history_lost", conversation_id=conv, client=frame.last_seq, stored=count
                )
                self.conn.send(
                    {
                        "type": "notice",
                        "conversation_id": conv,
                        "code": "history_lost",
                        "message": HISTORY_LOST[self.lang],
                        "stored_seq": count,
                    }
                )
            self.conn.seqs[conv] = min(frame.last_seq, count)
            missed = await self.store.messages(conv, after=self.conn.seqs[conv])
            self.conn.send_history(conv, missed)
        if state == "ended":
            self.conn.send(
                {"type": "ended", "conversation_id": conv, "reason": meta.get("reason", "timeout")}
            )
            return
        await self._catch_up()
        if self.link.state == "waiting":
            await self.service.hub.update_positions(force=self.link)

    # -- chat ------------------------------------------------------------------------
    async def _say(self, frame: Say) -> None:
        assert self.link is not None
        self.service.require_live()
        if self.link.state not in ("waiting", "active"):
            raise FrameError(ErrorCode.CONFLICT, "the conversation has ended")
        conv = self.link.conversation_id
        ref_key = f"v:{frame.ref}" if frame.ref is not None else None
        check = analyse(frame.text)
        flags = tuple(
            name
            for name, hit in (
                ("crisis", check.crisis),
                ("abuse", check.abuse),
                ("pii", bool(check.pii)),
            )
            if hit
        )
        result = await self.store.say(
            conv,
            ref_key,
            "visitor",
            self.nickname,
            frame.text,
            self.service.clock(),
            self.conn.id,
            flags=flags,
            stored_text=redact(frame.text) if check.pii else None,
        )
        self.conn.stored_own(conv, result.seq)
        self.conn.send(ack_frame(frame.ref, result.seq))
        if result.duplicate:
            return
        marks = tuple(f for f in flags if f in ("abuse", "pii"))
        if marks and await self.store.add_flags(conv, marks):
            await self.store.publish(event("overview"))
        if check.pii:
            self.conn.send(
                {
                    "type": "notice",
                    "conversation_id": conv,
                    "code": "pii_warning",
                    "message": PII_WARNING[self.lang],
                }
            )
        if check.crisis:
            await self.service.crisis_signal(conv, self.nickname, check.crisis_categories)

    async def _leave(self) -> None:
        assert self.link is not None
        if self.link.state == "ended":
            raise FrameError(ErrorCode.CONFLICT, "the conversation has already ended")
        await self.service.end(self.link.conversation_id, "visitor_left")

    async def _forget(self, frame: Leave) -> None:
        """Right after the end, the visitor may delete their own conversation at once."""
        assert self.link is not None
        if self.link.state != "ended":
            raise FrameError(ErrorCode.CONFLICT, "forget comes after the conversation ends")
        await forget_conversation(self.store, self.link.conversation_id)
        log.info("visitor_forgot", conversation_id=self.link.conversation_id)
        self.conn.send({"type": "ack", "ref": frame.ref, "seq": None})

    async def _survey(self, frame: Survey) -> None:
        assert self.link is not None
        if self.link.state != "ended":
            raise FrameError(ErrorCode.CONFLICT, "a survey comes after the conversation ends")
        fields: dict[str, Any] = {"survey_rating": str(frame.rating)}
        if frame.understood is not None:
            fields["survey_understood"] = "1" if frame.understood else "0"
        if frame.comment:
            fields["survey_comment"] = redact(frame.comment)  # no personal data kept
        await self.store.update_conversation(self.link.conversation_id, fields)
        anonymous = {k: v for k, v in fields.items() if k != "survey_comment"}
        await self.store.update_fact(self.link.conversation_id, anonymous)
        self.conn.send({"type": "ack", "ref": frame.ref, "seq": None})
