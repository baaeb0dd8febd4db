"""Retention: one purge per interval across processes, nothing missed, and `chatserver purge`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import cast

from chatserver.app import SERVICE
from chatserver.config import Settings
from chatserver.retention import purge, take_slot
from chatserver.store import Store
from tests.chatserver.test_insights import Clock
from tests.chatserver.test_supervision import chatting
from tests.helpers import LiveServer, eventually, wait_for_fact

DAY = 86400.0


async def ended_chat(server: LiveServer, nickname: str, counsellor: str = "anna") -> str:
    visitor, staff, conv = await chatting(server, nickname, counsellor)
    await visitor.send({"type": "say", "text": f"tekst van {nickname}", "ref": "1"})
    await visitor.expect("ack")
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    await staff.send({"type": "status", "state": "offline"})
    await visitor.close()
    await staff.close()
    await wait_for_fact(server.store, conv)  # purges find ended conversations by their fact
    return conv


@contextlib.asynccontextmanager
async def two_instances(
    redis_url: str, key_prefix: str, interval: float
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    settings = Settings()
    settings = replace(
        settings,
        server=replace(settings.server, key_prefix=key_prefix),
        retention=replace(settings.retention, purge_interval_seconds=interval),
    )
    async with (
        LiveServer.start(settings, redis_url) as one,
        LiveServer.start(settings, redis_url) as two,
    ):
        yield one, two


async def runs(store: Store) -> list[str]:
    return cast(list[str], await store.r.lrange(store.keys.retention_log, 0, -1))


async def test_one_purge_per_interval_across_instances(redis_url: str, key_prefix: str) -> None:
    """Two instances, one Redis: each slot is purged once; past retention goes, inside stays."""
    async with two_instances(redis_url, key_prefix, interval=0.5) as (one, two):
        clock = Clock(time.time() - 31 * DAY)
        one.app[SERVICE].clock = two.app[SERVICE].clock = clock
        old = await ended_chat(one, "Oud")  # ended 31 days ago on the service clock
        clock.now = time.time() - 29 * DAY
        recent = await ended_chat(two, "Recent", "bert")  # ended 29 days ago
        clock.now = time.time()
        store = one.store
        start = len(await runs(store))

        async def two_more_runs() -> bool:
            return len(await runs(store)) >= start + 2

        await eventually(two_more_runs, timeout=20)
        assert await store.message_count(old) == 0 and await store.conversation(old) is None
        assert await store.message_count(recent) == 1 and await store.conversation(recent)
        log = await runs(store)
        slots = [int(entry.split(":")[0]) for entry in log]
        assert len(slots) == len(set(slots)), f"a slot ran twice: {log}"
        assert slots == sorted(slots, reverse=True)
        assert (await store.counters())["purged_conversations"] == 1
        clock.now = time.time() + 2 * DAY  # now the recent one is past retention too

        async def recent_gone() -> bool:
            return await store.conversation(recent) is None

        await eventually(recent_gone, timeout=20)
        assert await store.message_count(recent) == 0
        assert len(await store.facts_between(0, float("inf"))) == 2  # statistics stay
        assert (await store.counters())["purged_conversations"] == 2


async def test_a_slot_is_taken_once_and_never_again(server: LiveServer) -> None:
    """Of many processes racing for one slot, exactly one wins; an older slot never runs."""
    won = await asyncio.gather(*(take_slot(server.store, 1000, f"n{i}") for i in range(8)))
    assert sum(won) == 1
    assert not await take_slot(server.store, 999, "late")
    assert await take_slot(server.store, 1001, "next")


async def test_purge_is_idempotent_and_safe_concurrently(server: LiveServer) -> None:
    """Concurrent purges delete each conversation once and count it once; text gone, stats kept."""
    convs = [await ended_chat(server, f"Weg{i}") for i in range(3)]
    facts_before = await server.store.facts_between(0, float("inf"))
    assert await purge(server.store, time.time() + 29 * DAY, 30) == 0
    assert all([await server.store.message_count(c) == 1 for c in convs])
    counts = await asyncio.gather(
        *(purge(server.store, time.time() + 31 * DAY, 30) for _ in range(4))
    )
    assert sum(counts) == 3
    assert await purge(server.store, time.time() + 32 * DAY, 30) == 0
    assert await purge(server.store, time.time() + 20 * DAY, 30) == 0  # an older clock
    for conv in convs:
        assert await server.store.message_count(conv) == 0
        assert await server.store.conversation(conv) is None
    assert await server.store.facts_between(0, float("inf")) == facts_before


def run_purge(tmp_path: Path, redis_url: str, key_prefix: str, days: float) -> dict[str, int]:
    cfg = tmp_path / f"purge-{days}.toml"
    cfg.write_text(
        f'[server]\nkey_prefix = "{key_prefix}"\n[retention]\ntranscripts_days = {days}\n'
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatserver",
            "purge",
            "--redis-url",
            redis_url,
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return cast(dict[str, int], json.loads(result.stdout))


async def test_cli_purge_against_the_store(server: LiveServer, tmp_path: Path) -> None:
    """`chatserver purge` deletes what is past the configured retention, once, nothing else."""
    conv = await ended_chat(server, "Cli")
    key_prefix = server.settings.server.key_prefix
    assert await asyncio.to_thread(run_purge, tmp_path, server.redis_url, key_prefix, 1) == {
        "purged": 0
    }
    assert await server.store.message_count(conv) == 1
    assert await asyncio.to_thread(run_purge, tmp_path, server.redis_url, key_prefix, 0) == {
        "purged": 1
    }
    assert await server.store.message_count(conv) == 0
    assert await server.store.conversation(conv) is None
    assert await asyncio.to_thread(run_purge, tmp_path, server.redis_url, key_prefix, 0) == {
        "purged": 0
    }
    assert len(await server.store.facts_between(0, float("inf"))) == 1


async def test_purge_trims_the_facts_index_after_statistics_days(server: LiveServer) -> None:
    """The purge drops facts index entries older than statistics_days (service clock), keeps
    younger ones, and never one whose text is not purged yet."""
    clock = Clock(time.time() - 800 * DAY)
    server.app[SERVICE].clock = clock
    ancient = await ended_chat(server, "Heeloud")
    clock.now = time.time() - 100 * DAY
    old = await ended_chat(server, "Oud", "bert")
    clock.now = time.time() - 20 * DAY
    recent = await ended_chat(server, "Recent", "cees")
    store = server.store
    index = store.keys.facts

    async def listed() -> set[str]:
        return set(cast(list[str], await store.r.zrange(index, 0, -1)))

    assert await listed() == {ancient, old, recent}
    assert await purge(store, time.time(), 30, 730) == 2
    assert await listed() == {old, recent}
    # Statistics kept shorter than text: the index still finds the text to purge.
    assert await purge(store, time.time(), 30, 10) == 0
    assert await listed() == {recent} and await store.message_count(recent) == 1
    assert await purge(store, time.time() + 11 * DAY, 30, 10) == 1
    assert await listed() == set()
