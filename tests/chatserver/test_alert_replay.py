"""Alert replay: a supervisor who connects after a crisis signal or a help request still gets
the alert, marked ``replayed``, for every conversation that is still live; nobody else does."""

from __future__ import annotations

from typing import Any

from tests.helpers import Client, LiveServer, eventually

CRISIS_TEXT = "ik wil dood"
#: What a staff socket may get besides the frames a test looks at.
NOISE = ("queue", "overview", "notice", "status")


async def crisis_while_waiting(server: LiveServer, nickname: str) -> tuple[Client, str]:
    """A waiting visitor says a crisis text; returns once the signal is on record."""
    visitor, welcome = await server.visitor(nickname)
    conv = welcome["conversation_id"]
    await visitor.send({"type": "say", "text": CRISIS_TEXT, "ref": "c"})
    await visitor.expect("ack")
    await eventually(
        lambda: _has(server, conv, "crisis_ts"), what=f"the crisis signal of {nickname}"
    )
    return visitor, conv


async def _has(server: LiveServer, conv: str, name: str) -> bool:
    meta = await server.store.conversation(conv)
    return bool(meta and meta.get(name))


async def alerts_after_welcome(client: Client, count: int) -> list[dict[str, Any]]:
    """The first ``count`` alert frames, then nothing more of them for a moment."""
    alerts = [await client.expect("alert", skip=NOISE) for _ in range(count)]
    await client.nothing(0.5, skip=NOISE)
    return alerts


async def test_supervisor_connecting_after_a_crisis_gets_it_replayed(server: LiveServer) -> None:
    """A crisis said while no supervisor was connected reaches the supervisor who logs in later,
    as an alert with the live alert's fields and text plus replayed: true."""
    _, conv = await crisis_while_waiting(server, "Stil")
    sup = await server.staff("bert", role="supervisor", available=None)
    (alert,) = await alerts_after_welcome(sup, 1)
    assert alert == {
        "type": "alert",
        "kind": "crisis",
        "conversation_id": conv,
        "message": "Crisissignaal bij Stil / crisis signal (suicide)",
        "replayed": True,
    }


async def test_replayed_alert_matches_the_live_one(server: LiveServer) -> None:
    """The replay has exactly the live alert's kind, conversation and message; only the
    live alert lacks ``replayed``. A second socket of the same supervisor gets it too."""
    live_sup = await server.staff("bert", role="supervisor", available=None)
    _, conv = await crisis_while_waiting(server, "Gelijk")
    live = await live_sup.expect("alert", skip=NOISE)
    assert "replayed" not in live
    later = await server.staff("bert", role="supervisor", available=None)
    (replayed,) = await alerts_after_welcome(later, 1)
    assert replayed.pop("replayed") is True
    assert replayed == live and live["conversation_id"] == conv


async def test_topic_crisis_and_active_conversation_are_replayed(server: LiveServer) -> None:
    """A crisis topic chosen at hello is replayed, also once the conversation is active."""
    visitor, welcome = await server.visitor("Onderwerp", topic="niet-meer-leven")
    conv = welcome["conversation_id"]
    await eventually(lambda: _has(server, conv, "crisis_ts"), what="the topic's crisis signal")
    anna = await server.staff("anna", skills=("niet-meer-leven",))
    assert (await anna.expect("assigned", skip=NOISE))["conversation_id"] == conv
    await visitor.expect("assigned")
    sup = await server.staff("bert", role="supervisor", available=None)
    (alert,) = await alerts_after_welcome(sup, 1)
    assert alert["kind"] == "crisis" and alert["conversation_id"] == conv
    assert alert["message"] == "Crisissignaal bij Onderwerp / crisis signal (topic)"


async def test_ended_conversation_is_not_replayed(server: LiveServer) -> None:
    """Of two crisis conversations, the one whose visitor left is not replayed; the live one is."""
    gone, gone_conv = await crisis_while_waiting(server, "Weg")
    _, live_conv = await crisis_while_waiting(server, "Blijft")
    await gone.send({"type": "leave"})
    await eventually(
        lambda: _state(server, gone_conv, "ended"), what="the left conversation is ended"
    )
    sup = await server.staff("bert", role="supervisor", available=None)
    alerts = await alerts_after_welcome(sup, 1)
    assert [a["conversation_id"] for a in alerts] == [live_conv]


async def _state(server: LiveServer, conv: str, state: str) -> bool:
    meta = await server.store.conversation(conv)
    return bool(meta and meta.get("state") == state)


async def test_counsellor_and_admin_get_no_replay(server: LiveServer) -> None:
    """Only supervisors get alerts, live or replayed: a counsellor and an admin who connect
    after a crisis get none, a supervisor connecting after them does."""
    _, conv = await crisis_while_waiting(server, "Alleen")
    counsellor = await server.staff("anna", available=None)
    admin = await server.staff("ada", role="admin", available=None)
    sup = await server.staff("bert", role="supervisor", available=None)
    (alert,) = await alerts_after_welcome(sup, 1)
    assert alert["conversation_id"] == conv
    await counsellor.nothing(0.5, skip=NOISE)
    await admin.nothing(0.5, skip=NOISE)


async def test_help_request_is_replayed_in_order_of_alerts(server: LiveServer) -> None:
    """A help request is replayed with the asker's name, and the replay is oldest alert first:
    crisis, help, crisis, in the order they were raised (not the conversations' ages)."""
    anna = await server.staff("anna")
    sam, welcome = await server.visitor("Sam")
    chat = welcome["conversation_id"]
    assert (await anna.expect("assigned", skip=NOISE))["conversation_id"] == chat
    await sam.expect("assigned")
    _, first = await crisis_while_waiting(server, "Een")
    await anna.send({"type": "help", "conversation_id": chat, "ref": "h"})
    await anna.expect("ack", skip=NOISE)
    await eventually(lambda: _has(server, chat, "help_ts"), what="the help request")
    _, last = await crisis_while_waiting(server, "Twee")
    sup = await server.staff("bert", role="supervisor", available=None)
    alerts = await alerts_after_welcome(sup, 3)
    assert [(a["kind"], a["conversation_id"]) for a in alerts] == [
        ("crisis", first),
        ("help_requested", chat),
        ("crisis", last),
    ]
    assert alerts[1]["message"] == "Anna vraagt hulp / asks for help"
    assert all(a["replayed"] is True for a in alerts)
