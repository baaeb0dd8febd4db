"""Opening hours, honesty near closing time, and topics, over real sockets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import websockets

from tests.helpers import LiveServer

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


async def test_outside_hours_gets_closed_with_opening_time(redis_url: str, key_prefix: str) -> None:
    """Closed today: hello gets closed/outside_hours with tomorrow's opening, then 1000."""
    today = datetime.now(UTC).date()
    table = {
        "timezone": "UTC",
        **{d: ["00:00-24:00"] for d in DAYS},
        "closed_dates": [today.isoformat()],
    }
    from dataclasses import replace

    from chatserver.config import Settings
    from tests.helpers import LiveServer as Live

    settings = replace(Settings(), hours=table)
    settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
    async with Live.start(settings, redis_url) as live:
        client = await live.connect()
        await client.send({"type": "hello", "nickname": "Laat", "lang": "en"})
        closed = await client.expect("closed")
        assert closed["reason"] == "outside_hours" and "closed" in closed["message"]
        assert closed["opens_at"].startswith((today + timedelta(days=1)).isoformat())
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv(3)
        assert client.ws.close_code == 1000


async def test_told_honestly_when_closing_comes_first(redis_url: str, key_prefix: str) -> None:
    """A visitor whose estimate runs past closing time gets a closing_soon notice."""
    from dataclasses import replace

    from chatserver.config import Settings

    end = datetime.now(UTC) + timedelta(hours=2)
    until = "24:00" if end.date() != datetime.now(UTC).date() else end.strftime("%H:%M")
    table = {"timezone": "UTC", **{d: [f"00:00-{until}"] for d in DAYS}}
    settings = replace(Settings(), hours=table)
    settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
    async with LiveServer.start(settings, redis_url) as live:
        for _ in range(5):  # recent conversations took about three hours each
            await live.store.r.lpush(live.store.keys.handling, 3 * 3600)
        counsellor = await live.staff("anna")
        await live.visitor("Eerste")
        await counsellor.expect("assigned")
        late, _ = await live.visitor("Tweede", lang="en")
        queued = await late.expect("queued")
        assert queued["eta_seconds"] >= 3 * 3600 - 1
        notice = await late.expect("notice")
        assert notice["code"] == "closing_soon" and "close" in notice["message"]


async def test_topics_from_config_and_unknown_topic(server: LiveServer) -> None:
    """The public config lists the topics in the asked language; an unknown topic is invalid."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base}/api/public-config?lang=en") as r,
    ):
        body = await r.json()
    ids = {t["id"]: t["label"] for t in body["topics"]}
    assert ids["thuis"] == "Home" and ids["pesten"] == "Bullying"
    client = await server.connect()
    await client.send({"type": "hello", "nickname": "Onderwerp", "topic": "astrologie"})
    assert (await client.expect("error"))["code"] == "invalid"


async def test_wrapup_pause_before_the_next_chat(redis_url: str, key_prefix: str) -> None:
    """With wrapup_seconds the counsellor gets the next visitor only after the pause."""
    from tests.chatserver.test_errors import custom_server

    async with custom_server(redis_url, key_prefix, queue={"wrapup_seconds": 1.5}) as live:
        counsellor = await live.staff("anna")
        first, _ = await live.visitor("Eerst")
        await counsellor.expect("assigned")
        await live.visitor("Daarna")
        await first.send({"type": "leave"})
        await counsellor.expect("ended", skip=("queue",))
        await counsellor.nothing(1.0, skip=("queue", "overview"))
        assert (await counsellor.expect("assigned", timeout=5))["visitor"] == "Daarna"


async def test_crisis_topic_is_a_crisis_signal(server: LiveServer) -> None:
    """Choosing the default topic marked crisis moves the visitor up and alerts supervisors."""
    sup = await server.staff("bert", role="supervisor", available=None)
    first, _ = await server.visitor("Eerste", topic="school")
    assert (await first.expect("queued"))["position"] == 1
    second, welcome = await server.visitor("Tweede", topic="niet-meer-leven")
    conv = welcome["conversation_id"]
    alert = await sup.expect("alert", skip=("queue", "overview"))
    assert alert["kind"] == "crisis" and alert["conversation_id"] == conv
    while (await second.expect("queued"))["position"] != 1:
        pass
    meta = await server.store.conversation(conv)
    assert meta is not None and meta["crisis"] == "1" and meta["priority"] == "2"
    counsellor = await server.staff("anna", skills=("school", "niet-meer-leven"))
    assert (await counsellor.expect("assigned"))["conversation_id"] == conv


def test_topics_marked_crisis_in_config() -> None:
    """[[topics]] accepts crisis = true (a bool only); the defaults mark one crisis topic."""
    from chatserver.config import settings_from_dict
    from chatserver.errors import ConfigError
    from queueing.topics import DEFAULT_TOPICS, topics_for

    assert [t.id for t in DEFAULT_TOPICS if t.crisis] == ["niet-meer-leven"]
    settings = settings_from_dict(
        {"topics": [{"id": "nood", "nl": "Nood", "crisis": True}, {"id": "school"}]}
    )
    assert [(t.id, t.crisis) for t in topics_for(settings.topics)] == [
        ("nood", True),
        ("school", False),
    ]
    try:
        settings_from_dict({"topics": [{"id": "nood", "crisis": "yes"}]})
    except ConfigError as exc:
        assert "crisis" in str(exc)
    else:
        raise AssertionError("crisis = 'yes' was accepted")


async def test_queue_full_has_its_own_configurable_text(redis_url: str, key_prefix: str) -> None:
    """A full queue is told with the [texts] queue_full text, not the closed-hours one."""
    from tests.chatserver.test_errors import custom_server

    texts = {"queue_full_en": "Full up, sorry.", "closed_en": "We are closed."}
    async with custom_server(redis_url, key_prefix, queue={"max_waiting": 1}, texts=texts) as live:
        await live.visitor("Eerste")
        late = await live.connect()
        await late.send({"type": "hello", "nickname": "Tweede", "lang": "en"})
        closed = await late.expect("closed")
        assert closed["reason"] == "queue_full" and closed["message"] == "Full up, sorry."
        dutch = await live.connect()
        await dutch.send({"type": "hello", "nickname": "Derde"})
        message = (await dutch.expect("closed"))["message"]
        assert message == live.settings.texts.queue_full_nl != live.settings.texts.closed_nl


async def test_custom_closed_text_outside_hours(redis_url: str, key_prefix: str) -> None:
    """Outside opening hours the configured closed text is sent, in the visitor's language."""
    from tests.chatserver.test_errors import custom_server

    hours = {
        "timezone": "UTC",
        **{d: [] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    }
    from chatserver.appkeys import SERVICE
    from queueing.hours import OpeningHours

    async with custom_server(redis_url, key_prefix, texts={"closed_en": "Closed today."}) as live:
        live.app[SERVICE].hours = OpeningHours.from_table(hours)  # closed every day
        client = await live.connect()
        await client.send({"type": "hello", "nickname": "Laat", "lang": "en"})
        closed = await client.expect("closed")
        assert closed["reason"] == "outside_hours" and closed["message"] == "Closed today."


async def test_abandonment_records_the_time_waited(server: LiveServer) -> None:
    """A visitor who leaves after waiting 90 s (on the service's clock) is recorded as
    abandoned with at least those 90 s waited."""
    import time

    from chatserver.appkeys import SERVICE

    now = [time.time()]
    server.app[SERVICE].clock = lambda: now[0]
    visitor, welcome = await server.visitor("Geduld")
    await visitor.expect("queued")
    now[0] += 90.0
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not (facts := await server.store.facts_between(0, float("inf"))):
        assert loop.time() < deadline, "no fact recorded"
        await asyncio.sleep(0.02)
    assert facts[0]["abandoned"] == "1" and float(facts[0]["waited"]) >= 90.0
    assert welcome["conversation_id"]


def test_estimate_is_null_with_fewer_than_five_conversations() -> None:
    """No made-up numbers: with fewer than 5 handled conversations the estimate is null."""
    from queueing.eta import MIN_SAMPLES, estimate_wait

    assert MIN_SAMPLES == 5
    for n in range(5):
        assert estimate_wait(3, [600.0] * n, servers=2) is None
    assert (estimate_wait(3, [600.0] * 5, servers=2) or 0) > 0
