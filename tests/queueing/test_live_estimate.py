"""The server end of the waiting estimate: it sees how long conversations have gone on."""

from __future__ import annotations

import time
from dataclasses import replace

from chatserver.appkeys import SERVICE
from chatserver.config import Settings
from tests.helpers import LiveServer


async def test_a_conversation_near_its_usual_end_is_not_counted_as_a_whole_one(
    redis_url: str, key_prefix: str
) -> None:
    """Recent conversations took about 20 minutes; while the only one has just begun a
    newcomer is told most of that, once it has gone on 19 minutes only what is left."""
    settings = Settings()
    settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
    now = [time.time()]
    async with LiveServer.start(settings, redis_url) as live:
        live.app[SERVICE].clock = lambda: now[0]
        for length in (1100, 1150, 1200, 1250, 1300):
            await live.store.r.lpush(live.store.keys.handling, length)
        counsellor = await live.staff("anna")
        await live.visitor("Eerste")
        await counsellor.expect("assigned")
        early, _ = await live.visitor("Vroeg")
        assert (await early.expect("queued"))["eta_seconds"] >= 1000
        await early.send({"type": "leave"})
        await early.expect("ended")
        now[0] += 1140
        late, _ = await live.visitor("Laat")
        queued = await late.expect("queued")
        assert queued["position"] == 1 and 0 < queued["eta_seconds"] <= 160


async def test_a_waiting_visitor_hears_the_estimate_shrink_at_the_same_place(
    redis_url: str, key_prefix: str
) -> None:
    """A visitor who stays first in line is told a new estimate as the conversation ahead
    runs on (not only when the position changes), and not for every small change."""
    settings = Settings()
    settings = replace(settings, server=replace(settings.server, key_prefix=key_prefix))
    now = [time.time()]
    async with LiveServer.start(settings, redis_url) as live:
        service = live.app[SERVICE]
        service.clock = lambda: now[0]
        service.hub.recheck_seconds = 0.2
        for length in (1100, 1150, 1200, 1250, 1300):
            await live.store.r.lpush(live.store.keys.handling, length)
        counsellor = await live.staff("anna")
        await live.visitor("Eerste")
        await counsellor.expect("assigned")
        waiting, _ = await live.visitor("Wachter")
        first = await waiting.expect("queued")
        assert first["position"] == 1 and first["eta_seconds"] >= 1000
        now[0] += 10  # a few seconds on: no new frame for that
        await waiting.nothing(within=0.8, skip=("queue", "notice"))
        now[0] += 1130
        later = await waiting.expect("queued")
        assert later["position"] == 1 and later["eta_seconds"] <= first["eta_seconds"] - 600
