"""The staff socket: counsellors chat; supervisors also oversee, watch, whisper, step in.

Every frame is checked against the sender's rights, not only the handshake: a counsellor
may touch only the conversations assigned to them (or that they joined); supervisors may
oversee all; nobody but a conversation's own parties may write in it.
"""

from __future__ import annotations

from typing import Any

import structlog
from redis.exceptions import RedisError

from chatserver.auth import StaffMember
from chatserver.connection import Connection
from chatserver.errors import ErrorCode, FrameError
from chatserver.events import event, help_alert_text
from chatserver.frames import (
    ConversationFrame,
    End,
    Overview,
    Prioritise,
    Say,
    StaffFrame,
    Status,
    TraineeFrame,
    Transfer,
    Typing,
    Whisper,
    ack_frame,
)
from chatserver.service import Service
from chatserver.store import REASSIGN_REFUSALS
from chatserver.supervision import replay_alerts, start_watching, stop_watching

log = structlog.get_logger("chatserver.staff")

SUPERVISOR_FRAMES = (
    "overview",
    "watch",
    "unwatch",
    "whisper",
    "join",
    "takeover",
    "prioritise",
    "watch_trainee",
    "unwatch_trainee",
)


def frame_type(frame: StaffFrame) -> str:
    if isinstance(frame, ConversationFrame | TraineeFrame):
        return frame.type
    return {
        Status: "status",
        Say: "say",
        Typing: "typing",
        End: "end",
        Transfer: "transfer",
        Overview: "overview",
        Whisper: "whisper",
        Prioritise: "prioritise",
    }[type(frame)]


class StaffSession:
    def __init__(self, service: Service, conn: Connection, member: StaffMember) -> None:
        self.service = service
        self.store = service.store
        self.conn = conn
        self.member = member
        conn.staff_id = member.staff_id
        conn.supervises = member.supervises
        self.watched_trainees: set[str] = set()

    async def start(self) -> None:
        m = self.member
        self.service.hub.add_staff(m.staff_id, self.conn)
        await self.service.staff_connected(m.staff_id, self.conn.id)
        self.conn.send(
            {
                "type": "welcome",
                "staff_id": m.staff_id,
                "role": m.role.value,
                "display_name": m.display_name,
                "trainee": m.trainee,
            }
        )
        for conv in await self.store.staff_conversation_ids(m.staff_id):
            meta = await self.store.conversation(conv)
            if meta is not None and meta.get("state") == "active":
                await self.service.hub.send_assigned(self.conn, conv, meta)
        if m.supervises:  # whoever gets live alerts gets the ones still standing
            await replay_alerts(self.service, self.conn, m.staff_id)
        self.service.hub.positions_changed()

    async def closed(self) -> None:
        """The socket is gone: clean up first, then put the watches it ended on record.

        Only real watches (``conn.watching``) get an ``unwatch`` record, never the
        conversations this member holds. The record is best effort: a failing audit write
        is logged and never stops the clean-up.
        """
        hub = self.service.hub
        me = self.member.staff_id
        watched = [c for c in self.conn.watching if self.conn in hub.followers.get(c, ())]
        self.conn.watching.clear()
        hub.remove_staff(me, self.conn)
        for conv in watched:
            if not any(c.staff_id == me for c in hub.followers.get(conv, ())):
                await self.store.set_watching(conv, me, False)
        for trainee in self.watched_trainees:
            await self.service.trainee_watch(trainee, me, False)
        await self.service.staff_dropped(me, self.conn.id)
        if not watched:
            return
        try:
            held = set(await self.store.staff_conversation_ids(me))
            for conv in watched:
                if conv not in held:  # a watch that became this member's own chat
                    await self._audit("unwatch", conv, reason="disconnect")
        except RedisError as exc:
            log.warning(
                "unwatch_audit_failed",
                staff_id=me,
                conversations=sorted(watched),
                error=type(exc).__name__,
            )

    def _done(self, ref: str | None, conversation_id: str | None = None) -> None:
        frame: dict[str, Any] = {"type": "ack", "ref": ref, "seq": None}
        if conversation_id is not None:
            frame["conversation_id"] = conversation_id
        self.conn.send(frame)

    async def _audit(self, action: str, conversation_id: str = "", **extra: str) -> None:
        await self.store.audit(
            self.member.staff_id, self.member.role.value, action, conversation_id, extra
        )

    async def handle(self, frame: StaffFrame) -> None:
        kind = frame_type(frame)
        if kind in SUPERVISOR_FRAMES and not self.member.supervises:
            raise FrameError(ErrorCode.FORBIDDEN, "only supervisors may do this")
        if not self.member.chats:
            raise FrameError(ErrorCode.FORBIDDEN, "admins do not take part in conversations")
        handler = getattr(self, f"_on_{kind}")
        await handler(frame)

    # -- access --------------------------------------------------------------------------
    async def _meta(
        self, conversation_id: str, states: tuple[str, ...] = ("active",)
    ) -> dict[str, str]:
        meta = await self.store.conversation(conversation_id)
        if meta is None:
            raise FrameError(ErrorCode.NOT_FOUND, "no such conversation")
        if meta.get("state") not in states:
            raise FrameError(ErrorCode.CONFLICT, f"the conversation is {meta.get('state')}")
        return meta

    async def _own(self, conversation_id: str | None, *, joined_ok: bool = True) -> dict[str, str]:
        """The conversation, if this staff member holds it (or joined it) and it is active."""
        assert conversation_id is not None
        meta = await self.store.conversation(conversation_id)
        mine = meta is not None and meta.get("counsellor") == self.member.staff_id
        if meta is not None and not mine and joined_ok:
            mine = await self.store.has_joined(conversation_id, self.member.staff_id)
        if meta is None or not mine:
            raise FrameError(ErrorCode.NOT_FOUND, "no such conversation of yours")
        if meta.get("state") != "active":
            raise FrameError(ErrorCode.CONFLICT, "the conversation is not active")
        return meta

    # -- every role ------------------------------------------------------------------------
    async def _on_status(self, frame: Status) -> None:
        # The account as it is now: an admin may have changed the display name, skills or
        # trainee flag since this socket opened; the staff state must not get the old ones.
        account = await self.store.account_by_id(self.member.staff_id)
        if account is not None and account.get("role") == self.member.role.value:
            self.member = StaffMember.from_account(account)
        m = self.member
        extra = {
            "name": m.display_name,
            "skills": ",".join(m.skills),
            "trainee": "1" if m.trainee else "0",
        }
        await self.store.set_status(
            m.staff_id, frame.state, frame.capacity, self.service.clock(), extra
        )
        state = await self.store.staff_state(m.staff_id)
        log.info("staff_status", staff_id=m.staff_id, state=frame.state)
        reply: dict[str, Any] = {
            "type": "status",
            "state": frame.state,
            "capacity": int(state.get("capacity", 1)),
            "conversations": int(state.get("load", 0)),
        }
        if frame.ref is not None:
            reply["ref"] = frame.ref
        self.conn.send(reply)
        await self.store.publish(event("status", s=m.staff_id))
        self.service.request_assignment()

    async def _on_say(self, frame: Say) -> None:
        self.service.require_live()
        conv = frame.conversation_id
        await self._own(conv)
        assert conv is not None
        ref_key = f"s:{self.member.staff_id}:{frame.ref}" if frame.ref is not None else None
        result = await self.store.say(
            conv,
            ref_key,
            "counsellor",
            self.member.display_name,
            frame.text,
            self.service.clock(),
            self.conn.id,
        )
        self.conn.stored_own(conv, result.seq)
        self.conn.send(ack_frame(frame.ref, result.seq, conv))

    async def _on_typing(self, frame: Typing) -> None:
        await self._own(frame.conversation_id)
        assert frame.conversation_id is not None
        await self.service.typing(frame.conversation_id, "counsellor", frame.active, self.conn.id)

    async def _on_end(self, frame: End) -> None:
        meta = await self.store.conversation(frame.conversation_id)
        if (
            meta is not None
            and meta.get("state") == "ended"
            and meta.get("counsellor") == self.member.staff_id
        ):
            # The visitor left first: the counsellor still files the wrap-up.
            if frame.wrapup is not None:
                await self._store_wrapup(frame)
            self._done(frame.ref, frame.conversation_id)
            return
        await self._own(frame.conversation_id, joined_ok=False)
        if frame.wrapup is not None:
            await self._store_wrapup(frame)
        await self.service.end(frame.conversation_id, "counsellor_ended")
        self._done(frame.ref, frame.conversation_id)

    async def _store_wrapup(self, frame: End) -> None:
        assert frame.wrapup is not None
        fields = {
            "wrapup_topics": ",".join(frame.wrapup.topics),
            "wrapup_note": frame.wrapup.note or "",
        }
        await self.store.update_conversation(frame.conversation_id, fields)
        await self.store.update_fact(
            frame.conversation_id, {"wrapup_topics": fields["wrapup_topics"]}
        )

    async def _on_help(self, frame: ConversationFrame) -> None:
        await self._own(frame.conversation_id)
        await self._audit("help", frame.conversation_id)
        await self.store.add_flags(frame.conversation_id, ("help_requested",))
        # Kept for a supervisor who connects later (supervision.replay_alerts).
        await self.store.update_conversation(
            frame.conversation_id,
            {"help_ts": repr(self.service.clock()), "help_name": self.member.display_name},
        )
        await self.store.publish(event("overview"))
        await self.store.publish(
            event(
                "alert",
                kind="help_requested",
                c=frame.conversation_id,
                message=help_alert_text(self.member.display_name),
            )
        )
        self._done(frame.ref, frame.conversation_id)

    async def _on_block(self, frame: ConversationFrame) -> None:
        """End the conversation as blocked; keep its browser and network out for a while."""
        conv = frame.conversation_id
        meta = await self._meta(conv) if self.member.supervises else await self._own(conv)
        await self._audit("block", conv)
        seconds = int(self.service.settings.limits.block_hours * 3600)
        await self.store.block(conv, meta.get("token_hash", ""), seconds)
        await self.service.end(conv, "blocked")
        self._done(frame.ref, conv)

    async def _on_transfer(self, frame: Transfer) -> None:
        conv = frame.conversation_id
        meta = (
            await self._meta(conv)
            if self.member.supervises
            else await self._own(conv, joined_ok=False)
        )
        holder = meta.get("counsellor", "")
        note = frame.note or ""
        if frame.to is None:
            await self._audit("transfer", conv, to="queue")
            ok = await self.store.requeue(conv, holder, self.service.clock(), note)
            self.service.request_assignment()
        else:
            target = await self.store.account_by_id(frame.to)
            if target is None:
                raise FrameError(ErrorCode.NOT_FOUND, "no such colleague")
            if frame.to == holder:
                raise FrameError(ErrorCode.CONFLICT, "the conversation is already theirs")
            if target.get("role") == "admin":
                raise FrameError(ErrorCode.CONFLICT, "admins do not take part in conversations")
            await self._audit("transfer", conv, to=frame.to)
            code = await self._reassign(
                conv,
                holder,
                frame.to,
                target["display_name"],
                note,
                rules=True,
                trainee=await self.service.trainee_watched(frame.to)
                if target.get("trainee") == "1"
                else None,
            )
            if code < 0:
                reason = REASSIGN_REFUSALS[code]
                await self._transfer_refused(conv, frame.to, reason, reason)
            ok = code == 1
        if not ok:
            to = frame.to or "queue"
            reason = "the conversation changed"
            await self._transfer_refused(conv, to, reason, f"{reason}; try again")
        self._done(frame.ref, conv)

    async def _transfer_refused(self, conv: str, to: str, reason: str, message: str) -> None:
        """The attempt is on record already (``transfer``); its refusal goes there too (best
        effort: the answer does not wait on it), then the sender gets a conflict."""
        try:
            await self._audit("transfer_refused", conv, to=to, reason=reason)
        except RedisError as exc:
            log.warning(
                "refusal_audit_failed",
                staff_id=self.member.staff_id,
                conversation_id=conv,
                error=type(exc).__name__,
            )
        raise FrameError(ErrorCode.CONFLICT, message)

    async def _reassign(
        self,
        conv: str,
        old: str,
        new: str,
        name: str,
        note: str,
        *,
        rules: bool = False,
        trainee: bool | None = None,
    ) -> int:
        # The hub tells the visitor, in the visitor's language.
        published = event("transferred", c=conv, to=new, name=name, **{"from": old})
        return await self.store.reassign(
            conv,
            old,
            new,
            name,
            self.service.clock(),
            note,
            published,
            rules=rules,
            trainee=trainee,
        )

    # -- supervisors ------------------------------------------------------------------------
    async def _on_overview(self, frame: Overview) -> None:
        self.service.hub.overview_subscribers.add(self.conn)
        self.service.hub.overview_changed()

    async def _on_watch(self, frame: ConversationFrame) -> None:
        meta = await self._meta(frame.conversation_id, ("waiting", "active"))
        m = self.member
        await start_watching(
            self.service,
            self.conn,
            m.staff_id,
            m.role.value,
            m.display_name,
            frame.conversation_id,
            meta,
        )

    async def _on_unwatch(self, frame: ConversationFrame) -> None:
        m = self.member
        await stop_watching(
            self.service, self.conn, m.staff_id, m.role.value, frame.conversation_id
        )
        self._done(frame.ref, frame.conversation_id)

    async def _on_whisper(self, frame: Whisper) -> None:
        conv = frame.conversation_id
        await self._meta(conv, ("waiting", "active"))
        await self._audit("whisper", conv)
        now = self.service.clock()
        await self.store.add_whisper(
            conv, self.member.staff_id, self.member.display_name, frame.text, now
        )
        await self.store.publish(
            event("whisper", c=conv, author=self.member.display_name, text=frame.text, ts=now)
        )
        self._done(frame.ref, conv)

    async def _on_join(self, frame: ConversationFrame) -> None:
        conv = frame.conversation_id
        meta = await self._meta(conv)
        await self._audit("join", conv)
        if await self.store.join(conv, self.member.staff_id):
            await self.store.say(
                conv,
                None,
                "system",
                "",
                f"Een collega ({self.member.display_name}) doet mee aan het gesprek.",
                self.service.clock(),
                "",
            )
        if self.conn not in self.service.hub.followers.get(conv, ()):
            m = self.member
            await start_watching(
                self.service,
                self.conn,
                m.staff_id,
                m.role.value,
                m.display_name,
                conv,
                meta,
                action="watch",
            )
        self._done(frame.ref, conv)

    async def _on_takeover(self, frame: ConversationFrame) -> None:
        conv = frame.conversation_id
        meta = await self._meta(conv)
        holder = meta.get("counsellor", "")
        if holder == self.member.staff_id:
            raise FrameError(ErrorCode.CONFLICT, "this conversation is already yours")
        await self._audit("takeover", conv, **{"from": holder})
        self.service.hub.unfollow(conv, self.conn)
        self.conn.watching.discard(conv)  # from now on it is this member's own chat
        code = await self._reassign(
            conv, holder, self.member.staff_id, self.member.display_name, ""
        )
        if code != 1:
            raise FrameError(ErrorCode.CONFLICT, "the conversation changed; try again")
        self._done(frame.ref, conv)

    async def _on_prioritise(self, frame: Prioritise) -> None:
        await self._meta(frame.conversation_id, ("waiting",))
        await self._audit("prioritise", frame.conversation_id, priority=str(frame.priority))
        if not await self.store.prioritise(frame.conversation_id, frame.priority):
            raise FrameError(ErrorCode.CONFLICT, "the visitor is no longer waiting")
        self.service.request_assignment()
        self._done(frame.ref, frame.conversation_id)

    async def _on_watch_trainee(self, frame: TraineeFrame) -> None:
        target = await self.store.account_by_id(frame.staff_id)
        if target is None or target.get("trainee") != "1":
            raise FrameError(ErrorCode.NOT_FOUND, "no such trainee")
        await self._audit("watch_trainee", "", trainee=frame.staff_id)
        self.service.hub.trainee_watchers[frame.staff_id].add(self.conn)
        self.watched_trainees.add(frame.staff_id)
        await self.service.trainee_watch(frame.staff_id, self.member.staff_id, True)
        for conv in await self.store.staff_conversation_ids(frame.staff_id):
            meta = await self.store.conversation(conv)
            if meta is not None and meta.get("state") == "active":
                m = self.member
                await start_watching(
                    self.service, self.conn, m.staff_id, m.role.value, m.display_name, conv, meta
                )
        self._done(frame.ref)

    async def _on_unwatch_trainee(self, frame: TraineeFrame) -> None:
        await self._audit("unwatch_trainee", "", trainee=frame.staff_id)
        self.service.hub.trainee_watchers[frame.staff_id].discard(self.conn)
        self.watched_trainees.discard(frame.staff_id)
        await self.service.trainee_watch(frame.staff_id, self.member.staff_id, False)
        self._done(frame.ref)
