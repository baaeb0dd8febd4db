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
    """The snapshot in a few round trips, whatever the numbers: the queue, the active set and
    the accounts, then every hash and watcher count they name in one pipeline. Disabled
    accounts (volunteers who left) are not listed."""
    k = store.keys
    waiting = await store.waiting_snapshot(limit=500)
    active = await store.active_ids()
    accounts = [a for a in await store.all_accounts() if a.get("disabled") != "1"]
    pipe = store.r.pipeline(transaction=False)
    for visitor in waiting:
        pipe.hgetall(k.conversation(visitor.conversation_id))
    for conv in active:
        pipe.hgetall(k.conversation(conv))
        pipe.scard(k.watchers(conv))
    for account in accounts:
        pipe.hgetall(k.staff_state(account["id"]))
    replies: list[Any] = await pipe.execute() if waiting or active or accounts else []
    at = iter(replies)

    queue = []
    for visitor in waiting:
        meta: dict[str, str] = next(at) or {}
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
    for conv in active:
        meta, watchers = next(at), int(next(at))
        if not meta or meta.get("state") != "active":
            continue
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
                "watchers": watchers,
            }
        )
    staff = []
    for account in accounts:
        state: dict[str, str] = next(at)
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
