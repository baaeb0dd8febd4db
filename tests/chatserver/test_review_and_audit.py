"""Review afterwards, comments, the audit log (API and CLI) and staff accounts, per role."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.chatserver.test_supervision import chatting
from tests.helpers import LiveServer, eventually

JSON_HEADERS = {"X-Requested-With": "chat"}


async def call(
    server: LiveServer,
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{server.base}{path}", json=body, headers=hdrs) as r,
    ):
        return r.status, await r.json()


async def ended_conversation(server: LiveServer) -> str:
    visitor, counsellor, conv = await chatting(server)
    await visitor.send({"type": "say", "text": "mail me op sam@example.nl", "ref": "1"})
    await visitor.expect("ack")
    await counsellor.send(
        {
            "type": "end",
            "conversation_id": conv,
            "wrapup": {"topics": ["school"], "note": "goed gesprek"},
        }
    )
    await visitor.expect("ended")
    return conv


async def test_review_comment_and_rights(server: LiveServer) -> None:
    """Supervisors review any ended chat and comment; the counsellor reads own; others 404."""
    conv = await ended_conversation(server)
    await server.add_staff("bert", "supervisor")
    await server.add_staff("bob")
    await server.add_staff("root", "admin")
    sup = (await server.login("bert"))["token"]
    anna = (await server.login("anna"))["token"]
    bob = (await server.login("bob"))["token"]
    admin = (await server.login("root"))["token"]
    status, listing = await call(server, "GET", "/api/conversations", sup)
    assert status == 200 and [c["conversation_id"] for c in listing["conversations"]] == [conv]
    status, review = await call(server, "GET", f"/api/conversations/{conv}", sup)
    assert status == 200 and review["wrapup_note"] == "goed gesprek"
    assert [m["seq"] for m in review["messages"]] == [1]
    status, _ = await call(
        server,
        "POST",
        f"/api/conversations/{conv}/comments",
        sup,
        {"seq": 1, "text": "mooi doorgevraagd"},
        JSON_HEADERS,
    )
    assert status == 201
    status, _ = await call(
        server,
        "POST",
        f"/api/conversations/{conv}/comments",
        sup,
        {"seq": 9, "text": "x"},
        JSON_HEADERS,
    )
    assert status == 400
    status, own = await call(server, "GET", f"/api/conversations/{conv}", anna)
    assert status == 200 and own["comments"][0]["text"] == "mooi doorgevraagd"
    assert (await call(server, "GET", f"/api/conversations/{conv}", bob))[0] == 404
    assert (await call(server, "GET", "/api/conversations", bob))[1]["conversations"] == []
    assert (await call(server, "GET", f"/api/conversations/{conv}", admin))[0] == 403
    assert (
        await call(
            server,
            "POST",
            f"/api/conversations/{conv}/comments",
            anna,
            {"seq": 1, "text": "x"},
            JSON_HEADERS,
        )
    )[0] == 403
    assert (await call(server, "GET", f"/api/conversations/{conv}", None))[0] == 401
    status, audit = await call(server, "GET", "/api/audit", admin)
    assert status == 200
    assert [(e["action"], e["conversation_id"]) for e in audit["entries"]] == [
        ("review", conv),
        ("comment", conv),
    ]
    for token in (sup, anna, bob):
        assert (await call(server, "GET", "/api/audit", token))[0] == 403


async def test_cookie_requests_need_our_own_page(server: LiveServer) -> None:
    """A cookie-authenticated POST without our header, or cross-site, is refused (CSRF)."""
    conv = await ended_conversation(server)
    await server.add_staff("bert", "supervisor")
    token = (await server.login("bert"))["token"]
    cookie = {"Cookie": f"__Host-chat_session={token}"}
    path = f"/api/conversations/{conv}/comments"
    body = {"seq": 1, "text": "x"}
    assert (await call(server, "POST", path, None, body, cookie))[0] == 403
    assert (
        await call(
            server,
            "POST",
            path,
            None,
            body,
            {**cookie, **JSON_HEADERS, "Sec-Fetch-Site": "cross-site"},
        )
    )[0] == 403
    assert (await call(server, "POST", path, None, body, {**cookie, **JSON_HEADERS}))[0] == 201


async def test_admin_manages_staff(server: LiveServer) -> None:
    """Only an admin lists and creates staff accounts; passwords never leave the server."""
    await server.add_staff("root", "admin")
    await server.add_staff("bert", "supervisor")
    admin = (await server.login("root"))["token"]
    sup = (await server.login("bert"))["token"]
    new = {
        "username": "nieuw",
        "password": "een lang wachtwoord",
        "role": "counsellor",
        "display_name": "Nieuw",
        "skills": ["school"],
    }
    assert (await call(server, "POST", "/api/staff", sup, new))[0] == 403
    status, made = await call(server, "POST", "/api/staff", admin, new)
    assert status == 201 and made["role"] == "counsellor"
    assert (await call(server, "POST", "/api/staff", admin, new))[0] == 409
    status, listing = await call(server, "GET", "/api/staff", admin)
    names = {s["username"] for s in listing["staff"]}
    assert names == {"root", "bert", "nieuw"}
    assert "password" not in json.dumps(listing) and "argon2" not in json.dumps(listing)
    await server.login("nieuw", "een lang wachtwoord")


async def test_admin_takes_no_part_in_conversations(server: LiveServer) -> None:
    """An admin's staff socket may not go available or watch: least privilege."""
    admin = await server.staff("root", role="admin", available=None)
    await admin.send({"type": "status", "state": "available"})
    assert (await admin.expect("error", skip=("queue",)))["code"] == "forbidden"
    await admin.send({"type": "watch", "conversation_id": "x"})
    assert (await admin.expect("error", skip=("queue",)))["code"] == "forbidden"


async def test_audit_cli(server: LiveServer, tmp_path: Path) -> None:
    """``chatserver audit`` prints the audit log as JSON lines."""
    _, _, conv = await chatting(server)
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "watch", "conversation_id": conv})
    await sup.expect("watching")
    config = tmp_path / "c.toml"
    config.write_text(f'[server]\nkey_prefix = "{server.settings.server.key_prefix}"\n')
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatserver",
            "audit",
            "--redis-url",
            server.redis_url,
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["action"], r["conversation_id"], r["role"]) for r in rows] == [
        ("watch", conv, "supervisor")
    ]


async def audit_until(server: LiveServer, action: str) -> list[dict[str, str]]:
    """The audit log, once it holds an ``action`` record (records are written async)."""

    async def with_action() -> list[dict[str, str]] | None:
        entries = await server.store.audit_entries()
        return entries if any(e["action"] == action for e in entries) else None

    entries: list[dict[str, str]] = await eventually(with_action, what=f"an {action} record")
    return entries


async def test_watch_ends_on_record_when_the_socket_closes(server: LiveServer) -> None:
    """A watcher whose socket closes leaves an unwatch record with reason disconnect."""
    _, _, conv = await chatting(server)
    sup = await server.staff("bert", role="supervisor", available=None)
    bert = (await server.store.account("bert"))["id"]  # type: ignore[index]
    await sup.send({"type": "watch", "conversation_id": conv})
    await sup.expect("watching")
    await sup.close()
    entries = await audit_until(server, "unwatch")
    assert [(e["action"], e.get("reason")) for e in entries] == [
        ("watch", None),
        ("unwatch", "disconnect"),
    ]
    assert entries[1]["actor"] == bert and entries[1]["conversation_id"] == conv
    assert await server.store.watcher_ids(conv) == set()


async def test_a_counsellor_closing_ends_no_watch_on_record(server: LiveServer) -> None:
    """A counsellor whose socket closes writes no unwatch for the chat they hold; the
    watching supervisor's close writes exactly one unwatch (reason disconnect)."""
    visitor, anna, conv = await chatting(server)
    sup = await server.staff("bert", role="supervisor", available=None)
    bert = (await server.store.account("bert"))["id"]  # type: ignore[index]
    await sup.send({"type": "watch", "conversation_id": conv})
    await sup.expect("watching")
    await anna.close()
    # Her visitor hears she is reconnecting: the close of her socket has been handled.
    notice = await visitor.expect("notice", skip=("queued", "queue", "typing"))
    assert notice["code"] == "counsellor_reconnecting"
    await sup.close()
    entries = await audit_until(server, "unwatch")
    assert [(e["action"], e["actor"], e.get("reason")) for e in entries] == [
        ("watch", bert, None),
        ("unwatch", bert, "disconnect"),
    ]


async def test_a_failing_audit_write_does_not_stop_the_clean_up(server: LiveServer) -> None:
    """When the unwatch record of a closing watcher cannot be written, the watch and the
    staff connection are still cleaned up."""
    _, _, conv = await chatting(server)
    sup = await server.staff("bert", role="supervisor", available=None)
    bert = (await server.store.account("bert"))["id"]  # type: ignore[index]
    await sup.send({"type": "watch", "conversation_id": conv})
    await sup.expect("watching")
    assert await server.store.watcher_ids(conv) == {bert}
    # A string where the audit stream belongs: every XADD fails with WRONGTYPE.
    await server.store.r.set(server.store.keys.audit, "not a stream")
    await sup.close()
    conns = server.store.keys.staff_connections(bert)

    async def cleaned() -> bool:
        return await server.store.watcher_ids(conv) == set() and not await server.store.r.scard(
            conns
        )

    await eventually(cleaned)


async def test_no_supervision_without_an_audit_record(server: LiveServer) -> None:
    """While the audit log cannot be written, watch, whisper, join and take-over answer
    with an error and take no effect; once it can, each is on record first."""
    visitor, counsellor, conv = await chatting(server)
    sup = await server.staff("bert", role="supervisor", available=None)
    anna = (await server.store.account("anna"))["id"]  # type: ignore[index]
    # A string where the audit stream belongs: every XADD fails with WRONGTYPE.
    await server.store.r.set(server.store.keys.audit, "not a stream")
    for frame in (
        {"type": "watch", "conversation_id": conv},
        {"type": "whisper", "conversation_id": conv, "text": "stil"},
        {"type": "join", "conversation_id": conv},
        {"type": "takeover", "conversation_id": conv},
    ):
        await sup.send({**frame, "ref": "x"})
        err = await sup.expect("error", skip=("queue",))
        assert err["code"] == "unavailable" and err["ref"] == "x", frame
    await sup.nothing(0.3, skip=("queue", "overview"))
    await counsellor.nothing(0.3, skip=("queue",))  # no whisper, no watched notice, no end
    await visitor.nothing(0.3)  # no system message, no transfer
    assert await server.store.watcher_ids(conv) == set()
    assert await server.store.whispers(conv) == []
    assert [m.text for m in await server.store.messages(conv)] == []
    meta = await server.store.conversation(conv)
    assert meta is not None and meta["counsellor"] == anna
    await server.store.r.delete(server.store.keys.audit)
    await sup.send({"type": "join", "conversation_id": conv, "ref": "j"})
    await sup.expect("ack", skip=("queue", "watching", "message", "overview"))
    await asyncio.sleep(0.01)  # the next record gets a later stream id (millisecond clock)
    await sup.send({"type": "takeover", "conversation_id": conv, "ref": "t"})
    await sup.expect("assigned", skip=("queue", "message", "overview", "notice", "ack"))
    entries = await server.store.audit_entries()
    assert [e["action"] for e in entries] == ["join", "watch", "takeover"]
    assert entries[2]["from"] == anna and entries[2]["conversation_id"] == conv
    await server.add_staff("root", "admin")
    admin = (await server.login("root"))["token"]
    since = int(entries[2]["id"].split("-")[0]) / 1000
    status, body = await call(server, "GET", f"/api/audit?since={since}", admin)
    assert status == 200 and [e["action"] for e in body["entries"]] == ["takeover"]
    status, body = await call(server, "GET", "/api/audit?since=soon", admin)
    assert status == 400
