"""The server applies the moderation rules to visitor text: crisis, personal data, abuse."""

from __future__ import annotations

from tests.chatserver.test_supervision import chatting
from tests.helpers import LiveServer


async def test_crisis_while_waiting_moves_up_and_alerts(server: LiveServer) -> None:
    """A crisis signal while waiting puts the visitor first and alerts supervisors once."""
    sup = await server.staff("bert", role="supervisor", available=None)
    await server.visitor("Eerste")
    second, welcome = await server.visitor("Tweede")
    conv = welcome["conversation_id"]
    assert (await second.expect("queued"))["position"] == 2
    await second.send({"type": "say", "text": "ik wil dood, echt", "ref": "c1"})
    assert (await second.expect("ack"))["seq"] == 1
    assert (await second.expect("queued"))["position"] == 1
    alert = await sup.expect("alert")
    assert alert["kind"] == "crisis" and alert["conversation_id"] == conv
    await second.send({"type": "say", "text": "ik wil dood", "ref": "c2"})
    await second.expect("ack")
    await sup.nothing(0.4, skip=("queue", "overview"))
    meta = await server.store.conversation(conv)
    assert meta is not None and meta["crisis"] == "1" and meta["priority"] == "2"
    counsellor = await server.staff("anna")
    assigned = await counsellor.expect("assigned")
    assert assigned["conversation_id"] == conv
    assert assigned["history"][0]["flags"] == ["crisis"]


async def test_personal_data_warned_live_and_redacted_in_store(server: LiveServer) -> None:
    """Personal data: a gentle notice; the counsellor reads it live; the store keeps it redacted."""
    visitor, counsellor, conv = await chatting(server, "Privé")
    await visitor.send({"type": "say", "text": "mail me: sam@example.nl", "ref": "p"})
    await visitor.expect("ack")
    notice = await visitor.expect("notice")
    assert notice["code"] == "pii_warning" and notice["message"]
    live = await counsellor.expect("message")
    assert live["text"] == "mail me: sam@example.nl" and live["flags"] == ["pii"]
    stored = await server.store.messages(conv)
    assert "sam@example.nl" not in stored[0].text
