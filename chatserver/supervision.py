"""Supervision actions shared by the staff socket and the hub: watch, audit-first, and the
replay of standing alerts to a supervisor who connects.

Every watch, unwatch, whisper, join, take-over, transfer, review and comment is put on the
audit record *before* it takes effect: a watch is on record before its first frame is sent.
"""

from __future__ import annotations

from typing import Any, cast

import structlog

from chatserver.connection import Connection
from chatserver.events import crisis_alert_text, event, help_alert_text
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


#: The conversation fields an alert replay reads (one HMGET per live conversation).
_ALERT_FIELDS = (
    "state",
    "created",
    "crisis",
    "crisis_ts",
    "crisis_categories",
    "flags",
    "help_ts",
    "help_name",
    "nickname",
    "counsellor_name",
)


async def standing_alerts(service: Service) -> list[dict[str, Any]]:
    """The ``alert`` frames still standing, oldest first: one ``crisis`` per live (waiting or
    active) conversation flagged crisis, one ``help_requested`` per live conversation whose
    counsellor asked for help. The texts are the live alert's (service.crisis_signal,
    StaffSession._on_help); each frame carries ``replayed: true``.

    Reads only the queue and the active set (never all conversations ever): two round trips,
    the ids, then one pipelined HMGET per live conversation."""
    store = service.store
    k = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.zrange(k.queue, 0, -1)
    pipe.smembers(k.active)
    waiting, active = cast(tuple[list[str], set[str]], tuple(await pipe.execute()))
    ids = list(dict.fromkeys([*waiting, *sorted(active)]))
    if not ids:
        return []
    pipe = store.r.pipeline(transaction=False)
    for cid in ids:
        pipe.hmget(k.conversation(cid), _ALERT_FIELDS)
    rows = cast(list[list[str | None]], await pipe.execute())
    found: list[tuple[float, str, dict[str, Any]]] = []
    for cid, row in zip(ids, rows, strict=True):
        meta = {name: value or "" for name, value in zip(_ALERT_FIELDS, row, strict=True)}
        if meta["state"] not in ("waiting", "active"):
            continue
        since = float(meta["created"] or 0)
        if meta["crisis"] == "1":
            categories = [c for c in meta["crisis_categories"].split(",") if c]
            text = crisis_alert_text(meta["nickname"], categories)
            found.append((float(meta["crisis_ts"] or since), cid, _replayed("crisis", cid, text)))
        if "help_requested" in meta["flags"].split(","):
            name = meta["help_name"] or meta["counsellor_name"]
            found.append(
                (
                    float(meta["help_ts"] or since),
                    cid,
                    _replayed("help_requested", cid, help_alert_text(name)),
                )
            )
    found.sort(key=lambda item: (item[0], item[1]))
    return [frame for _, _, frame in found]


def _replayed(kind: str, conversation_id: str, message: str) -> dict[str, Any]:
    return {
        "type": "alert",
        "kind": kind,
        "conversation_id": conversation_id,
        "message": message,
        "replayed": True,
    }


async def replay_alerts(service: Service, conn: Connection, staff_id: str) -> int:
    """After a supervisor's ``welcome``: send the alerts still standing (see
    :func:`standing_alerts`), so one who connects after a crisis signal still learns of it.
    Returns how many were sent; the log has only the count, never a text."""
    frames = await standing_alerts(service)
    for frame in frames:
        conn.send(frame)
    if frames:
        log.info("alerts_replayed", staff_id=staff_id, count=len(frames))
    return len(frames)
