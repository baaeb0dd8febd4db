"""Statistics, retention, export, metrics and the privacy statement."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from chatserver import stats
from chatserver.retention import purge
from tests.chatserver.test_review_and_audit import call
from tests.chatserver.test_supervision import chatting
from tests.helpers import LiveServer

DAY = 86400.0


def fact(created: float, waited: float, abandoned: bool = False, **extra: str) -> dict[str, str]:
    return {
        "created": repr(created),
        "ended": repr(created + 600),
        "waited": repr(waited),
        "abandoned": "1" if abandoned else "0",
        "duration": "" if abandoned else "600.0",
        **extra,
    }


def test_statistics_of_a_scripted_day() -> None:
    """A known day gives known answers: counts, percentiles, topics, survey, entries."""
    from datetime import UTC, datetime

    monday_noon = datetime(2026, 11, 23, 9, 20, tzinfo=UTC).timestamp()  # a Monday
    facts = [
        fact(
            monday_noon + i * 60,
            waited=60.0 * (i + 1),
            topic="school",
            entry="gemeente-a",
            survey_rating="4",
            survey_understood="1",
        )
        for i in range(4)
    ]
    facts += [
        fact(monday_noon + 3600, 300.0, abandoned=True, topic="thuis", entry="gemeente-b"),
        fact(
            monday_noon + 7200,
            30.0,
            topic="thuis",
            survey_rating="2",
            survey_understood="0",
            crisis="1",
        ),
    ]
    result = stats.compute(facts)
    assert result["conversations_total"] == 6 and result["abandoned_total"] == 1
    assert result["wait_seconds"]["p50"] == 120.0
    assert result["topics"] == {"school": 4, "thuis": 2}
    assert result["entries"] == {"gemeente-a": 4, "gemeente-b": 1}
    assert result["survey"] == {"responses": 5, "rating_mean": 3.6, "understood_share": 0.8}
    assert result["crisis_total"] == 1 and sum(map(sum, result["per_hour_of_week"])) == 6
    assert result["per_hour_of_week"][0][9] == 4  # Monday, 09:xx UTC
    svg = stats.bar_chart_svg("x", result["per_day"])
    assert svg.startswith("<svg") and "<title>" in svg and "script" not in svg


async def test_statistics_api_rights_and_no_personal_data(server: LiveServer) -> None:
    """/api/stats for supervisors and admins only; it holds no nickname or message text."""
    visitor, counsellor, conv = await chatting(server, "Geheimnaam")
    await visitor.send({"type": "say", "text": "heel geheim verhaal", "ref": "1"})
    await visitor.expect("ack")
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    await asyncio.sleep(0.2)
    await server.add_staff("bert", "supervisor")
    await server.add_staff("cees")
    sup = (await server.login("bert"))["token"]
    status, body = await call(server, "GET", "/api/stats", sup)
    assert status == 200 and body["conversations_total"] == 1
    flat = json.dumps(body)
    assert "Geheimnaam" not in flat and "geheim verhaal" not in flat
    assert (await call(server, "GET", "/api/stats", (await server.login("cees"))["token"]))[
        0
    ] == 403
    assert (await call(server, "GET", "/api/stats", None))[0] == 401
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.base}/api/stats.csv", headers={"Authorization": f"Bearer {sup}"}
        ) as r:
            assert r.status == 200 and (await r.text()).startswith("date,conversations")
        async with http.get(
            f"{server.base}/api/stats/chart/per-day.svg", headers={"Authorization": f"Bearer {sup}"}
        ) as r:
            assert r.status == 200 and "<svg" in await r.text()
        async with http.get(f"{server.base}/metrics") as r:
            text = await r.text()
    names = {m.name for m in text_string_to_metric_families(text)}
    assert {
        "chat_visitors_waiting",
        "chat_conversations_active",
        "chat_messages",
        "chat_wait_seconds",
        "chat_counsellors",
    } <= names
    assert "Geheimnaam" not in text and "geheim" not in text and "127.0.0.1" not in text
    del counsellor, conv


async def test_retention_purges_text_keeps_statistics(server: LiveServer) -> None:
    """After transcripts_days the text and nickname are gone, the statistics unchanged."""
    visitor, _, conv = await chatting(server, "Vergeet")
    await visitor.send({"type": "say", "text": "weg ermee", "ref": "1"})
    await visitor.expect("ack")
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    await asyncio.sleep(0.2)
    before = stats.compute(await server.store.facts_between(0, float("inf")))
    assert await purge(server.store, time.time() + 29 * DAY, 30) == 0
    assert await server.store.message_count(conv) == 1
    assert await purge(server.store, time.time() + 31 * DAY, 30) == 1
    assert await purge(server.store, time.time() + 32 * DAY, 30) == 0  # no double work
    assert await server.store.message_count(conv) == 0
    assert await server.store.conversation(conv) is None
    after = stats.compute(await server.store.facts_between(0, float("inf")))
    assert after == before


async def test_visitor_forgets_own_conversation(server: LiveServer) -> None:
    """`forget` right after the end deletes the visitor's text and nickname at once."""
    visitor, _, conv = await chatting(server, "Wissen")
    await visitor.send({"type": "say", "text": "wis dit", "ref": "1"})
    await visitor.expect("ack")
    await visitor.send({"type": "forget", "ref": "f0"})
    assert (await visitor.expect("error"))["code"] == "conflict"
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    await visitor.send({"type": "forget", "ref": "f"})
    assert (await visitor.expect("ack"))["ref"] == "f"
    assert await server.store.message_count(conv) == 0
    assert await server.store.conversation(conv) is None


async def test_export_is_anonymised(server: LiveServer) -> None:
    """The export replaces nicknames by roles and redacts personal data."""
    visitor, counsellor, conv = await chatting(server, "Exporteer")
    await visitor.send({"type": "say", "text": "bel me 0612345678", "ref": "1"})
    await visitor.expect("ack")
    await counsellor.send({"type": "say", "conversation_id": conv, "text": "mail a@b.nl"})
    await counsellor.expect("ack", skip=("message", "queue"))
    await visitor.send({"type": "leave"})
    await visitor.expect("ended", skip=("message", "notice"))
    await asyncio.sleep(0.2)
    await server.add_staff("bert", "supervisor")
    status, body = await call(server, "GET", "/api/export", (await server.login("bert"))["token"])
    assert status == 200
    flat = json.dumps(body)
    assert "Exporteer" not in flat and "Anna" not in flat and "0612345678" not in flat
    assert "a@b.nl" not in flat and "Bezoeker" in flat and "Hulpverlener" in flat


async def test_privacy_statement_from_the_configuration(server: LiveServer) -> None:
    """The privacy page says how long text is kept, in Dutch and English."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base}/privacy") as r:
            nl = await r.text()
        async with http.get(f"{server.base}/privacy?lang=en") as r:
            en = await r.text()
    assert "30 dagen" in nl and "IP-adressen" in nl
    assert "30 days" in en and 'lang="en"' in en
