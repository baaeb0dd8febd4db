"""The figures behind waiting estimates are read once for a burst of arrivals, and afresh
after anything that changes the places (here: an assignment)."""

from __future__ import annotations

import asyncio

from chatserver.appkeys import SERVICE
from tests.helpers import LiveServer, drain


async def test_a_burst_of_arrivals_shares_one_read(server: LiveServer) -> None:
    """30 visitors arriving at once while nobody is free: each is told its place and an
    estimate, and the staff and conversation hashes are read a few times, not 30."""
    hub = server.app[SERVICE].hub
    anna = await server.staff("anna")
    _first, _ = await server.visitor("Voorste")
    await anna.expect("assigned")  # anna (capacity 1) is now full
    before = hub.figures_reads
    joined = await asyncio.gather(*(server.visitor(f"Wacht{i}") for i in range(30)))
    # a joiner is told its rank at once, and again when a concurrent joiner ranked
    # ahead of it: the last place each was told is exact
    await asyncio.gather(*(drain(visitor) for visitor, _ in joined))
    places = sorted(
        [next(f for f in reversed(v.seen) if f["type"] == "queued")["position"] for v, _ in joined]
    )
    assert places == list(range(1, 31))
    assert all("eta_seconds" in f for v, _ in joined for f in v.seen if f["type"] == "queued")
    assert 1 <= hub.figures_reads - before <= 5


async def test_an_assignment_has_the_figures_read_again(server: LiveServer) -> None:
    """A visitor arriving right after another was assigned is estimated on the places
    left after that assignment (not on cached figures from before it)."""
    hub = server.app[SERVICE].hub
    anna = await server.staff("anna")
    await server.visitor("Eerste")
    await anna.expect("assigned")
    before = hub.figures_reads
    second, _ = await server.visitor("Tweede")
    queued = await second.expect("queued")
    assert queued["position"] == 1
    assert hub.figures_reads > before


async def test_callers_during_a_stream_of_changes_share_reads(server: LiveServer) -> None:
    """Twenty callers while the places keep changing, during every read too (a stream of
    assignments): they share a read begun after the changes each knew of, not one each."""
    hub = server.app[SERVICE].hub
    streaming = True

    async def stream_of_changes() -> None:
        while streaming:
            hub.figures_changed()
            await asyncio.sleep(0)

    changes = asyncio.ensure_future(stream_of_changes())
    await asyncio.sleep(0)
    before = hub.figures_reads
    await asyncio.gather(*(hub.wait_figures(hub.clock()) for _ in range(20)))
    reads = hub.figures_reads - before
    streaming = False
    await changes
    assert 1 <= reads <= 3
