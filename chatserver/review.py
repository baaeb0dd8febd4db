"""HTTP for staff: review of ended conversations, comments, the audit log, staff accounts.

Rights: a counsellor reads only conversations they held (and the comments on them); a
supervisor reads every conversation within retention, comments, and is audited for each
review; an admin manages staff accounts and reads the audit log. Cookie-authenticated
requests that change something must come from our own pages (CSRF defence).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from chatserver.appkeys import SETTINGS, STORE
from chatserver.auth import (
    AccountExists,
    NoSuchAccount,
    Role,
    StaffMember,
    add_staff,
    check_skills,
    public_account,
    reset_password,
    set_disabled,
    update_profile,
)
from chatserver.login import authenticate
from chatserver.security import csrf_ok
from chatserver.store import Store
from moderation import redact
from queueing.topics import topics_for

log = structlog.get_logger("chatserver.review")
NO_STORE = {"Cache-Control": "no-store"}


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=NO_STORE)


async def staff_or_error(
    request: web.Request, allowed: Callable[[StaffMember], bool]
) -> StaffMember | web.Response:
    member = await authenticate(request)
    if member is None:
        return error(401, "unauthorised", "log in first")
    if not allowed(member):
        return error(403, "forbidden", "your role may not do this")
    if request.method not in ("GET", "HEAD") and not csrf_ok(request):
        return error(403, "forbidden", "cross-site request refused")
    return member


def _store(request: web.Request) -> Store:
    return request.app[STORE]


def _may_read(member: StaffMember, meta: dict[str, str]) -> bool:
    return (
        member.supervises
        or meta.get("counsellor") == member.staff_id
        or (member.chats and member.staff_id in meta.get("past_counsellors", "").split(","))
    )


async def list_conversations(request: web.Request) -> web.Response:
    member = await staff_or_error(request, lambda m: m.chats)
    if isinstance(member, web.Response):
        return member
    store = _store(request)
    days = min(float(request.query.get("days", "30") or 30), 400.0)
    now = time.time()
    out = []
    for conv in await store.ended_ids(now - days * 86400, now):
        meta = await store.conversation(conv)
        if meta is None or not _may_read(member, meta):
            continue
        out.append(
            {
                "conversation_id": conv,
                "visitor": meta.get("nickname", ""),
                "counsellor": meta.get("counsellor_name", ""),
                "topic": meta.get("topic") or None,
                "reason": meta.get("reason"),
                "started_ts": float(meta.get("assigned") or meta.get("created") or 0),
                "ended_ts": float(meta.get("ended") or 0),
                "comments": len(await store.comments(conv)),
            }
        )
    return web.json_response({"conversations": out}, headers=NO_STORE)


async def read_conversation(request: web.Request) -> web.Response:
    member = await staff_or_error(request, lambda m: m.chats)
    if isinstance(member, web.Response):
        return member
    store = _store(request)
    conv = request.match_info["conversation_id"]
    meta = await store.conversation(conv)
    if meta is None or meta.get("state") != "ended" or not _may_read(member, meta):
        return error(404, "not_found", "no such ended conversation (or not yours)")
    if member.supervises:
        await store.audit(member.staff_id, member.role.value, "review", conv)
    messages = [{**m.frame(conv), "text": redact(m.text)} for m in await store.messages(conv)]
    return web.json_response(
        {
            "conversation_id": conv,
            "visitor": meta.get("nickname", ""),
            "counsellor": meta.get("counsellor_name", ""),
            "topic": meta.get("topic") or None,
            "reason": meta.get("reason"),
            "wrapup_topics": [t for t in meta.get("wrapup_topics", "").split(",") if t],
            "wrapup_note": redact(meta["wrapup_note"]) if meta.get("wrapup_note") else None,
            "messages": messages,
            "comments": await store.comments(conv),
        },
        headers=NO_STORE,
    )


async def add_comment(request: web.Request) -> web.Response:
    member = await staff_or_error(request, lambda m: m.supervises)
    if isinstance(member, web.Response):
        return member
    store = _store(request)
    conv = request.match_info["conversation_id"]
    meta = await store.conversation(conv)
    if meta is None or meta.get("state") != "ended":
        return error(404, "not_found", "no such ended conversation")
    try:
        body = await request.json()
        seq, text = body["seq"], body["text"]
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(text, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return error(400, "invalid", "seq (int) and text (string) are required")
    if not text.strip() or len(text) > 2000:
        return error(400, "invalid", "text must be 1 to 2000 characters")
    if not 1 <= seq <= await store.message_count(conv):
        return error(400, "invalid", "no message with that seq")
    await store.audit(member.staff_id, member.role.value, "comment", conv, {"seq": str(seq)})
    ttl = max(60, int(request.app[SETTINGS].retention.transcripts_days * 86400))
    await store.add_comment(conv, seq, member.staff_id, member.display_name, text, time.time(), ttl)
    return web.json_response({"status": "added"}, status=201, headers=NO_STORE)


async def read_audit(request: web.Request) -> web.Response:
    member = await staff_or_error(request, lambda m: m.administers)
    if isinstance(member, web.Response):
        return member
    try:
        since = float(request.query.get("since", "0"))
    except ValueError:
        return error(400, "invalid", "since must be Unix seconds")
    entries = await _store(request).audit_entries(since=since)
    return web.json_response({"entries": entries}, headers=NO_STORE)


async def list_staff(request: web.Request) -> web.Response:
    member = await staff_or_error(request, lambda m: m.administers)
    if isinstance(member, web.Response):
        return member
    accounts = await _store(request).all_accounts()
    return web.json_response({"staff": [public_account(a) for a in accounts]}, headers=NO_STORE)


def _topic_ids(request: web.Request) -> list[str]:
    return [t.id for t in topics_for(request.app[SETTINGS].topics)]


async def create_staff(request: web.Request) -> web.Response:
    member = await staff_or_error(request, lambda m: m.administers)
    if isinstance(member, web.Response):
        return member
    try:
        body: dict[str, Any] = await request.json()
        role = Role(body["role"])
        username, password = str(body["username"]), str(body["password"])
        display_name = str(body["display_name"])
        skills = tuple(str(s) for s in body.get("skills", []))
        trainee = bool(body.get("trainee", False))
    except (ValueError, KeyError, TypeError):
        return error(400, "invalid", "username, password, role and display_name are required")
    store = _store(request)
    try:
        check_skills(skills, _topic_ids(request))
        made = await add_staff(store, username, password, role, display_name, skills, trainee)
    except AccountExists:
        return error(409, "conflict", "that username exists already")
    except ValueError as exc:
        return error(400, "invalid", str(exc))
    await store.audit(
        member.staff_id, member.role.value, "staff_add", "", {"staff_id": made.staff_id}
    )
    return web.json_response(
        {"staff_id": made.staff_id, "username": made.username, "role": made.role.value},
        status=201,
        headers=NO_STORE,
    )


#: PATCH /api/staff/{staff_id}: field -> the JSON type it takes.
_CHANGES: dict[str, type] = {"display_name": str, "skills": list, "trainee": bool, "disabled": bool}


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def change_staff(request: web.Request) -> web.Response:
    """Change an account: display_name, skills (topic ids), trainee, disabled. Disabling
    revokes every session of it and closes its sockets; an admin cannot disable themself."""
    member = await staff_or_error(request, lambda m: m.administers)
    if isinstance(member, web.Response):
        return member
    body = await _json_object(request)
    if body is None:
        return error(400, "invalid", "the body must be a JSON object")
    unknown = sorted(set(body) - set(_CHANGES))
    if unknown or not body:
        what = f"unknown field {', '.join(unknown)}; " if unknown else ""
        return error(400, "invalid", f"{what}change one or more of {', '.join(_CHANGES)}")
    for name, value in body.items():
        if not isinstance(value, _CHANGES[name]) or (
            isinstance(value, list) and not all(isinstance(s, str) for s in value)
        ):
            kind = "a list of topic ids" if name == "skills" else _CHANGES[name].__name__
            return error(400, "invalid", f"{name} must be {kind}")
    staff_id = request.match_info["staff_id"]
    store = _store(request)
    if await store.account_by_id(staff_id) is None:
        return error(404, "not_found", "no staff account with that id")
    if body.get("disabled") is True and staff_id == member.staff_id:
        return error(409, "conflict", "you cannot disable your own account")
    profile = {k: body[k] for k in ("display_name", "skills", "trainee") if k in body}
    try:
        if profile:
            skills = profile.get("skills")
            await update_profile(
                store,
                staff_id,
                _topic_ids(request),
                display_name=profile.get("display_name"),
                skills=tuple(skills) if skills is not None else None,
                trainee=profile.get("trainee"),
            )
            await store.audit(
                member.staff_id,
                member.role.value,
                "staff_update",
                "",
                {"staff_id": staff_id, "fields": ",".join(sorted(profile))},
            )
        if "disabled" in body:
            changed = await set_disabled(store, staff_id, body["disabled"])
            action = "staff_disable" if changed.disabled else "staff_enable"
            await store.audit(
                member.staff_id, member.role.value, action, "", {"staff_id": staff_id}
            )
    except NoSuchAccount:
        return error(404, "not_found", "no staff account with that id")
    except ValueError as exc:
        return error(400, "invalid", str(exc))
    account = await store.account_by_id(staff_id) or {}
    log.info("staff_changed", staff_id=staff_id, fields=sorted(body))
    return web.json_response(public_account(account), headers=NO_STORE)


async def change_password(request: web.Request) -> web.Response:
    """Set a new password for an account (the rules of staff creation); revokes every
    session of it and closes its sockets."""
    member = await staff_or_error(request, lambda m: m.administers)
    if isinstance(member, web.Response):
        return member
    body = await _json_object(request)
    password = body.get("password") if body is not None else None
    if not isinstance(password, str):
        return error(400, "invalid", "password (string) is required")
    staff_id = request.match_info["staff_id"]
    store = _store(request)
    try:
        await reset_password(store, staff_id, password)
    except NoSuchAccount:
        return error(404, "not_found", "no staff account with that id")
    except ValueError as exc:
        return error(400, "invalid", str(exc))
    await store.audit(
        member.staff_id, member.role.value, "staff_password", "", {"staff_id": staff_id}
    )
    log.info("staff_password_reset", staff_id=staff_id)
    return web.json_response({"status": "password changed"}, headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/conversations", list_conversations)
    app.router.add_get("/api/conversations/{conversation_id}", read_conversation)
    app.router.add_post("/api/conversations/{conversation_id}/comments", add_comment)
    app.router.add_get("/api/audit", read_audit)
    app.router.add_get("/api/staff", list_staff)
    app.router.add_post("/api/staff", create_staff)
    app.router.add_patch("/api/staff/{staff_id}", change_staff)
    app.router.add_post("/api/staff/{staff_id}/password", change_password)
