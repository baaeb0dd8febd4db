"""Supervision actions shared by the staff socket and the hub: watch, audit-first.

Every watch, unwatch, whisper, join, take-over, transfer, review and comment is put on the
audit record *before* it takes effect: a watch is on record before its first frame is sent.
"""

from __future__ import annotations

import structlog

from chatserver.connection import Connection
from chatserver.events import event
from chatserver.hub import whisper_frame
from chatserver.service import Service

log = structlog.get_logger("chatserver.supervision")


async def start_watching(
    service: Service,
    conn: Connection,
    staff_id: str,
    role: str,
    name: str,
    conversation_id: str,
    meta: dict[str, str],
    action: str = "watch",
) -> None:
    """Audit, then follow a conversation silently: ``watching`` with history, then live."""
    store = service.store
    await store.audit(staff_id, role, action, conversation_id)
    await store.set_watching(conversation_id, staff_id, True)
    hub = service.hub
    hub.unfollow(conversation_id, conn)
    hub.follow(conversation_id, conn)
    conn.watching.add(conversation_id)
    with conn.syncing(conversation_id):
        history = await store.messages(conversation_id)
        whispers = await store.whispers(conversation_id)
        conn.send(
            {
                "type": "watching",
                "conversation_id": conversation_id,
                "visitor": meta.get("nickname", ""),
                "counsellor": meta.get("counsellor_name", ""),
                "history": [m.frame(conversation_id) for m in history],
                "whispers": [whisper_frame(conversation_id, w) for w in whispers],
            }
        )
        if history:
            conn.seqs[conversation_id] = history[-1].seq
    counsellor = meta.get("counsellor")
    if counsellor and service.settings.server.tell_counsellor_when_watched:
        await service.notice(
            conversation_id,
            f"staff:{counsellor}",
            "watched",
            f"{name} kijkt mee / {name} is watching",
        )
    await store.publish(event("overview"))
    log.info("watch", staff_id=staff_id, conversation_id=conversation_id, how=action)


async def stop_watching(
    service: Service, conn: Connection, staff_id: str, role: str, conversation_id: str
) -> None:
    if conversation_id not in conn.watching:
        return  # nothing watched here: no record, and a chat this socket holds stays followed
    await service.store.audit(staff_id, role, "unwatch", conversation_id)
    service.hub.unfollow(conversation_id, conn)
    conn.watching.discard(conversation_id)
    still = any(c.staff_id == staff_id for c in service.hub.followers.get(conversation_id, ()))
    if not still:
        await service.store.set_watching(conversation_id, staff_id, False)
    await service.store.publish(event("overview"))
