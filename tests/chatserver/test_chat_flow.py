"""A youth chats with a counsellor through the queue, over real sockets and a real Redis."""

from __future__ import annotations

import pytest

from tests.helpers import LiveServer

PROTOCOLS = ["chat.v1.json", "chat.v1.msgpack"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_whole_conversation(server: LiveServer, protocol: str) -> None:
    """hello → welcome → queued → assigned → say/ack/message → typing → leave → ended → survey."""
    visitor, welcome = await server.visitor("Sam", protocol, topic="school")
    assert welcome["nickname"] == "Sam" and welcome["resume_token"]
    conv = welcome["conversation_id"]
    queued = await visitor.expect("queued")
    assert queued["position"] == 1 and queued["waiting"] == 1
    await visitor.send({"type": "say", "text": "hoi, is er iemand?", "ref": "r1"})
    ack = await visitor.expect("ack")
    assert ack == {"type": "ack", "ref": "r1", "seq": 1}

    counsellor = await server.staff("anna", protocol=protocol, skills=("school",))
    assigned = await counsellor.expect("assigned")
    assert assigned["conversation_id"] == conv and assigned["visitor"] == "Sam"
    assert assigned["topic"] == "school"
    assert [m["text"] for m in assigned["history"]] == ["hoi, is er iemand?"]
    assert assigned["history"][0]["seq"] == 1 and assigned["history"][0]["from"] == "visitor"
    v_assigned = await visitor.expect("assigned")
    assert v_assigned == {"type": "assigned", "conversation_id": conv, "counsellor": "Anna"}

    await counsellor.send({"type": "say", "conversation_id": conv, "text": "Hoi Sam!", "ref": "c1"})
    c_ack = await counsellor.expect("ack")
    assert c_ack["seq"] == 2 and c_ack["ref"] == "c1"
    msg = await visitor.expect("message")
    assert msg["seq"] == 2 and msg["from"] == "counsellor" and msg["author"] == "Anna"
    assert msg["text"] == "Hoi Sam!" and isinstance(msg["ts"], float)

    await visitor.send({"type": "typing", "active": True})
    typing = await counsellor.expect("typing", skip=("queue",))
    assert typing["from"] == "visitor" and typing["active"] is True

    await visitor.send({"type": "say", "text": "ik wil iets vragen", "ref": "r2"})
    assert (await visitor.expect("ack"))["seq"] == 3
    got = await counsellor.expect("message")
    assert got["seq"] == 3 and got["text"] == "ik wil iets vragen"

    await visitor.send({"type": "leave"})
    ended = await visitor.expect("ended")
    assert ended == {"type": "ended", "conversation_id": conv, "reason": "visitor_left"}
    assert (await counsellor.expect("ended"))["reason"] == "visitor_left"

    await visitor.send({"type": "survey", "rating": 4, "understood": True, "ref": "s"})
    await visitor.expect("ack")
    meta = await server.store.conversation(conv)
    assert meta is not None and meta["survey_rating"] == "4"


async def test_counsellor_ends_with_wrapup(server: LiveServer) -> None:
    """The counsellor ends the chat with a wrap-up; the visitor gets ended/counsellor_ended."""
    counsellor = await server.staff("bo")
    visitor, _welcome = await server.visitor("Mo")
    conv = (await counsellor.expect("assigned"))["conversation_id"]
    await visitor.expect("assigned")
    await counsellor.send(
        {"type": "end", "conversation_id": conv, "wrapup": {"topics": ["school"], "note": "ok"}}
    )
    assert (await visitor.expect("ended"))["reason"] == "counsellor_ended"
    meta = await server.store.conversation(conv)
    assert meta is not None and meta["wrapup_topics"] == "school"


async def test_anonymous_fact_recorded(server: LiveServer) -> None:
    """An ended conversation leaves a fact with times, topic and rating, never text or name."""
    counsellor = await server.staff("cas", skills=("thuis",))
    visitor, welcome = await server.visitor("Noor", topic="thuis", entry="gemeente-x")
    conv = (await counsellor.expect("assigned"))["conversation_id"]
    await visitor.expect("assigned")
    await visitor.send({"type": "say", "text": "geheim verhaal", "ref": "a"})
    await visitor.expect("ack")
    await counsellor.expect("message")
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    await visitor.send({"type": "survey", "rating": 5, "understood": True, "comment": "fijn"})
    await visitor.expect("ack")
    facts = await server.store.facts_between(0, float("inf"))
    assert len(facts) == 1
    fact = facts[0]
    assert fact["topic"] == "thuis" and fact["entry"] == "other"  # no allowed_entries set
    assert fact["abandoned"] == "0" and fact["survey_rating"] == "5"
    assert fact["survey_understood"] == "1" and float(fact["duration"]) >= 0
    flat = " ".join(fact.values())
    assert "Noor" not in flat and "geheim" not in flat and "fijn" not in flat
    assert welcome["conversation_id"] == conv


async def test_wrapup_after_visitor_left(server: LiveServer) -> None:
    """A counsellor files the wrap-up even when the visitor left first."""
    counsellor = await server.staff("dee")
    visitor, welcome = await server.visitor("Weg")
    conv = welcome["conversation_id"]
    await counsellor.expect("assigned")
    await visitor.expect("assigned")
    await visitor.send({"type": "leave"})
    await counsellor.expect("ended", skip=("queue",))
    await counsellor.send(
        {
            "type": "end",
            "conversation_id": conv,
            "ref": "w",
            "wrapup": {"topics": ["thuis"], "note": "kort"},
        }
    )
    assert (await counsellor.expect("ack", skip=("queue",)))["ref"] == "w"
    facts = await server.store.facts_between(0, float("inf"))
    assert facts[0]["wrapup_topics"] == "thuis"


async def test_security_headers(server: LiveServer) -> None:
    """Pages and API carry a strict CSP, no-referrer, no framing and no-store."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for path in ("/", "/staff", "/supervisor", "/healthz"):
            async with http.get(f"{server.base}{path}") as r:
                assert r.status == 200, path
                csp = r.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
                assert "unsafe-inline" not in csp
                assert r.headers["Referrer-Policy"] == "no-referrer"
                assert r.headers["Cache-Control"] == "no-store"
