"""Queue positions, resume after a drop, and a counsellor who reconnects."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from chatserver.appkeys import SERVICE
from chatserver.config import Settings
from chatserver.hub import CLOSING_SOON, VISITOR_TEXTS
from nickname import nickname_key
from queueing.hours import DAYS
from tests.chatserver.test_errors import custom_server
from tests.conftest import free_port, start_redis
from tests.helpers import LiveServer, eventually


async def test_positions_update_when_someone_ahead_leaves(server: LiveServer) -> None:
    """Every waiting visitor gets a new queued frame when their position changes."""
    first, _ = await server.visitor("Een")
    second, _ = await server.visitor("Twee")
    third, _ = await server.visitor("Drie")
    assert (await first.expect("queued"))["position"] == 1
    assert (await second.expect("queued"))["position"] == 2
    q3 = await third.expect("queued")
    assert q3["position"] == 3 and q3["waiting"] == 3
    await first.send({"type": "leave"})
    await first.expect("ended")
    assert (await second.expect("queued"))["position"] == 1
    q3 = await third.expect("queued")
    assert q3["position"] == 2 and q3["waiting"] == 2


async def test_longest_waiting_goes_to_longest_idle(server: LiveServer) -> None:
    """The visitor who waited longest goes to the counsellor who has been idle longest."""
    early, w_early = await server.visitor("Vroeg")
    late, w_late = await server.visitor("Laat")
    idle_long = await server.staff("lang", available=None)
    idle_short = await server.staff("kort", available=None)
    await idle_long.send({"type": "status", "state": "available", "capacity": 1})
    await idle_long.expect("status")
    got_long = await idle_long.expect("assigned")
    await idle_short.send({"type": "status", "state": "available", "capacity": 1})
    await idle_short.expect("status")
    got_short = await idle_short.expect("assigned")
    assert got_long["conversation_id"] == w_early["conversation_id"]
    assert got_short["conversation_id"] == w_late["conversation_id"]
    del early, late


async def test_capacity_allows_several_chats(server: LiveServer) -> None:
    """A counsellor with capacity 2 gets two visitors and no third."""
    counsellor = await server.staff("veel", available=2)
    for name in ("Aa", "Bb", "Cc"):
        await server.visitor(name)
    got = {(await counsellor.expect("assigned"))["visitor"] for _ in range(2)}
    assert got == {"Aa", "Bb"}
    await counsellor.nothing(0.5, skip=("queue",))


async def test_resume_replays_missed_messages_once(server: LiveServer) -> None:
    """A visitor who drops and resumes gets every message after last_seq, once, in order."""
    counsellor = await server.staff("anna")
    visitor, welcome = await server.visitor("Jip")
    conv, token = welcome["conversation_id"], welcome["resume_token"]
    await counsellor.expect("assigned")
    await visitor.expect("assigned")
    await visitor.send({"type": "say", "text": "een", "ref": "v1"})
    await visitor.expect("ack")
    await counsellor.expect("message")
    await visitor.close()
    notice = await counsellor.expect("notice", skip=("queue",))
    assert notice["code"] == "visitor_disconnected"
    for i in range(3):
        await counsellor.send({"type": "say", "conversation_id": conv, "text": f"c{i}"})
        await counsellor.expect("ack")
    back = await server.connect()
    await back.send({"type": "hello", "resume": token, "last_seq": 1})
    welcome2 = await back.expect("welcome")
    assert welcome2["conversation_id"] == conv and welcome2["nickname"] == "Jip"
    assert (await back.expect("assigned"))["conversation_id"] == conv
    replay = [await back.expect("message") for _ in range(3)]
    assert [m["seq"] for m in replay] == [2, 3, 4]
    assert [m["text"] for m in replay] == ["c0", "c1", "c2"]
    assert (await counsellor.expect("notice", skip=("queue",)))["code"] == "visitor_reconnected"
    await counsellor.send({"type": "say", "conversation_id": conv, "text": "live"})
    live = await back.expect("message")
    assert live["seq"] == 5
    await back.nothing(0.3)


async def test_resent_say_is_stored_once(server: LiveServer) -> None:
    """A say resent with the same ref is stored once and answered with the original ack."""
    counsellor = await server.staff("anna")
    visitor, welcome = await server.visitor("Fem")
    conv = welcome["conversation_id"]
    await counsellor.expect("assigned")
    for _ in range(3):
        await visitor.send({"type": "say", "text": "dubbel?", "ref": "same"})
        assert (await visitor.expect("ack", skip=("queued", "assigned"))) == {
            "type": "ack",
            "ref": "same",
            "seq": 1,
        }
    assert await server.store.message_count(conv) == 1
    assert (await counsellor.expect("message"))["seq"] == 1
    await counsellor.nothing(0.3, skip=("queue",))


async def test_waiting_visitor_resumes_queue_place(server: LiveServer) -> None:
    """A visitor who drops while waiting keeps the place and gets queued again on resume."""
    first, _ = await server.visitor("Eerst")
    second, w2 = await server.visitor("Later")
    await second.expect("queued")
    await second.close()
    back = await server.connect()
    await back.send({"type": "hello", "resume": w2["resume_token"]})
    await back.expect("welcome")
    queued = await back.expect("queued")
    assert queued["position"] == 2
    del first


async def test_reconnecting_counsellor_gets_assigned_again(server: LiveServer) -> None:
    """A counsellor's new socket gets assigned (with history) for each chat in progress."""
    counsellor = await server.staff("anna", available=2)
    v1, w1 = await server.visitor("Een")
    v2, w2 = await server.visitor("Twee")
    await counsellor.expect("assigned")
    await counsellor.expect("assigned")
    await v1.expect("assigned")
    await v1.send({"type": "say", "text": "hallo", "ref": "x"})
    await v1.expect("ack")
    await counsellor.close()
    notice = await v1.expect("notice")
    assert notice["code"] == "counsellor_reconnecting"
    again = await server.staff("anna", available=None)
    frames = [await again.expect("assigned") for _ in range(2)]
    by_conv = {f["conversation_id"]: f for f in frames}
    assert set(by_conv) == {w1["conversation_id"], w2["conversation_id"]}
    assert [m["text"] for m in by_conv[w1["conversation_id"]]["history"]] == ["hallo"]
    del v2


async def test_login_cookie_and_same_answer(server: LiveServer) -> None:
    """Login sets an HttpOnly SameSite=Strict cookie; wrong name and wrong password look alike."""
    await server.add_staff("anna")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.base}/api/login", json={"username": "anna", "password": "correct horse 1"}
        ) as r:
            assert r.status == 200
            body = await r.json()
            assert set(body) == {"token", "staff_id", "role", "display_name"}
            cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert cookie.startswith("__Host-chat_session=") and "Secure" in cookie
            assert "Path=/" in cookie and "Domain" not in cookie
        answers = []
        for name, pw in (("anna", "wrong password"), ("nobody", "correct horse 1")):
            async with http.post(
                f"{server.base}/api/login", json={"username": name, "password": pw}
            ) as r:
                answers.append((r.status, await r.text()))
        assert answers[0] == answers[1] and answers[0][0] == 401
        async with http.post(f"{server.base}/api/login", data=b"nonsense") as r:
            assert r.status == 400
    token = body["token"]
    ws = await server.connect("/ws/staff", headers={"Cookie": f"__Host-chat_session={token}"})
    assert (await ws.expect("welcome"))["role"] == "counsellor"
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.base}/api/logout", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200
    import pytest
    import websockets

    with pytest.raises(websockets.InvalidStatus):
        await server.connect("/ws/staff", headers={"Authorization": f"Bearer {token}"})


async def test_lost_history_is_said_not_hidden(server: LiveServer) -> None:
    """When the store has fewer messages than the client saw, the client is told."""
    counsellor = await server.staff("anna")
    visitor, welcome = await server.visitor("Verlies")
    conv, token = welcome["conversation_id"], welcome["resume_token"]
    await counsellor.expect("assigned")
    await visitor.expect("assigned")
    for i in range(3):
        await visitor.send({"type": "say", "text": f"m{i}", "ref": str(i)})
        await visitor.expect("ack")
    await visitor.close()
    await server.store.rb.rpop(server.store.keys.messages(conv))  # as after a crash without fsync
    back = await server.connect()
    await back.send({"type": "hello", "resume": token, "last_seq": 3})
    await back.expect("welcome")
    notice = await back.expect("notice", skip=("assigned",))
    assert notice["code"] == "history_lost" and notice["stored_seq"] == 2


async def test_live_parties_are_told_when_history_is_lost(tmp_path: Path) -> None:
    """Messages lost under live sockets: both parties get history_lost (stored_seq) at resync,
    the visitor in their language, and new messages after it reach both."""
    port = free_port()
    with start_redis(port, tmp_path):
        settings = Settings()
        settings = replace(settings, server=replace(settings.server, key_prefix="lost"))
        async with LiveServer.start(settings, f"redis://127.0.0.1:{port}/0") as live:
            counsellor = await live.staff("anna")
            visitor, welcome = await live.visitor("Vergeten", lang="en")
            conv = welcome["conversation_id"]
            await counsellor.expect("assigned")
            await visitor.expect("assigned")
            for i in range(3):
                await visitor.send({"type": "say", "text": f"v{i}", "ref": f"v{i}"})
                assert (await visitor.expect("ack"))["seq"] == i + 1
                assert (await counsellor.expect("message", skip=("queue",)))["seq"] == i + 1
            admin = aioredis.Redis(port=port)
            await admin.rpop(live.store.keys.messages(conv), 2)  # the store forgets seq 2 and 3
            await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await admin.aclose()
            told = await visitor.expect("notice", skip=("queued", "queue", "typing"))
            assert (told["code"], told["stored_seq"]) == ("history_lost", 1)
            assert told["message"] == VISITOR_TEXTS["history_lost"]["en"]
            staff_told = await counsellor.expect("notice", skip=("queue",))
            assert (staff_told["code"], staff_told["stored_seq"]) == ("history_lost", 1)
            await visitor.send({"type": "say", "text": "opnieuw", "ref": "again"})
            ack = await visitor.expect("ack")
            assert ack["seq"] == 2
            again = await counsellor.expect("message", skip=("queue",))
            assert (again["seq"], again["text"]) == (2, "opnieuw")


async def test_crisis_never_lowers_a_raised_priority(server: LiveServer) -> None:
    """A supervisor's priority 3 stays 3 when a crisis signal comes; a 0 becomes 2."""
    raised, w_raised = await server.visitor("Hoog")
    plain, w_plain = await server.visitor("Gewoon")
    sup = await server.staff("bert", role="supervisor", available=None)
    conv = w_raised["conversation_id"]
    await sup.send({"type": "prioritise", "conversation_id": conv, "priority": 3, "ref": "p"})
    await sup.expect("ack", skip=("queue", "alert", "overview"))
    for client in (raised, plain):
        await client.send({"type": "say", "text": "ik wil dood, echt", "ref": "c"})
        await client.expect("ack")
    for _ in range(2):
        await sup.expect("alert", skip=("queue", "overview"))
    assert (await server.store.conversation(conv) or {})["priority"] == "3"
    other = await server.store.conversation(w_plain["conversation_id"]) or {}
    assert (other["priority"], other["crisis"]) == ("2", "1")


async def test_whispers_reach_the_counsellor_who_takes_the_chat(server: LiveServer) -> None:
    """A whisper said while the visitor waits is in the staff assigned frame (and on reconnect)."""
    _, welcome = await server.visitor("Fluister")
    conv = welcome["conversation_id"]
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "whisper", "conversation_id": conv, "text": "let op", "ref": "w"})
    await sup.expect("ack", skip=("queue",))
    counsellor = await server.staff("anna")
    got = await counsellor.expect("assigned")
    assert [(w["type"], w["author"], w["text"]) for w in got["whispers"]] == [
        ("whisper", "Bert", "let op")
    ]
    await counsellor.close()
    again = await server.staff("anna", available=None)
    assert [w["text"] for w in (await again.expect("assigned"))["whispers"]] == ["let op"]


async def test_visitor_notices_follow_the_visitor_language(redis_url: str, key_prefix: str) -> None:
    """counsellor_reconnecting, counsellor_back and transferred come in the visitor's lang."""
    async with custom_server(redis_url, key_prefix, grace={"counsellor_seconds": 0.5}) as live:
        counsellor = await live.staff("anna")
        visitor, _ = await live.visitor("English", lang="en")
        await counsellor.expect("assigned")
        await visitor.expect("assigned")
        await counsellor.close()
        gone = await visitor.expect("notice")
        assert gone["code"] == "counsellor_reconnecting"
        assert gone["message"] == VISITOR_TEXTS["counsellor_reconnecting"]["en"]
        back = await live.staff("anna", available=None)
        told = await visitor.expect("notice")
        assert (told["code"], told["message"]) == (
            "counsellor_back",
            VISITOR_TEXTS["counsellor_back"]["en"],
        )
        await back.expect("assigned")
        await back.close()
        await visitor.expect("notice")  # reconnecting again; past the grace: back to the queue
        moved = await visitor.expect("notice", timeout=5)
        assert (moved["code"], moved["message"]) == (
            "transferred",
            VISITOR_TEXTS["requeued"]["en"],
        )
        assert moved["message"]


async def test_closing_soon_comes_as_closing_time_nears(redis_url: str, key_prefix: str) -> None:
    """A visitor waiting at the same place is told closing_soon once the service clock nears
    closing time, even without an estimate (assumed handling time), in their language."""
    table = {"timezone": "UTC", **{d: ["09:00-21:00"] for d in DAYS}}
    settings = replace(Settings(), hours=table)
    settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
    now = [datetime(2026, 6, 10, 19, 0, tzinfo=UTC).timestamp()]  # two hours before closing
    async with LiveServer.start(settings, redis_url) as live:
        service = live.app[SERVICE]
        service.clock = lambda: now[0]
        service.hub.recheck_seconds = 0.2
        visitor, _ = await live.visitor("Laatkomer", lang="en")
        queued = await visitor.expect("queued")
        assert (queued["position"], queued["eta_seconds"]) == (1, None)
        await visitor.nothing(1.0)  # one assumed conversation fits in the two hours
        now[0] += 110 * 60  # ten minutes to closing
        notice = await visitor.expect("notice", timeout=5, skip=())
        assert (notice["code"], notice["message"]) == ("closing_soon", CLOSING_SOON["en"])
        await visitor.nothing(1.0)  # told once, and no new position: it did not change


# -- half-done hellos: the conversation exists, a later step failed ----------------------
async def _break_attach(live: LiveServer) -> str:
    """Make the step after hello.lua fail: the node's registry key gets a wrong type (the
    test owns this Redis), so attaching the socket's presence raises WRONGTYPE."""
    key = live.store.keys.node_connections(live.app[SERVICE].node_id)
    await live.store.r.delete(key)
    await live.store.r.set(key, "broken")
    return key


async def _orphan_of(live: LiveServer, nickname: str) -> str:
    orphan = await live.store.pending_hello(nickname_key(nickname))
    assert orphan is not None
    return orphan


async def test_half_done_hello_is_timed_out_by_grace(redis_url: str, key_prefix: str) -> None:
    """A hello whose attach fails leaves a conversation with a grace deadline and no presence;
    it ends with timeout after the grace and no counsellor is ever assigned it."""
    async with custom_server(redis_url, key_prefix, grace={"visitor_seconds": 0.5}) as live:
        store = live.store
        key = await _break_attach(live)
        client = await live.connect()
        await client.send({"type": "hello", "nickname": "Halfway"})
        assert (await client.expect("error"))["code"] == "unavailable"
        orphan = await _orphan_of(live, "Halfway")
        assert await store.r.zscore(store.keys.grace, f"v:{orphan}") is not None
        assert not await store.r.exists(store.keys.visitor_presence(orphan))
        await store.r.delete(key)

        async def timed_out() -> bool:
            meta = await store.conversation(orphan) or {}
            return meta.get("state") == "ended" and meta.get("reason") == "timeout"

        await eventually(timed_out, what="the orphan ends with timeout")
        assert orphan not in await store.queue_ids()
        _, welcome = await live.visitor("Next One")
        counsellor = await live.staff("orla")
        assigned = await counsellor.expect("assigned", skip=("queue", "overview"))
        assert assigned["conversation_id"] == welcome["conversation_id"] != orphan


async def test_retry_after_half_done_hello_gets_the_nickname(
    redis_url: str, key_prefix: str
) -> None:
    """A fresh hello with the same nickname after a failed one is welcomed: its own orphan
    (never attached) is ended, not counted as nickname_taken, and never assigned."""
    async with custom_server(redis_url, key_prefix, grace={"visitor_seconds": 120.0}) as live:
        store = live.store
        key = await _break_attach(live)
        client = await live.connect()
        await client.send({"type": "hello", "nickname": "Again"})
        assert (await client.expect("error"))["code"] == "unavailable"
        orphan = await _orphan_of(live, "Again")
        await store.r.delete(key)
        await client.send({"type": "hello", "nickname": "Again"})
        welcome = await client.expect("welcome")
        assert welcome["conversation_id"] != orphan
        meta = await store.conversation(orphan) or {}
        assert (meta.get("state"), meta.get("reason")) == ("ended", "timeout")
        assert await store.queue_ids() == [welcome["conversation_id"]]
        assert await store.r.zscore(store.keys.grace, f"v:{welcome['conversation_id']}") is None
        assert await store.pending_hello(nickname_key("Again")) is None
        counsellor = await live.staff("otto")
        assigned = await counsellor.expect("assigned", skip=("queue", "overview"))
        assert assigned["conversation_id"] == welcome["conversation_id"]


async def test_nickname_of_an_attached_visitor_stays_taken(server: LiveServer) -> None:
    """Only a never-attached hello is ended by a retry: a live visitor's nickname stays taken."""
    _, welcome = await server.visitor("Occupied")
    other = await server.connect()
    await other.send({"type": "hello", "nickname": "Occupied"})
    assert (await other.expect("error"))["code"] == "nickname_taken"
    meta = await server.store.conversation(welcome["conversation_id"]) or {}
    assert meta.get("state") == "waiting"


async def test_socket_closed_right_after_hello_times_out(redis_url: str, key_prefix: str) -> None:
    """A socket closed right after its hello leaves nothing queued: the conversation ends with
    timeout after the grace, and the nickname is free again."""
    async with custom_server(redis_url, key_prefix, grace={"visitor_seconds": 0.5}) as live:
        store = live.store
        client = await live.connect()
        await client.send({"type": "hello", "nickname": "Gone Fast"})
        await client.close()
        pattern = store.keys.conversation("*")

        async def all_timed_out() -> bool:
            convs = [k async for k in store.r.scan_iter(match=pattern)]
            metas = [await store.r.hgetall(k) for k in convs]
            return bool(metas) and all(
                m.get("state") == "ended" and m.get("reason") == "timeout" for m in metas
            )

        await eventually(all_timed_out, what="the conversation ends with timeout")
        assert await store.queue_ids() == []
        _, welcome = await live.visitor("Gone Fast")
        assert welcome["nickname"] == "Gone Fast"
