"""Access control, one row per socket frame type and HTTP route, one column per role.

The table says what each role gets; the test builds one scene per role on a real server
(a counsellor's own conversations, a colleague's, waiting visitors, ended ones) and runs
every row against it. A counsellor touches only conversations assigned to them;
supervisors all; an admin manages staff, reads statistics and the audit log, and takes
part in no conversation; a visitor's socket knows no staff frame; without a session the
staff socket and the staff routes answer 401.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import InvalidStatus

from tests.chatserver.test_errors import custom_server
from tests.helpers import Client, LiveServer

ROLES = ("counsellor", "supervisor", "admin", "visitor", "unauthenticated")
OK = "ok"


def row(c: str, s: str, a: str, v: str, u: str = "401") -> dict[str, str]:
    return dict(zip(ROLES, (c, s, a, v, u), strict=True))


# Socket frames. Target "own": a conversation held by the counsellor Anna; "other": one held
# by her colleague Olga; "waiting": a visitor in the queue. Each row gets a fresh target.
SOCKET: list[tuple[str, str | None, dict[str, Any], dict[str, str]]] = [
    (
        "status",
        None,
        {"type": "status", "state": "paused"},
        row(OK, OK, "forbidden", "unknown_type"),
    ),
    ("say own", "own", {"type": "say", "text": "hoi"}, row(OK, "not_found", "forbidden", OK)),
    (
        "say other",
        "other",
        {"type": "say", "text": "hoi"},
        row("not_found", "not_found", "forbidden", OK),
    ),
    (
        "typing own",
        "own",
        {"type": "typing", "active": True},
        row(OK, "not_found", "forbidden", OK),
    ),
    (
        "typing other",
        "other",
        {"type": "typing", "active": True},
        row("not_found", "not_found", "forbidden", OK),
    ),
    ("help own", "own", {"type": "help"}, row(OK, "not_found", "forbidden", "unknown_type")),
    (
        "help other",
        "other",
        {"type": "help"},
        row("not_found", "not_found", "forbidden", "unknown_type"),
    ),
    ("end own", "own", {"type": "end"}, row(OK, "not_found", "forbidden", "unknown_type")),
    (
        "end other",
        "other",
        {"type": "end"},
        row("not_found", "not_found", "forbidden", "unknown_type"),
    ),
    ("transfer own", "own", {"type": "transfer"}, row(OK, OK, "forbidden", "unknown_type")),
    (
        "transfer other",
        "other",
        {"type": "transfer"},
        row("not_found", OK, "forbidden", "unknown_type"),
    ),
    ("block own", "own", {"type": "block"}, row(OK, OK, "forbidden", "unknown_type")),
    ("block other", "other", {"type": "block"}, row("not_found", OK, "forbidden", "unknown_type")),
    ("overview", None, {"type": "overview"}, row("forbidden", OK, "forbidden", "unknown_type")),
    ("watch other", "other", {"type": "watch"}, row("forbidden", OK, "forbidden", "unknown_type")),
    (
        "watch waiting",
        "waiting",
        {"type": "watch"},
        row("forbidden", OK, "forbidden", "unknown_type"),
    ),
    (
        "unwatch other",
        "other",
        {"type": "unwatch"},
        row("forbidden", OK, "forbidden", "unknown_type"),
    ),
    (
        "whisper other",
        "other",
        {"type": "whisper", "text": "x"},
        row("forbidden", OK, "forbidden", "unknown_type"),
    ),
    (
        "whisper waiting",
        "waiting",
        {"type": "whisper", "text": "x"},
        row("forbidden", OK, "forbidden", "unknown_type"),
    ),
    ("join other", "other", {"type": "join"}, row("forbidden", OK, "forbidden", "unknown_type")),
    (
        "takeover other",
        "other",
        {"type": "takeover"},
        row("forbidden", OK, "forbidden", "unknown_type"),
    ),
    (
        "prioritise",
        "waiting",
        {"type": "prioritise", "priority": 1},
        row("forbidden", OK, "forbidden", "unknown_type"),
    ),
    (
        "watch_trainee",
        None,
        {"type": "watch_trainee", "staff_id": "@tim"},
        row("forbidden", OK, "forbidden", "unknown_type"),
    ),
    (
        "unwatch_trainee",
        None,
        {"type": "unwatch_trainee", "staff_id": "@tim"},
        row("forbidden", OK, "forbidden", "unknown_type"),
    ),
    (
        "unknown",
        None,
        {"type": "launch"},
        row("unknown_type", "unknown_type", "unknown_type", "unknown_type"),
    ),
    # Visitor frames: not staff frames. (The visitor already said hello; nothing ended yet.)
    (
        "hello",
        None,
        {"type": "hello", "nickname": "Nogmaals"},
        row("unknown_type", "unknown_type", "unknown_type", "conflict"),
    ),
    (
        "survey",
        None,
        {"type": "survey", "rating": 3},
        row("unknown_type", "unknown_type", "unknown_type", "conflict"),
    ),
    (
        "forget",
        None,
        {"type": "forget"},
        row("unknown_type", "unknown_type", "unknown_type", "conflict"),
    ),
    ("leave", None, {"type": "leave"}, row("unknown_type", "unknown_type", "unknown_type", OK)),
]

# HTTP routes: status codes. "{own}" / "{other}": an ended conversation of Anna / of Olga.
HTTP: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "/api/stats", None, row("403", "200", "200", "401")),
    ("GET", "/stats", None, row("403", "200", "200", "401")),
    ("GET", "/api/stats.csv", None, row("403", "200", "200", "401")),
    ("GET", "/api/audit", None, row("403", "403", "200", "401")),
    ("GET", "/api/export", None, row("403", "200", "403", "401")),
    ("GET", "/api/staff", None, row("403", "403", "200", "401")),
    (
        "POST",
        "/api/staff",
        {
            "username": "nieuw",
            "password": "correct horse 2",
            "role": "counsellor",
            "display_name": "Nieuw",
        },
        row("403", "403", "201", "401"),
    ),
    # "{tim}": the trainee's staff id (no session of his is used by the scene).
    ("PATCH", "/api/staff/{tim}", {"display_name": "Tim"}, row("403", "403", "200", "401")),
    (
        "POST",
        "/api/staff/{tim}/password",
        {"password": "correct horse 3"},
        row("403", "403", "200", "401"),
    ),
    ("GET", "/api/conversations", None, row("200", "200", "403", "401")),
    ("GET", "/api/conversations/{own}", None, row("200", "200", "403", "401")),
    ("GET", "/api/conversations/{other}", None, row("404", "200", "403", "401")),
    ("GET", "/api/conversations/nosuchconversation", None, row("404", "404", "403", "401")),
    (
        "POST",
        "/api/conversations/{own}/comments",
        {"seq": 1, "text": "goed"},
        row("403", "201", "403", "401"),
    ),
    ("GET", "/metrics", None, row("200", "200", "200", "200", "200")),
]

FRUIT = [
    "Appel",
    "Peer",
    "Kiwi",
    "Mango",
    "Banaan",
    "Citroen",
    "Druif",
    "Vijg",
    "Meloen",
    "Pruim",
    "Kers",
    "Perzik",
    "Dadel",
    "Limoen",
    "Abrikoos",
    "Bes",
    "Framboos",
    "Aardbei",
    "Ananas",
    "Papaja",
    "Lychee",
    "Guave",
    "Olijf",
    "Noot",
    "Hazel",
    "Walnoot",
    "Pinda",
    "Amandel",
    "Cashew",
    "Pecan",
]


@dataclass
class Scene:
    server: LiveServer
    pools: dict[str, list[str]] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)
    tim: str = ""
    names: list[str] = field(default_factory=lambda: list(FRUIT))

    async def visitor(self) -> tuple[Client, str]:
        client, welcome = await self.server.visitor(self.names.pop())
        return client, welcome["conversation_id"]


async def fill(scene: Scene, username: str, pool: str, count: int) -> Client:
    """``count`` conversations held by ``username``, one of them ended after a message."""
    staff = await scene.server.staff(username, available=count)
    convs = []
    for _ in range(count):
        visitor, conv = await scene.visitor()
        await visitor.expect("assigned")
        convs.append(conv)
        assigned = await staff.expect("assigned", skip=("queue", "queued"))
        assert assigned["conversation_id"] in convs
    await staff.send({"type": "status", "state": "paused"})
    await staff.expect("status", skip=("queue", "assigned"))
    first = convs.pop(0)
    await staff.send({"type": "say", "conversation_id": first, "text": "hallo", "ref": "h"})
    await staff.expect("ack", skip=("queue",))
    await staff.send({"type": "end", "conversation_id": first, "ref": "e"})
    await staff.expect("ack", skip=("queue", "ended"))
    scene.pools.setdefault(pool, []).extend(convs)
    scene.ended.setdefault(pool, first)
    return staff


async def outcome(client: Client, frame: dict[str, Any]) -> str:
    """Send ``frame``, then a probe; the error code for ``frame``, or ok when none came."""
    await client.send({**frame, "ref": "act"})
    await client.send({"type": "probe-unknown", "ref": "probe"})
    got = OK
    while True:
        reply = await client.recv()
        if reply["type"] == "error" and reply.get("ref") == "act":
            got = reply["code"]
        elif reply["type"] == "error" and reply.get("ref") == "probe":
            return got


async def http_status(
    server: LiveServer, method: str, path: str, token: str | None, body: Any
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{server.base}{path}", json=body, headers=headers) as r,
    ):
        await r.read()
        return r.status


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_and_action(role: str, redis_url: str, key_prefix: str) -> None:
    """Each role gets exactly the table's answer for every frame type and route."""
    fast = {
        "visitor_rate": 1000.0,
        "visitor_burst": 1000,
        "staff_rate": 1000.0,
        "staff_burst": 1000,
    }
    async with custom_server(redis_url, key_prefix, limits=fast) as server:
        scene = Scene(server)
        own = sum(1 for _, t, _, _ in SOCKET if t == "own")
        other = sum(1 for _, t, _, _ in SOCKET if t == "other")
        anna = await fill(scene, "anna", "own", own + 1)
        await fill(scene, "olga", "other", 8)  # at most 10 places each: two colleagues
        await fill(scene, "piet", "other", other - 7 + 1)
        waiting = [
            await scene.visitor() for _ in range(sum(t == "waiting" for _, t, _, _ in SOCKET))
        ]
        scene.pools["waiting"] = [conv for _, conv in waiting]
        scene.tim = await server.add_staff("tim", trainee=True)
        await server.add_staff("bert", role="supervisor")
        await server.add_staff("ad", role="admin")
        actor: Client | None
        token: str | None = None
        if role == "counsellor":
            actor, token = anna, (await server.login("anna"))["token"]
        elif role in ("supervisor", "admin"):
            username = "bert" if role == "supervisor" else "ad"
            actor = await server.staff(username, role=role, available=None)
            token = (await server.login(username))["token"]
        elif role == "visitor":
            actor, _ = await scene.visitor()
        else:
            actor = None
        wrong: list[str] = []
        if actor is None:
            # Without a session the staff socket is refused at the upgrade: 401, every frame.
            with pytest.raises(InvalidStatus) as refused:
                await server.connect("/ws/staff")
            assert refused.value.response.status_code == 401
        else:
            for name, target, template, expected in SOCKET:
                frame = dict(template)
                if target is not None:
                    frame["conversation_id"] = scene.pools[target].pop()
                if frame.get("staff_id") == "@tim":
                    frame["staff_id"] = scene.tim
                got = await outcome(actor, frame)
                if got != expected[role]:
                    wrong.append(f"{name}: {got}, expected {expected[role]}")
        for method, path, body, expected in HTTP:
            url = path.format(own=scene.ended["own"], other=scene.ended["other"], tim=scene.tim)
            got = str(await http_status(server, method, url, token, body))
            if got != expected[role]:
                wrong.append(f"{method} {path}: {got}, expected {expected[role]}")
        assert not wrong, "\n".join(wrong)
