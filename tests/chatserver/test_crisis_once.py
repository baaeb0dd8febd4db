"""A conversation's crisis alert goes out once, even for signals at the same moment, and a
signal for a conversation that is gone alerts nobody and makes no record."""

from __future__ import annotations

import asyncio

from chatserver.appkeys import SERVICE
from tests.chatserver.test_supervision import chatting
from tests.helpers import LiveServer, drain


async def test_two_signals_at_once_alert_once(server: LiveServer) -> None:
    """Two crisis signals for one conversation in the same moment: one alert, with the
    categories of the one that came first; both leave the conversation flagged."""
    sup = await server.staff("bert", role="supervisor", available=None)
    _visitor, _counsellor, conv = await chatting(server)
    service = server.app[SERVICE]
    await asyncio.gather(
        service.crisis_signal(conv, "Sam", ("self_harm",)),
        service.crisis_signal(conv, "Sam", ("suicide",)),
    )
    seen: list[dict[str, object]] = []
    await drain(sup, quiet=1.0, into=seen)
    alerts = [f for f in seen if f["type"] == "alert" and f.get("conversation_id") == conv]
    assert len(alerts) == 1 and alerts[0]["kind"] == "crisis"
    meta = await server.store.conversation(conv) or {}
    assert meta["crisis"] == "1" and meta["crisis_categories"] in alerts[0]["message"]  # type: ignore[operator]


async def test_a_signal_for_a_gone_conversation_alerts_nobody(server: LiveServer) -> None:
    """No record appears for a conversation that does not exist, and no alert goes out."""
    sup = await server.staff("bert", role="supervisor", available=None)
    gone = "0123456789abcdef"
    await server.app[SERVICE].crisis_signal(gone, "Sam", ("suicide",))
    seen: list[dict[str, object]] = []
    await drain(sup, quiet=0.5, into=seen)
    assert not [f for f in seen if f["type"] == "alert"]
    assert not await server.store.r.exists(server.store.keys.conversation(gone))
