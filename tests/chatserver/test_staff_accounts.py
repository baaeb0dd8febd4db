"""Staff accounts over their lifetime: disable and enable, new password, changed profile.

Real server, real Redis, real HTTP and websockets; the command line as a real subprocess
on the same Redis (so its changes reach the server's sockets through the event channel).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import InvalidStatus

from tests.chatserver.test_errors import custom_server
from tests.helpers import Client, LiveServer, closed_code

PASSWORD = "correct horse 1"


async def api(
    server: LiveServer, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{server.base}{path}", json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


async def login_status(server: LiveServer, username: str, password: str) -> tuple[int, str]:
    status, body = await api(
        server, "POST", "/api/login", None, {"username": username, "password": password}
    )
    return status, body.get("error", "")


async def admin_token(server: LiveServer) -> str:
    if await server.store.account("ad") is None:
        await server.add_staff("ad", role="admin")
    return str((await server.login("ad"))["token"])


async def socket_of(server: LiveServer, token: str) -> Client:
    tab = await server.connect("/ws/staff", headers={"Authorization": f"Bearer {token}"})
    await tab.expect("welcome")
    return tab


async def refused_upgrade(server: LiveServer, token: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await server.connect("/ws/staff", headers={"Authorization": f"Bearer {token}"})
    return refused.value.response.status_code


async def test_disable_refuses_login_ends_sessions_and_closes_sockets(server: LiveServer) -> None:
    """Disabled: right password 403 account_disabled, wrong one the usual 401; old tokens
    401 on HTTP and the socket upgrade; open sockets closed 4401; listed and audited."""
    admin = await admin_token(server)
    anna_id = await server.add_staff("anna")
    token = (await server.login("anna"))["token"]
    tab = await socket_of(server, token)
    other_tab = await socket_of(server, (await server.login("anna"))["token"])

    status, body = await api(server, "PATCH", f"/api/staff/{anna_id}", admin, {"disabled": True})
    assert status == 200 and body["disabled"] is True and body["id"] == anna_id
    assert await closed_code(tab) == 4401
    assert await closed_code(other_tab) == 4401
    assert (await api(server, "GET", "/api/conversations", token))[0] == 401
    assert await refused_upgrade(server, token) == 401
    assert await login_status(server, "anna", PASSWORD) == (403, "account_disabled")
    assert await login_status(server, "anna", "not her password") == (401, "unauthorised")

    _, listing = await api(server, "GET", "/api/staff", admin)
    disabled = {s["username"]: s["disabled"] for s in listing["staff"]}
    assert disabled == {"anna": True, "ad": False}
    entries = (await api(server, "GET", "/api/audit", admin))[1]["entries"]
    assert [(e["action"], e["staff_id"]) for e in entries if e["action"] == "staff_disable"] == [
        ("staff_disable", anna_id)
    ]


async def test_enable_lets_the_account_log_in_again_but_not_old_sessions(
    server: LiveServer,
) -> None:
    """Enabled again: login works and its socket opens; a session from before stays dead."""
    admin = await admin_token(server)
    anna_id = await server.add_staff("anna")
    old = (await server.login("anna"))["token"]
    assert (await api(server, "PATCH", f"/api/staff/{anna_id}", admin, {"disabled": True}))[
        0
    ] == 200
    status, body = await api(server, "PATCH", f"/api/staff/{anna_id}", admin, {"disabled": False})
    assert status == 200 and body["disabled"] is False
    fresh = (await server.login("anna"))["token"]
    assert (await api(server, "GET", "/api/conversations", fresh))[0] == 200
    await socket_of(server, fresh)
    assert (await api(server, "GET", "/api/conversations", old))[0] == 401
    entries = (await api(server, "GET", "/api/audit", admin))[1]["entries"]
    assert [e["action"] for e in entries if e.get("staff_id") == anna_id] == [
        "staff_disable",
        "staff_enable",
    ]


async def test_disabled_counsellor_conversations_follow_the_dropped_path(
    redis_url: str, key_prefix: str
) -> None:
    """A disabled counsellor's live conversation is handled as a drop: the visitor hears
    counsellor_reconnecting, and after the grace goes back to the front of the queue."""
    async with custom_server(redis_url, key_prefix, grace={"counsellor_seconds": 0.5}) as live:
        admin = await admin_token(live)
        anna = await live.staff("anna")
        visitor, welcome = await live.visitor("Sam")
        conv = welcome["conversation_id"]
        assert (await anna.expect("assigned"))["conversation_id"] == conv
        await visitor.expect("assigned")
        anna_id = (await live.store.account("anna") or {})["id"]
        assert (await api(live, "PATCH", f"/api/staff/{anna_id}", admin, {"disabled": True}))[
            0
        ] == 200
        assert await closed_code(anna) == 4401
        assert (await visitor.expect("notice"))["code"] == "counsellor_reconnecting"
        assert (await visitor.expect("notice", timeout=5))["code"] == "transferred"
        assert (await visitor.expect("queued"))["position"] == 1
        cees = await live.staff("cees")
        assert (await cees.expect("assigned"))["conversation_id"] == conv


async def test_socket_that_missed_the_event_is_closed_by_its_session_check(
    redis_url: str, key_prefix: str
) -> None:
    """Sessions revoked in the store alone (no event): the periodic check closes the socket."""
    auth = {"session_check_seconds": 0.25}
    async with custom_server(redis_url, key_prefix, auth=auth) as live:
        anna_id = await live.add_staff("anna")
        tab = await socket_of(live, (await live.login("anna"))["token"])
        assert await live.store.change_account(anna_id, {}, revoke_sessions=True) is not None
        assert await closed_code(tab) == 4401


async def test_password_reset_ends_sessions_and_swaps_the_password(server: LiveServer) -> None:
    """New password: the old one is refused, the new one works, old sessions and sockets end;
    the audit entry names the account and never the password."""
    admin = await admin_token(server)
    anna_id = await server.add_staff("anna")
    old = (await server.login("anna"))["token"]
    tab = await socket_of(server, old)
    new_password = "a brand new passphrase"
    status, body = await api(
        server, "POST", f"/api/staff/{anna_id}/password", admin, {"password": new_password}
    )
    assert status == 200, body
    assert await closed_code(tab) == 4401
    assert (await api(server, "GET", "/api/conversations", old))[0] == 401
    assert await login_status(server, "anna", PASSWORD) == (401, "unauthorised")
    fresh = (await server.login("anna", new_password))["token"]
    assert (await api(server, "GET", "/api/conversations", fresh))[0] == 200
    entries = (await api(server, "GET", "/api/audit", admin))[1]["entries"]
    mine = [e for e in entries if e["action"] == "staff_password"]
    assert [e["staff_id"] for e in mine] == [anna_id]
    assert new_password not in json.dumps(entries)


async def test_changed_skills_and_name_are_used_for_assignment(server: LiveServer) -> None:
    """New skills and display name apply to a counsellor on shift: a status frame keeps
    them, the assignment picks her for the new skill, the visitor sees the new name."""
    admin = await admin_token(server)
    anna = await server.staff("anna", skills=("school",))
    anna_id = (await server.store.account("anna") or {})["id"]
    change = {"skills": ["thuis"], "display_name": "Anna B.", "trainee": False}
    status, body = await api(server, "PATCH", f"/api/staff/{anna_id}", admin, change)
    assert status == 200, body
    assert (body["skills"], body["display_name"], body["trainee"]) == ("thuis", "Anna B.", "0")
    await anna.send({"type": "status", "state": "available", "capacity": 1})
    await anna.expect("status")
    state = await server.store.staff_state(anna_id)
    assert (state["skills"], state["name"]) == ("thuis", "Anna B.")
    # A fresh counsellor without the topic's skill would not get this visitor for 120 s.
    visitor, welcome = await server.visitor("Sam", topic="thuis")
    assert (await anna.expect("assigned"))["conversation_id"] == welcome["conversation_id"]
    assert (await visitor.expect("assigned"))["counsellor"] == "Anna B."
    entries = (await api(server, "GET", "/api/audit", admin))[1]["entries"]
    assert [(e["action"], e["fields"]) for e in entries if e["action"] == "staff_update"] == [
        ("staff_update", "display_name,skills,trainee")
    ]


async def test_trainee_flag_reaches_login_welcome_and_staff_state(server: LiveServer) -> None:
    """Made a trainee: the next socket's welcome says so and the staff state carries it."""
    admin = await admin_token(server)
    anna = await server.staff("anna")
    anna_id = (await server.store.account("anna") or {})["id"]
    status, _ = await api(server, "PATCH", f"/api/staff/{anna_id}", admin, {"trainee": True})
    assert status == 200
    assert (await server.store.staff_state(anna_id))["trainee"] == "1"
    await anna.send({"type": "status", "state": "paused"})
    await anna.expect("status")
    assert (await server.store.staff_state(anna_id))["trainee"] == "1"
    tab = await server.connect(
        "/ws/staff", headers={"Authorization": f"Bearer {(await server.login('anna'))['token']}"}
    )
    assert (await tab.expect("welcome"))["trainee"] is True


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([1, 2], "JSON object"),
        ({}, "change one or more"),
        ({"role": "admin"}, "unknown field role"),
        ({"skills": "school"}, "skills must be a list"),
        ({"skills": ["school", 3]}, "skills must be a list"),
        ({"skills": ["zwemmen"]}, "unknown topic ids zwemmen"),
        ({"trainee": "yes"}, "trainee must be bool"),
        ({"disabled": 1}, "disabled must be bool"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": 5}, "display_name must be str"),
    ],
)
async def test_bad_changes_get_400_with_a_reason(
    server: LiveServer, body: Any, reason: str
) -> None:
    """A bad PATCH body is 400 invalid with a message saying why, and changes nothing."""
    admin = await admin_token(server)
    anna_id = await server.add_staff("anna", skills=("school",))
    before = await server.store.account("anna")
    status, answer = await api(server, "PATCH", f"/api/staff/{anna_id}", admin, body)
    assert status == 400 and answer["error"] == "invalid"
    assert reason in answer["message"]
    assert await server.store.account("anna") == before


async def test_password_and_missing_accounts_and_self_disable(server: LiveServer) -> None:
    """Short or missing password 400; an unknown staff id 404; disabling oneself 409."""
    admin = await admin_token(server)
    ad_id = (await server.store.account("ad") or {})["id"]
    anna_id = await server.add_staff("anna")
    path = f"/api/staff/{anna_id}/password"
    status, answer = await api(server, "POST", path, admin, {"password": "short"})
    assert (status, answer["error"]) == (400, "invalid") and "10 characters" in answer["message"]
    assert (await api(server, "POST", path, admin, {}))[0] == 400
    assert (await api(server, "POST", path, admin, ["x"]))[0] == 400
    await server.login("anna")  # still the old password
    for method, route, body in [
        ("PATCH", "/api/staff/nosuchid", {"trainee": True}),
        ("POST", "/api/staff/nosuchid/password", {"password": "long enough now"}),
    ]:
        status, answer = await api(server, method, route, admin, body)
        assert (status, answer["error"]) == (404, "not_found")
    status, answer = await api(server, "PATCH", f"/api/staff/{ad_id}", admin, {"disabled": True})
    assert (status, answer["error"]) == (409, "conflict")
    assert await login_status(server, "ad", "wrong password x") == (401, "unauthorised")


async def test_creation_validates_skills_too(server: LiveServer) -> None:
    """POST /api/staff refuses skills that are no configured topic, like PATCH does."""
    admin = await admin_token(server)
    body = {
        "username": "nieuw",
        "password": "correct horse 2",
        "role": "counsellor",
        "display_name": "Nieuw",
        "skills": ["zwemmen"],
    }
    status, answer = await api(server, "POST", "/api/staff", admin, body)
    assert status == 400 and "zwemmen" in answer["message"]
    assert await server.store.account("nieuw") is None


# -- the command line -------------------------------------------------------------------


def cli(
    tmp_path: Path, redis_url: str, key_prefix: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "chat.toml"
    config.write_text(f'[server]\nkey_prefix = "{key_prefix}"\n')
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "chatserver",
            "staff",
            *args,
            "--redis-url",
            redis_url,
            "--config",
            str(config),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def run_cli(*args: Any, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, *args, stdin=stdin)


@pytest.mark.slow
async def test_cli_manages_an_account_over_its_lifetime(
    server: LiveServer, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """staff add/list/disable/enable/passwd/set from another process: the server's socket
    closes, logins follow, profile changes land, each change audited (actor cli)."""
    where = (tmp_path, redis_url, key_prefix)
    made = await run_cli(
        *where,
        "add",
        "anna",
        "--role",
        "counsellor",
        "--display-name",
        "Anna",
        "--skills",
        "school",
        "--password-stdin",
        stdin=f"{PASSWORD}\n",
    )
    assert made.returncode == 0, made.stderr
    anna_id = json.loads(made.stdout)["staff_id"]
    tab = await socket_of(server, (await server.login("anna"))["token"])

    done = await run_cli(*where, "disable", "anna")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["disabled"] is True
    assert await closed_code(tab) == 4401
    assert await login_status(server, "anna", PASSWORD) == (403, "account_disabled")

    listed = await run_cli(*where, "list")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["username"], r["disabled"]) for r in rows] == [("anna", True)]
    assert "password" not in listed.stdout

    assert (await run_cli(*where, "enable", "anna")).returncode == 0
    old = (await server.login("anna"))["token"]
    done = await run_cli(*where, "passwd", "anna", stdin="another long password\n")
    assert done.returncode == 0, done.stderr
    assert (await api(server, "GET", "/api/conversations", old))[0] == 401
    assert await login_status(server, "anna", PASSWORD) == (401, "unauthorised")
    await server.login("anna", "another long password")

    done = await run_cli(
        *where, "set", "anna", "--skills", "thuis,pesten", "--trainee", "--display-name", "Anna B."
    )
    assert done.returncode == 0, done.stderr
    account = await server.store.account("anna") or {}
    assert (account["skills"], account["trainee"], account["display_name"]) == (
        "thuis,pesten",
        "1",
        "Anna B.",
    )
    assert (await run_cli(*where, "set", "anna", "--no-trainee")).returncode == 0
    assert (await server.store.account("anna") or {})["trainee"] == "0"

    actions = [
        (e["actor"], e["action"], e["staff_id"])
        for e in await server.store.audit_entries()
        if e["action"].startswith("staff_")
    ]
    assert actions == [
        ("cli", a, anna_id)
        for a in (
            "staff_add",
            "staff_disable",
            "staff_enable",
            "staff_password",
            "staff_update",
            "staff_update",
        )
    ]


@pytest.mark.slow
async def test_cli_refuses_bad_values_with_exit_2(
    server: LiveServer, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Unknown user, short password, unknown skill, nothing to set: exit 2, a reason, no change."""
    where = (tmp_path, redis_url, key_prefix)
    await server.add_staff("anna")
    before = await server.store.account("anna")
    for args, stdin, reason in [
        (("disable", "nobody"), "", "no account named 'nobody'"),
        (("passwd", "anna"), "short\n", "at least 10 characters"),
        (("set", "anna", "--skills", "zwemmen"), "", "unknown topic ids zwemmen"),
        (("set", "anna"), "", "nothing to change"),
    ]:
        done = await run_cli(*where, *args, stdin=stdin)
        assert done.returncode == 2, (args, done.stderr)
        assert reason in done.stderr, done.stderr
    assert await server.store.account("anna") == before
