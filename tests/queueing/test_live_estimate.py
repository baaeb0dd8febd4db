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
