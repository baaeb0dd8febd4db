"""/metrics: Prometheus semantics (counters and histogram never go down), right across
processes, values asserted, and no personal data."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ResponseError

from tests.chatserver.test_supervision import chatting
from tests.helpers import LiveServer, wait_for_fact
from tests.procs import chatserver

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(base: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as r:
        assert r.status == 200
        return await r.text()


def wait_bucket(values: Samples, le: str) -> float:
    return values[("chat_wait_seconds_bucket", (("le", le),))]


async def helped_and_rejected(server: LiveServer) -> None:
    """One visitor helped (a short wait), one frame rejected, one counsellor available."""
    visitor, counsellor, conv = await chatting(server, "Metrisch")
    await visitor.send({"type": "say", "text": "privé tekst", "ref": "1"})
    await visitor.expect("ack")
    await visitor.send({"type": "nonsense"})
    assert (await visitor.expect("error"))["code"] == "unknown_type"
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    await visitor.close()
    await wait_for_fact(server.store, conv)  # and with it the wait histogram
    del counsellor


async def test_metrics_values_and_no_decrease_when_facts_age_out(server: LiveServer) -> None:
    """Histogram and counters keep their values when the facts expire; labelled values right."""
    await helped_and_rejected(server)
    text = await scrape(server.base)
    values = samples(text)
    assert values[("chat_wait_seconds_count", ())] == 1
    assert wait_bucket(values, "30.0") == 1 and wait_bucket(values, "+Inf") == 1
    assert 0 <= values[("chat_wait_seconds_sum", ())] < 30
    assert values[("chat_frames_rejected_total", (("code", "unknown_type"),))] == 1
    assert values[("chat_counsellors", (("state", "available"),))] == 1
    assert values[("chat_counsellors", (("state", "offline"),))] == 0
    assert values[("chat_messages_total", ())] >= 1
    assert values[("chat_conversations_active", ())] == 0
    assert "Metrisch" not in text and "privé" not in text and "127.0.0.1" not in text
    store = server.store
    for conv in await store.r.zrange(store.keys.facts, 0, -1):  # the facts expire
        await store.r.delete(store.keys.fact(cast(str, conv)))
    await store.r.delete(store.keys.facts)
    later = samples(await scrape(server.base))
    for key, value in values.items():
        if key[0].startswith(("chat_wait_seconds", "chat_frames_rejected", "chat_messages")):
            assert later[key] >= value, key


def scrape_sync(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return cast(bytes, r.read()).decode()


async def test_two_workers_report_the_same_totals(
    server: LiveServer, redis_url: str, tmp_path: Path
) -> None:
    """Every worker of `serve --workers 2` answers with the same totals as another process."""
    await helped_and_rejected(server)
    expected = samples(await scrape(server.base))
    prefix = server.settings.server.key_prefix
    with chatserver(tmp_path, redis_url=redis_url, key_prefix=prefix, workers=2) as (_, port):
        answers = [samples(await asyncio.to_thread(scrape_sync, port)) for _ in range(12)]
    for got in answers:
        for key in (
            ("chat_wait_seconds_count", ()),
            ("chat_wait_seconds_bucket", (("le", "30.0"),)),
            ("chat_frames_rejected_total", (("code", "unknown_type"),)),
            ("chat_counsellors", (("state", "available"),)),
            ("chat_messages_total", ()),
        ):
            assert got[key] == expected[key], key


async def test_a_failed_fact_write_is_kept_on_the_next_try(server: LiveServer) -> None:
    """A fact whose write fails half-way is not marked kept: the next try keeps it, with its
    wait in the histogram once, and a third try changes nothing."""
    store = server.store
    fact = {"created": "1.0", "ended": "100.0", "abandoned": "0", "waited": "45.0"}
    # A string where the wait histogram belongs: the script fails with WRONGTYPE.
    await store.r.set(store.keys.wait_histogram, "broken")
    with pytest.raises(ResponseError):
        await store.record_fact("retried", fact, 100.0, 3600)
    assert await store.r.zscore(store.keys.facts, "retried") is None
    await store.r.delete(store.keys.wait_histogram)
    assert await store.record_fact("retried", fact, 100.0, 3600)
    assert not await store.record_fact("retried", fact, 100.0, 3600)
    assert [f["waited"] for f in await store.facts_between(0, 200)] == ["45.0"]
    assert await store.r.ttl(store.keys.fact("retried")) > 0
    waits = await store.wait_histogram()
    assert waits["count"] == 1 and waits["sum"] == 45.0
    assert waits["buckets"] == {
        repr(b): 1 for b in (60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
    }


async def test_each_stored_message_is_counted_once_after_a_flush(server: LiveServer) -> None:
    """say counts each stored message once (a repeated ref not); the shared counter has the
    count after a flush (and /metrics flushes first); a failed flush keeps it for the next."""
    store = server.store
    before = (await store.counters()).get("messages", 0)
    for ref in ("v:1", "v:1", None):
        await store.say("counted", ref, "visitor", "Teller", "hoi", 1.0, "conn")
    assert (await store.counters())["messages"] == before + 2
    await store.say("counted", None, "visitor", "Teller", "nog een", 2.0, "conn")
    saved = await store.r.hgetall(store.keys.counters)
    await store.r.set(store.keys.counters, "broken")  # WRONGTYPE: the flush fails
    with pytest.raises(ResponseError):
        await store.flush_counts()
    await store.r.delete(store.keys.counters)
    await store.r.hset(store.keys.counters, mapping=saved)
    assert (await store.counters())["messages"] == before + 3
    text = await scrape(server.base)
    assert samples(text)[("chat_messages_total", ())] == before + 3
