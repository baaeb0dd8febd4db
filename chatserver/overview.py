"""The supervisor's overview: the queue, the conversations and the staff, read from Redis.

Built as a whole snapshot (not patched incrementally), so every process and every
reconnecting dashboard shows the same truth.
"""

from __future__ import annotations

from typing import Any

from chatserver.store import Store


def conversation_flags(meta: dict[str, str]) -> list[str]:
    flags = {f for f in meta.get("flags", "").split(",") if f}
    if meta.get("crisis") == "1":
        flags.add("crisis")
    return sorted(flags)


async def build_overview(store: Store, now: float) -> dict[str, Any]:
    queue = []
    for visitor in await store.waiting_snapshot(limit=500):
        meta = await store.conversation(visitor.conversation_id) or {}
        enqueued = float(meta.get("enqueued") or visitor.enqueued_at)
        queue.append(
            {
                "conversation_id": visitor.conversation_id,
                "visitor_id": meta.get("visitor_id", ""),
                "nickname": meta.get("nickname", ""),
                "topic": meta.get("topic") or None,
                "priority": visitor.priority,
                "enqueued_ts": enqueued,
                "waited_seconds": round(now - enqueued, 1),
                "flags": conversation_flags(meta),
            }
        )
    conversations = []
    for conv in await store.active_ids():
        found = await store.conversation(conv)
        if found is None or found.get("state") != "active":
            continue
        meta = found
        started = float(meta.get("assigned") or now)
        conversations.append(
            {
                "conversation_id": conv,
                "visitor": meta.get("nickname", ""),
                "counsellor": meta.get("counsellor_name", ""),
                "counsellor_id": meta.get("counsellor", ""),
                "topic": meta.get("topic") or None,
                "started_ts": started,
                "duration_seconds": round(now - started, 1),
                "flags": conversation_flags(meta),
                "watchers": len(await store.watcher_ids(conv)),
            }
        )
    staff = []
    for account in await store.all_accounts():
        state = await store.staff_state(account["id"])
        staff.append(
            {
                "staff_id": account["id"],
                "display_name": account["display_name"],
                "role": account["role"],
                "trainee": account.get("trainee") == "1",
                "state": "wrapup"
                if (
                    state.get("state") == "available"
                    and float(state.get("wrapup_until") or 0) > now
                )
                else state.get("state", "offline"),
                "capacity": int(state.get("capacity", 1)),
                "conversations": int(state.get("load", 0)),
            }
        )
    staff.sort(key=lambda s: (s["state"] != "available", s["display_name"]))
    return {"type": "overview", "queue": queue, "conversations": conversations, "staff": staff}
