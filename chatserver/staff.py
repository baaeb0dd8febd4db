"""The staff socket: counsellors chat; supervisors also oversee, watch and whisper."""

from __future__ import annotations

from typing import Any

import structlog

from chatserver.auth import StaffMember
from chatserver.connection import Connection
from chatserver.errors import ErrorCode, FrameError
from chatserver.events import event
from chatserver.frames import (
    ConversationFrame,
    End,
    Overview,
    Say,
    StaffFrame,
    Status,
    Transfer,
    Typing,
    Whisper,
    ack_frame,
)
from chatserver.service import Service

log = structlog.get_logger("chatserver.staff")

SUPERVISOR_ONLY = (Overview, Whisper)


class StaffSession:
    def __init__(self, service: Service, conn: Connection, member: StaffMember) -> None:
        self.service = service
        self.store = service.store
        self.conn = conn
        self.member = member

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
            }
        )
        for conv in await self.store.staff_conversation_ids(m.staff_id):
            meta = await self.store.conversation(conv)
            if meta is not None and meta.get("state") == "active":
                await self.service.hub.send_assigned(self.conn, conv, meta)
        self.service.hub.positions_changed()

    async def closed(self) -> None:
        self.service.hub.remove_staff(self.member.staff_id, self.conn)
        await self.service.staff_dropped(self.member.staff_id, self.conn.id)

    async def handle(self, frame: StaffFrame) -> None:
        supervision = isinstance(frame, SUPERVISOR_ONLY) or (
            isinstance(frame, ConversationFrame) and frame.type in ("watch", "unwatch")
        )
        if supervision and not self.member.supervises:
            raise FrameError(ErrorCode.FORBIDDEN, "only supervisors may do this")
        if isinstance(frame, Status):
            await self._status(frame)
        elif isinstance(frame, Say):
            await self._say(frame)
        elif isinstance(frame, Typing):
            await self._own(frame.conversation_id)
            assert frame.conversation_id is not None
            await self.service.typing(
                frame.conversation_id, "counsellor", frame.active, self.conn.id
            )
        elif isinstance(frame, End):
            await self._end(frame)
        elif isinstance(frame, Transfer | ConversationFrame | Overview | Whisper):
            raise FrameError(ErrorCode.CONFLICT, "supervision is not available yet")

    async def _own(self, conversation_id: str | None) -> dict[str, str]:
        """The conversation's state, if this counsellor holds it and it is active."""
        assert conversation_id is not None
        meta = await self.store.conversation(conversation_id)
        if meta is None or meta.get("counsellor") != self.member.staff_id:
            raise FrameError(ErrorCode.NOT_FOUND, "no such conversation of yours")
        if meta.get("state") != "active":
            raise FrameError(ErrorCode.CONFLICT, "the conversation is not active")
        return meta

    async def _status(self, frame: Status) -> None:
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

    async def _say(self, frame: Say) -> None:
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
        self.conn.send(ack_frame(frame.ref, result.seq, conv))

    async def _end(self, frame: End) -> None:
        await self._own(frame.conversation_id)
        if frame.wrapup is not None:
            await self.store.update_conversation(
                frame.conversation_id,
                {
                    "wrapup_topics": ",".join(frame.wrapup.topics),
                    "wrapup_note": frame.wrapup.note or "",
                },
            )
        await self.service.end(frame.conversation_id, "counsellor_ended")
        reply: dict[str, Any] = {
            "type": "ack",
            "ref": frame.ref,
            "seq": None,
            "conversation_id": frame.conversation_id,
        }
        self.conn.send(reply)
