"""Queue positions under a burst: coalesced runs, exact places at the end, and the staff's
waiting count sent only when it changed (or to a socket that has not heard it yet)."""

from __future__ import annotations

from tests.helpers import Client, LiveServer


async def last_place(visitor: Client, want: int) -> None:
    """Read ``queued`` frames until one says ``want`` (the trailing run must send it)."""
    while (await visitor.expect("queued"))["position"] != want:
        pass


async def test_staff_hear_the_waiting_count_only_when_it_changes(server: LiveServer) -> None:
    """A staff socket is told the count on joining and on every change, not again for a
    run that changed nothing (another counsellor joining)."""
    anna = await server.staff("anna", available=None)
    assert (await anna.expect("queue"))["waiting"] == 0
    visitor, _ = await server.visitor("Wachter")
    assert (await visitor.expect("queued"))["position"] == 1
    assert (await anna.expect("queue"))["waiting"] == 1
    bert = await server.staff("bert", available=None)
    assert (await bert.expect("queue"))["waiting"] == 1
    await anna.nothing(0.8)
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    assert (await anna.expect("queue"))["waiting"] == 0
    assert (await bert.expect("queue"))["waiting"] == 0


async def test_a_burst_of_arrivals_and_departures_ends_at_exact_places(
    server: LiveServer,
) -> None:
    """Each joiner is told its place at once; after a burst of leaves every visitor's last
    place is its rank, and the staff's last count is how many wait."""
    anna = await server.staff("anna", available=None)
    visitors = []
    for i in range(10):
        visitor, _ = await server.visitor(f"Rij{i}")
        assert (await visitor.expect("queued"))["position"] == i + 1
        visitors.append(visitor)
    for gone in visitors[:6:2]:  # 0, 2, 4 leave at once
        await gone.send({"type": "leave"})
    for gone in visitors[:6:2]:
        await gone.expect("ended")
    staying = [v for i, v in enumerate(visitors) if i not in (0, 2, 4)]
    for rank, visitor in enumerate(staying, start=1):
        await last_place(visitor, rank)
    while (await anna.expect("queue"))["waiting"] != len(staying):
        pass
    for visitor in staying:
        await visitor.nothing(0.6, skip=("queue", "notice"))
