"""The supervisor's overview leaves out the accounts of volunteers who left (disabled)."""

from __future__ import annotations

from chatserver.auth import set_disabled
from tests.helpers import LiveServer


async def test_disabled_accounts_are_not_in_the_overview(server: LiveServer) -> None:
    """A disabled counsellor is gone from the overview's staff; an enabled one stays."""
    kees = await server.add_staff("kees")
    await server.add_staff("lotte")
    await set_disabled(server.store, kees, True)
    sup = await server.staff("bert", role="supervisor", available=None)
    await sup.send({"type": "overview"})
    names = {s["display_name"] for s in (await sup.expect("overview", skip=("queue",)))["staff"]}
    assert names == {"Bert", "Lotte"}
    await set_disabled(server.store, kees, False)
    await sup.send({"type": "overview"})
    names = {
        s["display_name"] for s in (await sup.expect("overview", skip=("queue", "alert")))["staff"]
    }
    assert names == {"Bert", "Kees", "Lotte"}
