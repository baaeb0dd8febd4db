"""Supervision: overview, silent watch, whisper, join, take-over, transfer, help, trainees."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from chatserver.retention import purge
from tests.helpers import Client, LiveServer

DAY = 86400.0


async def chatting(
    server: LiveServer, nickname: str = "Sam", counsellor: str = "anna"
) -> tuple[Client, Client, str]:
    """A visitor assigned to a counsellor; returns (visitor, counsellor, conversation id)."""
    c = await server.staff(counsellor)
    v, welcome = await server.visitor(nickname)
    conv = welcome["conversation_id"]
    assert (await c.expect("assigned"))["conversation_id"] == conv
    await v.expect("assigned")
    return v, c, conv


async def test_overview_shows_queue_conversations_and_staff(server: LiveServer) -> None:
    """The overview lists waiting visitors, live conversations with watchers, and staff."""
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "overview"})
    first = await sup.expect("overview")
    assert first["queue"] == [] and first["conversations"] == []
    wachter, _ = await server.visitor("Wachter", topic="school")

    async def until(pred: Any) -> dict[str, Any]:
        while True:
            frame = await sup.expect("overview", skip=("queue", "alert", "watching", "notice"))
            if pred(frame):
                return frame

    ov = await until(lambda f: f["queue"])
    entry = ov["queue"][0]
    assert entry["nickname"] == "Wachter" and entry["topic"] == "school"
    assert entry["priority"] == 0 and entry["waited_seconds"] >= 0
    meta = await server.store.conversation(entry["conversation_id"])
    assert meta is not None and entry["enqueued_ts"] == float(meta["enqueued"])
    assert entry["flags"] == []
    anna = await server.staff("anna", skills=("school",))
    ov = await until(lambda f: f["conversations"])
    conv = ov["conversations"][0]
    assert conv["visitor"] == "Wachter" and conv["counsellor"] == "Anna"
    assert conv["watchers"] == 0 and ov["queue"] == [] and conv["flags"] == []
    assert conv["started_ts"] == float(
        (await server.store.conversation(conv["conversation_id"]))["assigned"]
    )  # type: ignore[index]
    assert conv["duration_seconds"] >= 0
    states = {s["display_name"]: (s["state"], s["conversations"]) for s in ov["staff"]}
    assert states["Anna"] == ("available", 1) and states["Bert"][0] in ("offline", "paused")
    # Moderation marks and a help request reach the overview as flags; a watch as a count.
    cid = conv["conversation_id"]
    for i, text in enumerate(("je bent dom", "mail me: sam@example.nl", "ik wil dood, echt")):
        await wachter.send({"type": "say", "text": text, "ref": f"m{i}"})
        await wachter.expect("ack", skip=("notice", "queued", "assigned"))
    await anna.send({"type": "help", "conversation_id": cid, "ref": "h"})
    await anna.expect("ack", skip=("message", "queue", "assigned"))
    ov = await until(lambda f: f["conversations"] and len(f["conversations"][0]["flags"]) == 4)
    assert ov["conversations"][0]["flags"] == ["abuse", "crisis", "help_requested", "pii"]
    await sup.send({"type": "watch", "conversation_id": cid})
    ov = await until(lambda f: f["conversations"] and f["conversations"][0]["watchers"] == 1)
    assert ov["conversations"][0]["duration_seconds"] >= 0


async def test_silent_watch_and_whisper_never_reach_the_visitor(server: LiveServer) -> None:
    """A watcher gets history and live messages; whispers reach counsellor and watchers only."""
    visitor, counsellor, conv = await chatting(server)
    await visitor.send({"type": "say", "text": "eerste", "ref": "1"})
    await visitor.expect("ack")
    await counsellor.expect("message")
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "watch", "conversation_id": conv})
    watching = await sup.expect("watching")
    assert [m["text"] for m in watching["history"]] == ["eerste"]
    audit = await server.store.audit_entries()
    # (That the record comes first, or not at all, is tested in test_review_and_audit.py
    # with an audit log that cannot be written.)
    assert [a["action"] for a in audit] == ["watch"]
    told = await counsellor.expect("notice", skip=("queue",))
    assert told["code"] == "watched" and "Bert" in told["message"]
    await visitor.send({"type": "typing", "active": True})
    assert (await sup.expect("typing"))["from"] == "visitor"
    await visitor.send({"type": "say", "text": "tweede", "ref": "2"})
    await visitor.expect("ack")
    assert (await sup.expect("message"))["text"] == "tweede"
    await sup.send({"type": "whisper", "conversation_id": conv, "text": "vraag door"})
    whisper = await counsellor.expect("whisper", skip=("queue", "typing", "message"))
    assert whisper["text"] == "vraag door" and whisper["author"] == "Bert"
    assert (await sup.expect("whisper", skip=("ack", "queue", "overview", "typing", "message")))[
        "text"
    ] == "vraag door"
    await counsellor.send({"type": "say", "conversation_id": conv, "text": "hoe gaat het?"})
    assert (await visitor.expect("message"))["text"] == "hoe gaat het?"
    # Every path to the visitor: live frames, the store's messages, resume replay.
    for frame in visitor.seen:
        assert frame["type"] not in ("whisper", "watching", "notice"), frame
        assert "vraag door" not in str(frame) and "Bert" not in str(frame)
    stored = await server.store.messages(conv)
    assert all("vraag door" not in m.text for m in stored)
    token = next(f for f in visitor.seen if f["type"] == "welcome")["resume_token"]
    await visitor.close()
    again = await server.connect()
    await again.send({"type": "hello", "resume": token, "last_seq": 0})
    await again.expect("welcome")
    replay = [await again.expect("message", skip=("assigned",)) for _ in range(3)]
    assert [m["text"] for m in replay] == ["eerste", "tweede", "hoe gaat het?"]
    await again.nothing(0.3)
    # A counsellor who reconnects gets history without whispers in it.
    await sup.send({"type": "unwatch", "conversation_id": conv})
    await sup.expect("ack", skip=("message", "notice", "typing", "queue"))
    actions = [a["action"] for a in await server.store.audit_entries()]
    assert actions == ["watch", "whisper", "unwatch"]
    # After the end: the review, the export, the visitor's ended page and its download.
    await counsellor.send({"type": "end", "conversation_id": conv, "ref": "e"})
    await counsellor.expect(
        "ack", skip=("queue", "message", "notice", "typing", "whisper", "ended")
    )
    await again.expect("ended", skip=("message", "notice"))
    await again.send({"type": "survey", "rating": 4, "ref": "s"})
    await again.expect("ack")
    for who in ("bert", "anna"):
        status, body = await http_get(server, f"/api/conversations/{conv}", who)
        assert status == 200 and "hoe gaat het?" in body, (who, body)
        assert "vraag door" not in body, who
    status, body = await http_get(server, "/api/export", "bert")
    assert status == 200 and "hoe gaat het" in body and "vraag door" not in body
    # The visitor page saves what the visitor's `message` frames held (web/visitor-ended.js);
    # a reload of the ended page replays them all.
    ended_page = await server.connect()
    await ended_page.send({"type": "hello", "resume": token, "last_seq": 0})
    await ended_page.expect("welcome")
    saved = [await ended_page.expect("message") for _ in range(3)]
    await ended_page.expect("ended")
    assert [m["text"] for m in saved] == ["eerste", "tweede", "hoe gaat het?"]
    for frame in [*again.seen, *ended_page.seen]:
        assert frame["type"] not in ("whisper", "watching"), frame
        assert "vraag door" not in str(frame) and "Bert" not in str(frame)
    whispers_key = server.store.keys.whispers(conv)
    assert await server.store.rb.exists(whispers_key)
    await ended_page.send({"type": "forget", "ref": "f"})
    await ended_page.expect("ack")
    assert not await server.store.rb.exists(whispers_key)


async def http_get(server: LiveServer, path: str, username: str | None) -> tuple[int, str]:
    """GET ``path`` as ``username`` (bearer token), or unauthenticated; (status, body)."""
    headers = {}
    if username is not None:
        headers["Authorization"] = f"Bearer {(await server.login(username))['token']}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base}{path}", headers=headers) as r,
    ):
        return r.status, await r.text()


async def test_purge_removes_whispers(server: LiveServer) -> None:
    """The retention purge deletes a conversation's whispers with its text."""
    _, counsellor, conv = await chatting(server)
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "whisper", "conversation_id": conv, "text": "let op", "ref": "w"})
    await sup.expect("ack", skip=("queue", "overview", "whisper"))
    await counsellor.send({"type": "end", "conversation_id": conv, "ref": "e"})
    await counsellor.expect("ack", skip=("queue", "whisper", "ended"))
    key = server.store.keys.whispers(conv)
    assert await server.store.rb.exists(key)
    assert await purge(server.store, time.time() + 29 * DAY, 30) == 0
    assert await server.store.rb.exists(key)
    assert await purge(server.store, time.time() + 31 * DAY, 30) == 1
    assert not await server.store.rb.exists(key)


async def test_counsellor_not_told_when_configured(redis_url: str, key_prefix: str) -> None:
    """With tell_counsellor_when_watched = false the counsellor gets no watched notice."""
    from tests.chatserver.test_errors import custom_server

    async with custom_server(
        redis_url, key_prefix, server={"tell_counsellor_when_watched": False}
    ) as live:
        _, counsellor, conv = await chatting(live)
        sup = await live.staff("bert", role="supervisor", available=None)
        await sup.send({"type": "watch", "conversation_id": conv})
        await sup.expect("watching")
        await counsellor.nothing(0.4, skip=("queue",))


async def test_join_is_visible_and_takeover_moves_the_chat(server: LiveServer) -> None:
    """Join shows a system message to the visitor; take-over makes the supervisor counsellor."""
    visitor, counsellor, conv = await chatting(server)
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "join", "conversation_id": conv})
    system = await visitor.expect("message")
    assert system["from"] == "system" and "Bert" in system["text"]
    await sup.expect("watching")
    assert (await sup.expect("ack", skip=("message", "queue")))["seq"] is None
    await sup.send({"type": "say", "conversation_id": conv, "text": "ik lees mee", "ref": "j"})
    assert (await sup.expect("ack", skip=("message", "queue")))["seq"] == 2
    assert (await visitor.expect("message"))["author"] == "Bert"
    await sup.send({"type": "takeover", "conversation_id": conv})
    notice = await visitor.expect("notice", skip=("message",))
    assert notice["code"] == "transferred"
    assert (await visitor.expect("assigned"))["counsellor"] == "Bert"
    ended = await counsellor.expect("ended", skip=("queue", "message", "notice"))
    assert ended["reason"] == "transferred"
    assigned = await sup.expect("assigned", skip=("ack", "message", "queue", "notice"))
    assert len(assigned["history"]) == 2
    await sup.send({"type": "end", "conversation_id": conv})
    assert (await visitor.expect("ended"))["reason"] == "counsellor_ended"


async def test_transfer_to_colleague_and_back_to_queue(server: LiveServer) -> None:
    """A transfer keeps history and note; back to the queue puts the visitor first."""
    visitor, anna, conv = await chatting(server)
    await visitor.send({"type": "say", "text": "mijn verhaal", "ref": "1"})
    await visitor.expect("ack")
    cees = await server.staff("cees", available=None)
    await cees.send({"type": "status", "state": "paused"})
    await cees.expect("status")
    cees_id = (await server.store.account("cees"))["id"]  # type: ignore[index]
    await anna.send(
        {"type": "transfer", "conversation_id": conv, "to": cees_id, "note": "gaat over school"}
    )
    got = await cees.expect("assigned")
    assert got.get("transfer_note"), got
    assert got["transfer_note"] == "gaat over school"
    assert [m["text"] for m in got["history"]] == ["mijn verhaal"]
    assert (await visitor.expect("notice"))["code"] == "transferred"
    assert (await visitor.expect("assigned"))["counsellor"] == "Cees"
    await anna.send({"type": "status", "state": "paused"})
    await anna.expect("status", skip=("queue", "ended", "message", "ack"))
    await server.visitor("Later")  # someone else waits now
    await cees.send({"type": "transfer", "conversation_id": conv, "note": "terug"})
    assert (await cees.expect("ended", skip=("ack", "queue", "message")))["reason"] == "transferred"
    assert (await visitor.expect("notice"))["code"] == "transferred"
    assert (await visitor.expect("queued"))["position"] == 1
    dirk = await server.staff("dirk")
    again = await dirk.expect("assigned")
    assert again["conversation_id"] == conv and again["transfer_note"] == "terug"
    actions = [a["action"] for a in await server.store.audit_entries()]
    assert actions == ["transfer", "transfer"]


async def test_help_button_alerts_supervisors(server: LiveServer) -> None:
    """A counsellor's help request reaches every supervisor as an alert."""
    _, counsellor, conv = await chatting(server)
    sup = await server.staff("bert", role="supervisor", available=None)
    await counsellor.send({"type": "help", "conversation_id": conv})
    alert = await sup.expect("alert")
    assert alert["kind"] == "help_requested" and alert["conversation_id"] == conv
    assert "Anna" in alert["message"]


async def test_prioritise_moves_a_visitor_up(server: LiveServer) -> None:
    """A supervisor raises a waiting visitor's priority; their position becomes 1."""
    await server.visitor("Een")
    second, w2 = await server.visitor("Twee")
    assert (await second.expect("queued"))["position"] == 2
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "prioritise", "conversation_id": w2["conversation_id"], "priority": 2})
    await sup.expect("ack")
    assert (await second.expect("queued"))["position"] == 1


async def test_trainee_only_while_watched_and_never_crisis(server: LiveServer) -> None:
    """A trainee gets a chat only while a supervisor watches them, and never a crisis."""
    trainee = await server.staff("tim", trainee=True)
    tim_id = (await server.store.account("tim"))["id"]  # type: ignore[index]
    _, crisis = await server.visitor("Nood")
    await server.store.prioritise(crisis["conversation_id"], 2, crisis=True)
    _, calm = await server.visitor("Rustig")
    await trainee.nothing(0.5, skip=("queue",))
    sup = await server.staff("bert", role="supervisor", available=None)
    assert (await sup.expect("alert"))["replayed"] is True  # the standing crisis
    await sup.send({"type": "watch_trainee", "staff_id": tim_id})
    await sup.expect("ack")
    got = await trainee.expect("assigned")
    assert got["conversation_id"] == calm["conversation_id"]
    watching = await sup.expect("watching")
    assert watching["conversation_id"] == calm["conversation_id"]


async def test_access_control_for_each_role(server: LiveServer) -> None:
    """Counsellors may not supervise or touch others' chats; visitors know no staff frames."""
    visitor, anna, conv = await chatting(server)
    bob = await server.staff("bob", available=None)
    supervisor_only = [
        {"type": "overview"},
        {"type": "watch", "conversation_id": conv},
        {"type": "unwatch", "conversation_id": conv},
        {"type": "whisper", "conversation_id": conv, "text": "x"},
        {"type": "join", "conversation_id": conv},
        {"type": "takeover", "conversation_id": conv},
        {"type": "prioritise", "conversation_id": conv, "priority": 1},
        {"type": "watch_trainee", "staff_id": "x"},
    ]
    for frame in supervisor_only:
        for client in (anna, bob):
            await client.send({**frame, "ref": "r"})
            err = await client.expect("error", skip=("queue", "typing", "message"))
            assert err["code"] == "forbidden", frame
    others = [
        {"type": "say", "conversation_id": conv, "text": "x"},
        {"type": "typing", "conversation_id": conv, "active": True},
        {"type": "end", "conversation_id": conv},
        {"type": "help", "conversation_id": conv},
        {"type": "transfer", "conversation_id": conv},
    ]
    for frame in others:
        await bob.send(frame)
        assert (await bob.expect("error", skip=("queue",)))["code"] == "not_found", frame
    for frame in [*supervisor_only, {"type": "status", "state": "available"}]:
        await visitor.send(frame)
        assert (await visitor.expect("error"))["code"] == "unknown_type", frame


async def _transfer_error(sender: Client, conv: str, to: str) -> dict[str, Any]:
    await sender.send({"type": "transfer", "conversation_id": conv, "to": to, "ref": "t"})
    return await sender.expect("error", skip=("queue", "message", "notice", "typing"))


async def test_transfer_refused_when_colleague_at_capacity(server: LiveServer) -> None:
    """A transfer to a colleague whose places are all taken is a conflict, on record as
    refused with its reason; loads stay."""
    await chatting(server, "Eerste", counsellor="cees")
    cees_id = (await server.store.account("cees"))["id"]  # type: ignore[index]
    _, anna, conv = await chatting(server, "Tweede", counsellor="anna")
    err = await _transfer_error(anna, conv, cees_id)
    assert err["code"] == "conflict" and "capacity" in err["message"]
    assert (await server.store.staff_state(cees_id))["load"] == "1"
    # The attempt is on record before it is tried, its refusal after (with the reason).
    records = [e for e in await server.store.audit_entries() if e["action"].startswith("transf")]
    assert [(e["action"], e["to"], e["conversation_id"]) for e in records] == [
        ("transfer", cees_id, conv),
        ("transfer_refused", cees_id, conv),
    ]
    assert records[1]["reason"] == err["message"]
    meta = await server.store.conversation(conv)
    assert meta is not None and meta["counsellor_name"] == "Anna"


async def test_transfer_refused_while_colleague_in_wrapup(redis_url: str, key_prefix: str) -> None:
    """A colleague in wrap-up time after a conversation takes no transfer."""
    from tests.chatserver.test_errors import custom_server

    async with custom_server(redis_url, key_prefix, queue={"wrapup_seconds": 600.0}) as live:
        _, cees, first = await chatting(live, "Eerste", counsellor="cees")
        cees_id = (await live.store.account("cees"))["id"]  # type: ignore[index]
        await cees.send({"type": "end", "conversation_id": first, "ref": "e"})
        await cees.expect("ack", skip=("queue", "ended"))
        _, anna, conv = await chatting(live, "Tweede", counsellor="anna")
        err = await _transfer_error(anna, conv, cees_id)
        assert err["code"] == "conflict" and "wrap-up" in err["message"]
        assert (await live.store.staff_state(cees_id))["load"] == "0"


async def test_transfer_to_trainee_only_watched_and_never_crisis(server: LiveServer) -> None:
    """A trainee takes a transfer only while watched, and never a crisis conversation."""
    trainee = await server.staff("tim", trainee=True, available=None)
    await trainee.send({"type": "status", "state": "paused"})
    await trainee.expect("status")
    tim_id = (await server.store.account("tim"))["id"]  # type: ignore[index]
    visitor, anna, conv = await chatting(server, "Sam", counsellor="anna")
    err = await _transfer_error(anna, conv, tim_id)
    assert err["code"] == "conflict" and "watch" in err["message"]
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "watch_trainee", "staff_id": tim_id, "ref": "w"})
    await sup.expect("ack")
    await visitor.send({"type": "say", "text": "ik wil dood, echt", "ref": "c"})
    await visitor.expect("ack")
    await sup.expect("alert", skip=("queue", "overview", "notice"))
    err = await _transfer_error(anna, conv, tim_id)
    assert err["code"] == "conflict" and "crisis" in err["message"]
    assert (await server.store.staff_state(tim_id)).get("load", "0") == "0"
    # Watched, and not a crisis: the transfer goes through.
    _, dirk, calm = await chatting(server, "Rustig", counsellor="dirk")
    await dirk.send({"type": "transfer", "conversation_id": calm, "to": tim_id, "ref": "t"})
    assert (await trainee.expect("assigned", skip=("queue", "status")))["conversation_id"] == calm


async def test_back_to_queue_goes_to_another_counsellor(server: LiveServer) -> None:
    """Back to the queue: another free counsellor gets the visitor, not the one they had."""
    _, anna, conv = await chatting(server, "Sam", counsellor="anna")
    dirk = await server.staff("dirk")  # idled less long than Anna's assignment: Anna would win
    await anna.send({"type": "transfer", "conversation_id": conv, "ref": "q"})
    assert (await anna.expect("ended", skip=("ack", "queue")))["reason"] == "transferred"
    got = await dirk.expect("assigned")
    assert got["conversation_id"] == conv
    await anna.nothing(0.5, skip=("queue", "ack", "status"))
    meta = await server.store.conversation(conv)
    assert meta is not None and meta["counsellor_name"] == "Dirk"
    assert "anna" not in meta["past_counsellors"]  # ids, not names
    anna_id = (await server.store.account("anna"))["id"]  # type: ignore[index]
    assert anna_id in meta["past_counsellors"].split(",")


async def test_back_to_queue_returns_when_nobody_else(redis_url: str, key_prefix: str) -> None:
    """When only the old counsellor is free, they get the visitor back after the skill wait."""
    from tests.chatserver.test_errors import custom_server

    async with custom_server(redis_url, key_prefix, queue={"skill_wait_seconds": 0.5}) as live:
        visitor, anna, conv = await chatting(live, "Sam", counsellor="anna")
        await anna.send({"type": "transfer", "conversation_id": conv, "ref": "q"})
        await anna.expect("ended", skip=("ack", "queue"))
        assert (await visitor.expect("queued", skip=("notice",)))["position"] == 1
        again = await anna.expect("assigned", skip=("ack", "queue"))
        assert again["conversation_id"] == conv


async def test_transferred_notice_in_the_visitors_language(server: LiveServer) -> None:
    """An English-speaking visitor is told of a transfer in English, both ways."""
    anna = await server.staff("anna")
    visitor, welcome = await server.visitor("Sam", lang="en")
    conv = welcome["conversation_id"]
    await anna.expect("assigned")
    cees = await server.staff("cees", available=None)
    await cees.send({"type": "status", "state": "paused"})
    await cees.expect("status")
    cees_id = (await server.store.account("cees"))["id"]  # type: ignore[index]
    await anna.send({"type": "transfer", "conversation_id": conv, "to": cees_id, "ref": "t"})
    notice = await visitor.expect("notice", skip=("queued", "assigned"))
    assert notice["code"] == "transferred" and "another counsellor" in notice["message"]
    await cees.expect("assigned")
    await anna.send({"type": "status", "state": "paused"})
    await anna.expect("status", skip=("queue", "ended", "ack"))
    await cees.send({"type": "transfer", "conversation_id": conv, "ref": "q"})
    notice = await visitor.expect("notice", skip=("assigned",))
    assert notice["code"] == "transferred" and "first in line" in notice["message"]
    dutch, w2 = await server.visitor("Kim")
    await anna.send({"type": "status", "state": "available"})
    # Anna had Sam before: she gets Kim first (Sam waits for someone else a while).
    got = await anna.expect("assigned", skip=("queue", "status"))
    assert got["conversation_id"] == w2["conversation_id"]
    await anna.send({"type": "transfer", "conversation_id": w2["conversation_id"], "ref": "k"})
    assert "hulpverlener" in (await dutch.expect("notice", skip=("assigned", "queued")))["message"]


async def test_unwatch_of_a_chat_one_holds_changes_nothing(server: LiveServer) -> None:
    """A supervisor who is the counsellor of a chat and sends unwatch for it keeps getting
    its messages, and nothing goes on record: only real watches end."""
    bert = await server.staff("bert", role="supervisor")
    visitor, welcome = await server.visitor("Zon")
    conv = welcome["conversation_id"]
    assert (await bert.expect("assigned", skip=("queue", "notice")))["conversation_id"] == conv
    await visitor.expect("assigned")
    await bert.send({"type": "unwatch", "conversation_id": conv, "ref": "u"})
    assert (await bert.expect("ack", skip=("queue", "notice")))["ref"] == "u"
    await visitor.send({"type": "say", "text": "ben je er nog?"})
    assert (await bert.expect("message", skip=("queue", "notice", "typing")))[
        "text"
    ] == "ben je er nog?"
    assert [a["action"] for a in await server.store.audit_entries()] == []
