"""Statistics, export and the privacy statement."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from chatserver import stats
from chatserver.app import SERVICE
from chatserver.config import Settings
from tests.chatserver.test_review_and_audit import call
from tests.chatserver.test_supervision import chatting
from tests.helpers import Client, LiveServer, wait_for_fact

DAY = 86400.0
AMS = ZoneInfo("Europe/Amsterdam")
STAFF_SKIP = ("queue", "status", "overview", "notice", "typing", "message", "ended", "alert")


def fact(created: float, waited: float, abandoned: bool = False, **extra: str) -> dict[str, str]:
    return {
        "created": repr(created),
        "ended": repr(created + 600),
        "waited": repr(waited),
        "abandoned": "1" if abandoned else "0",
        "duration": "" if abandoned else "600.0",
        **extra,
    }


def scripted_facts() -> list[dict[str, str]]:
    monday = datetime(2026, 11, 23, 9, 20, tzinfo=UTC).timestamp()  # a Monday, 10:20 local
    facts = [
        fact(
            monday + i * 60,
            waited=60.0 * (i + 1),
            topic="school",
            entry="gemeente-a",
            survey_rating="4",
            survey_understood="1",
        )
        for i in range(4)
    ]
    facts += [
        fact(monday + 3600, 300.0, abandoned=True, topic="thuis", entry="gemeente-b"),
        fact(
            monday + 7200,
            30.0,
            topic="thuis",
            survey_rating="2",
            survey_understood="0",
            crisis="1",
        ),
    ]
    return facts


def test_statistics_of_a_scripted_day() -> None:
    """A known day gives known answers: counts, percentiles, topics, survey, entries."""
    result = stats.compute(scripted_facts(), AMS, ("gemeente-a", "gemeente-b"))
    assert result["conversations_total"] == 6 and result["abandoned_total"] == 1
    assert result["helped_total"] == 5 and result["abandoned_share"] == round(1 / 6, 3)
    assert result["wait_seconds"] == {"p50": 120.0, "p90": 216.0}
    assert result["abandoned_wait_seconds"] == {"p50": 300.0, "p90": 300.0}
    assert result["duration_seconds"] == {"p50": 600.0, "p90": 600.0}
    assert result["topics"] == {"school": 4, "thuis": 2}
    assert result["entries"] == {"gemeente-a": 4, "gemeente-b": 1}
    assert result["survey"] == {"responses": 5, "rating_mean": 3.6, "understood_share": 0.8}
    assert result["crisis_total"] == 1 and sum(map(sum, result["per_hour_of_week"])) == 6
    assert result["per_hour_of_week"][0][10] == 4  # Monday, 10:xx Amsterdam (09:xx UTC)
    svg = stats.bar_chart_svg("x", result["per_day"])
    assert svg.startswith("<svg") and "<title>" in svg and "script" not in svg
    assert (
        'width="100%"' in svg
        and 'viewBox="0 0 640 240"' in svg
        and not svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" width="640"')
    )


def test_days_and_hours_are_local() -> None:
    """An event at 23:30 UTC in summer counts on the next local day, at 01:xx local."""
    late = datetime(2026, 7, 14, 23, 30, tzinfo=UTC).timestamp()  # a Tuesday in UTC
    result = stats.compute([fact(late, 10.0)], AMS)
    assert result["per_day"] == {"2026-07-15": 1}
    assert result["per_hour_of_week"][2][1] == 1  # Wednesday 01:30 in Amsterdam
    assert stats.compute([fact(late, 10.0)], UTC)["per_day"] == {"2026-07-14": 1}


def test_entries_keep_only_safe_labels() -> None:
    """Only listed entries are counted by name; with no list every entry is "other"."""
    facts = [fact(0.0, 1.0, entry=e) for e in ("gemeente-a", "Hoi ik ben Zonnetje", "x" * 41)]
    facts += [fact(0.0, 1.0, entry=e) for e in ("0612345678", "jan-de-vries-utrecht")]
    assert stats.compute(facts)["entries"] == {"other": 5}
    limited = stats.compute(facts, allowed_entries=("gemeente-a",))["entries"]
    assert limited == {"other": 4, "gemeente-a": 1}
    assert stats.safe_entry("") == "" and stats.safe_entry("a b", ("a b",)) == "other"


def test_csv_carries_every_figure() -> None:
    """The CSV has one row per figure: measure,key,value."""
    result = {
        "period": {"from": "2026-11-23", "to": "2026-11-23"},
        **stats.compute(scripted_facts(), AMS, ("gemeente-a", "gemeente-b")),
    }
    rows = stats.csv_rows(result)
    assert rows[0] == ["measure", "key", "value"]
    table = {(m, k): v for m, k, v in rows[1:]}
    assert table[("period", "from")] == "2026-11-23"
    assert table[("conversations_total", "")] == "6"
    assert table[("abandoned_total", "")] == "1"
    assert table[("wait_seconds", "p90")] == "216.0"
    assert table[("abandoned_wait_seconds", "p50")] == "300.0"
    assert table[("duration_seconds", "p50")] == "600.0"
    assert table[("survey", "rating_mean")] == "3.6"
    assert table[("survey", "understood_share")] == "0.8"
    assert table[("topic", "school")] == "4" and table[("entry", "gemeente-b")] == "1"
    assert table[("per_day", "2026-11-23")] == "6"
    assert table[("per_hour_of_week", "mon-10")] == "4"
    assert sum(1 for m, _, _ in rows if m == "per_hour_of_week") == 7 * 24


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


async def scripted_conversation(
    server: LiveServer,
    clock: Clock,
    counsellor: Client,
    nickname: str,
    start: float,
    wait: float,
    duration: float | None,
    survey: tuple[int, bool] | None = None,
    **hello: Any,
) -> str:
    """One real conversation on the service clock; ``duration`` None: left while waiting."""
    clock.now = start
    visitor, welcome = await server.visitor(nickname, **hello)
    conv = welcome["conversation_id"]
    clock.now = start + wait
    if duration is not None:
        await counsellor.send({"type": "status", "state": "available", "capacity": 1})
        assert (await counsellor.expect("assigned", skip=STAFF_SKIP))["conversation_id"] == conv
        await visitor.expect("assigned")
        await counsellor.send({"type": "status", "state": "paused"})
        await visitor.send({"type": "say", "text": f"geheim verhaal van {nickname}", "ref": "1"})
        await visitor.expect("ack")
        clock.now = start + wait + duration
    await visitor.send({"type": "leave"})
    await visitor.expect("ended", skip=("queued", "message", "notice", "typing"))
    if survey is not None:
        await visitor.send(
            {"type": "survey", "rating": survey[0], "understood": survey[1], "ref": "s"}
        )
        await visitor.expect("ack")
    await visitor.close()
    return conv


async def test_statistics_of_a_scripted_day_over_http(server: LiveServer) -> None:
    """Real conversations on a controlled clock: figures, period, local days, CSV, no names."""
    clock = Clock(0.0)
    server.app[SERVICE].clock = clock
    topics = ("school", "thuis", "pesten", "geld")
    counsellor = await server.staff("anna", available=None, skills=topics)
    july14 = datetime(2026, 7, 14, 10, 0, tzinfo=AMS).timestamp()
    await scripted_conversation(
        server,
        clock,
        counsellor,
        "Zonnetje",
        july14,
        60,
        600,
        (5, True),
        topic="school",
        entry="gemeente-a",
    )
    await scripted_conversation(
        server,
        clock,
        counsellor,
        "Maan",
        july14 + 3600,
        180,
        1200,
        (3, False),
        topic="school",
        entry="Hoi ik ben Maan uit Utrecht",
    )
    await scripted_conversation(
        server, clock, counsellor, "Ster", july14 + 7200, 240, None, topic="thuis"
    )
    late = datetime(2026, 7, 14, 23, 30, tzinfo=UTC).timestamp()  # 01:30 on 15 July local
    await scripted_conversation(server, clock, counsellor, "Komeet", late, 30, 300, topic="pesten")
    await scripted_conversation(  # outside the period
        server, clock, counsellor, "Planeet", july14 + 5 * DAY, 10, 100, topic="geld"
    )
    await server.add_staff("bert", "supervisor")
    sup = (await server.login("bert"))["token"]
    status, body = await call(server, "GET", "/api/stats?from=2026-07-14&to=2026-07-15", sup)
    assert status == 200, body
    assert body["period"] == {
        "from": "2026-07-14",
        "to": "2026-07-15",
        "timezone": "Europe/Amsterdam",
    }
    assert body["conversations_total"] == 4 and body["abandoned_total"] == 1
    assert body["per_day"] == {"2026-07-14": 3, "2026-07-15": 1}
    assert body["per_hour_of_week"][2][1] == 1  # Wednesday 01:xx local
    assert body["wait_seconds"]["p50"] == 60.0
    assert body["abandoned_wait_seconds"]["p50"] == 240.0
    assert body["duration_seconds"]["p50"] == 600.0
    assert body["topics"] == {"school": 2, "thuis": 1, "pesten": 1}
    assert body["entries"] == {"other": 2}  # no [server] allowed_entries: none by name
    assert body["survey"] == {"responses": 2, "rating_mean": 4.0, "understood_share": 0.5}
    status, only14 = await call(server, "GET", "/api/stats?from=2026-07-14&to=2026-07-14", sup)
    assert only14["conversations_total"] == 3 and only14["per_day"] == {"2026-07-14": 3}
    assert (await call(server, "GET", "/api/stats?from=2026-07-15&to=2026-07-14", sup))[0] == 400
    auth = {"Authorization": f"Bearer {sup}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.base}/api/stats.csv?from=2026-07-14&to=2026-07-15", headers=auth
        ) as r:
            assert r.status == 200 and r.content_type == "text/csv"
            text = await r.text()
        async with http.get(
            f"{server.base}/stats?from=2026-07-14&to=2026-07-15", headers=auth
        ) as r:
            page = await r.text()
        async with http.get(
            f"{server.base}/stats?from=2026-07-14&to=2026-07-15&lang=en", headers=auth
        ) as r:
            page_en = await r.text()
        async with http.get(
            f"{server.base}/stats?from=2027-01-01&to=2027-01-31&lang=en", headers=auth
        ) as r:
            empty_en = await r.text()
        async with http.get(
            f"{server.base}/stats?from=2027-01-01&to=2027-01-31", headers=auth
        ) as r:
            empty_nl = await r.text()
    table = {(m, k): v for m, k, v in list(csv.reader(io.StringIO(text)))[1:]}
    assert table[("conversations_total", "")] == "4" and table[("per_day", "2026-07-15")] == "1"
    assert table[("survey", "rating_mean")] == "4.0" and table[("entry", "other")] == "2"
    assert table[("abandoned_wait_seconds", "p50")] == "240.0"
    assert 'lang="nl"' in page and "Kerncijfers" in page and "1 min 0 s" in page
    assert 'name="from" value="2026-07-14"' in page and 'method="get"' in page
    assert "Wachttijd" in page and "gemeente-a" not in page and "/insights.css" in page
    assert 'lang="en"' in page_en and "Key figures" in page_en and "Felt understood" in page_en
    assert "50%" in page_en and "Contacts per entry" in page_en
    assert "No conversations in this period." in empty_en and "Geen gesprekken" in empty_nl
    for name in ("Zonnetje", "Maan", "Ster", "Komeet", "geheim verhaal", "Utrecht"):
        for where in (json.dumps(body), text, page, page_en):
            assert name not in where
    async with aiohttp.ClientSession() as http, http.get(f"{server.base}/insights.css") as r:
        assert r.status == 200 and r.content_type == "text/css" and "max-width" in await r.text()


async def test_stats_page_escapes_the_query(server: LiveServer) -> None:
    """Nothing from the query string reaches the page's HTML unescaped."""
    await server.add_staff("bert", "supervisor")
    auth = {"Authorization": f"Bearer {(await server.login('bert'))['token']}"}
    attack = (
        '"><meta http-equiv="refresh" content="0;url=https://evil.example/"><script>x()</script>'
    )
    from urllib.parse import quote

    async with aiohttp.ClientSession() as http:
        for query in (f"lang={quote(attack)}", f"x={quote(attack)}", f"from={quote(attack)}"):
            async with http.get(f"{server.base}/stats?{query}", headers=auth) as r:
                body = await r.text()
            assert "<meta http-equiv" not in body and "<script" not in body, query
            assert "evil.example" not in body or r.status == 400


async def test_far_dates_are_a_bad_request(server: LiveServer) -> None:
    """Dates outside 2000..2100 get 400 with a reason on /api/stats and /stats, not 500."""
    await server.add_staff("bert", "supervisor")
    sup = (await server.login("bert"))["token"]
    for query in ("to=9999-12-31", "from=0001-01-01", "from=0001-01-01&to=0001-01-02"):
        status, body = await call(server, "GET", f"/api/stats?{query}", sup)
        assert status == 400 and "between" in body["message"], query
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{server.base}/stats?{query}", headers={"Authorization": f"Bearer {sup}"}
            ) as r,
        ):
            assert r.status == 400, query
    status, body = await call(server, "GET", "/api/stats?to=2000-01-05", sup)
    assert status == 200 and body["period"]["from"] == "2000-01-01"


async def test_stats_page_with_a_bad_period_is_a_page(server: LiveServer) -> None:
    """/stats with a period it cannot show answers 400 with an HTML page in the page's
    language: the reason, and the period form to try again."""
    await server.add_staff("bert", "supervisor")
    auth = {"Authorization": f"Bearer {(await server.login('bert'))['token']}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base}/stats?from=gisteren", headers=auth) as r:
            assert r.status == 400 and r.content_type == "text/html"
            nl = await r.text()
        async with http.get(
            f"{server.base}/stats?from=2026-07-15&to=2026-07-14&lang=en", headers=auth
        ) as r:
            assert r.status == 400 and r.content_type == "text/html"
            en = await r.text()
    assert 'lang="nl"' in nl and "Deze periode kan niet worden getoond" in nl
    assert "YYYY-MM-DD" in nl and 'name="from"' in nl and 'role="alert"' in nl
    assert 'lang="en"' in en and "This period cannot be shown" in en
    assert "from must not be after to" in en and 'name="to"' in en


async def test_statistics_api_rights_and_no_personal_data(server: LiveServer) -> None:
    """/api/stats for supervisors and admins only; it holds no nickname or message text."""
    visitor, counsellor, conv = await chatting(server, "Geheimnaam")
    await visitor.send({"type": "say", "text": "heel geheim verhaal", "ref": "1"})
    await visitor.expect("ack")
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    await wait_for_fact(server.store, conv)
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
            text = await r.text()
            assert r.status == 200 and text.startswith("measure,key,value")
            assert "Geheimnaam" not in text and "geheim" not in text
        async with http.get(
            f"{server.base}/api/stats/chart/per-day.svg", headers={"Authorization": f"Bearer {sup}"}
        ) as r:
            assert r.status == 200 and "<svg" in await r.text()
    del counsellor, conv


async def test_export_is_anonymised(server: LiveServer) -> None:
    """The export replaces nicknames by roles and redacts personal data."""
    visitor, counsellor, conv = await chatting(server, "Exporteer")
    await visitor.send({"type": "say", "text": "bel me 0612345678", "ref": "1"})
    await visitor.expect("ack")
    await counsellor.send({"type": "say", "conversation_id": conv, "text": "mail a@b.nl"})
    await counsellor.expect("ack", skip=("message", "queue"))
    await visitor.send({"type": "leave"})
    await visitor.expect("ended", skip=("message", "notice"))
    await wait_for_fact(server.store, conv)
    await server.add_staff("bert", "supervisor")
    status, body = await call(server, "GET", "/api/export", (await server.login("bert"))["token"])
    assert status == 200
    flat = json.dumps(body)
    assert "Exporteer" not in flat and "Anna" not in flat and "0612345678" not in flat
    assert "a@b.nl" not in flat and "Bezoeker" in flat and "Hulpverlener" in flat


async def test_export_replaces_names_inside_text(server: LiveServer) -> None:
    """Nicknames and staff names inside message text (any case, whole words) become roles."""
    visitor, counsellor, conv = await chatting(server, "Zonnetje")
    sup = await server.staff("bert", role="supervisor", available=None, display_name="Bert")
    await sup.send({"type": "join", "conversation_id": conv})
    await visitor.expect("message", skip=("notice", "typing"))  # "Een collega (Bert) doet mee"
    await counsellor.send(
        {"type": "say", "conversation_id": conv, "text": "Hoi Zonnetje, ik ben anna. ZONNETJE?"}
    )
    await counsellor.expect("ack", skip=STAFF_SKIP)
    await visitor.send({"type": "say", "text": "hoi Anna en bert, zonnetjes schijnen", "ref": "1"})
    await visitor.expect("ack", skip=("message", "notice", "typing"))
    await visitor.send({"type": "leave"})
    await visitor.expect("ended", skip=("message", "notice", "typing"))
    await wait_for_fact(server.store, conv)
    status, body = await call(server, "GET", "/api/export", (await server.login("bert"))["token"])
    assert status == 200
    texts = [m["text"] for c in body["conversations"] for m in c["messages"]]
    flat = " ".join(texts)
    for name in ("Zonnetje", "ZONNETJE", "Bert", "bert", "anna", "Anna"):
        assert f"{name} " not in flat and f"{name}," not in flat and f"({name})" not in flat
    assert "Hoi Bezoeker, ik ben Hulpverlener. Bezoeker?" in texts
    assert any("(Begeleider)" in t for t in texts)
    assert "zonnetjes schijnen" in flat  # a longer word is not a name


async def privacy_pages(server: LiveServer) -> tuple[str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base}/privacy") as r:
            nl = await r.text()
        async with http.get(f"{server.base}/privacy?lang=en") as r:
            en = await r.text()
    return nl, en


async def test_privacy_statement_from_the_configuration(redis_url: str, key_prefix: str) -> None:
    """The privacy page states the configured retention, in Dutch and English, styled."""
    settings = Settings()
    settings = replace(
        settings,
        server=replace(settings.server, key_prefix=key_prefix),
        retention=replace(settings.retention, transcripts_days=14, statistics_days=365),
    )
    async with LiveServer.start(settings, redis_url) as server:
        nl, en = await privacy_pages(server)
        async with aiohttp.ClientSession() as http, http.get(f"{server.base}/") as r:
            visitor_page = await r.text()
    assert "14 dagen" in nl and "365 dagen" in nl and "IP-adressen" in nl and "30 dagen" not in nl
    assert "14 days" in en and "365 days" in en and 'lang="en"' in en and "730" not in en
    assert "Terug naar de chat" in nl and "Back" not in nl
    assert "Back to the chat" in en and "Terug" not in en
    assert "/insights.css" in nl and "/insights.css" in en
    assert 'href="/privacy"' in visitor_page


async def test_a_survey_before_the_fact_is_kept(server: LiveServer) -> None:
    """A survey (and wrap-up) that reach the conversation before its fact is written end up
    in the fact; one that comes after is added to it; none creates a fact on its own."""
    store = server.store
    survey = {"survey_rating": "4", "survey_understood": "1"}
    # an ended conversation's record (update_conversation never makes one)
    await store.r.hset(store.keys.conversation("early"), mapping={"state": "ended"})
    assert await store.update_conversation("early", {**survey, "wrapup_topics": "school"})
    await store.update_fact("early", survey)  # the fact is not there yet
    assert not await store.r.exists(store.keys.fact("early"))
    fact = {"ended": "100.0", "abandoned": "1", "waited": "5.0", "wrapup_topics": ""}
    assert await store.record_fact("early", fact, 100.0, 3600)
    (kept,) = await store.facts_between(0, 200)
    assert kept["survey_rating"] == "4" and kept["survey_understood"] == "1"
    assert kept["wrapup_topics"] == "school"
    await store.update_fact("early", {"survey_rating": "5"})
    assert (await store.facts_between(0, 200))[0]["survey_rating"] == "5"
    assert await store.r.ttl(store.keys.fact("early")) > 0
