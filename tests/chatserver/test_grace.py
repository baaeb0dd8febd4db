"""Drops are normal: grace periods for visitors and counsellors."""

from __future__ import annotations

from tests.chatserver.test_errors import custom_server
from tests.chatserver.test_supervision import chatting


async def test_visitor_who_does_not_return_times_out(redis_url: str, key_prefix: str) -> None:
    """After the visitor grace period without return, the conversation ends with timeout."""
    async with custom_server(redis_url, key_prefix, grace={"visitor_seconds": 0.5}) as live:
        visitor, counsellor, conv = await chatting(live)
        await visitor.close()
        assert (await counsellor.expect("notice", skip=("queue",)))["code"] == (
            "visitor_disconnected"
        )
        ended = await counsellor.expect("ended", timeout=5, skip=("queue",))
        assert ended == {"type": "ended", "conversation_id": conv, "reason": "timeout"}


async def test_dropped_counsellor_sends_visitor_back_to_front(
    redis_url: str, key_prefix: str
) -> None:
    """A counsellor gone past the grace period: the visitor goes first in the queue, history kept."""
    async with custom_server(redis_url, key_prefix, grace={"counsellor_seconds": 0.5}) as live:
        visitor, counsellor, conv = await chatting(live)
        await visitor.send({"type": "say", "text": "ben je er?", "ref": "1"})
        await visitor.expect("ack")
        await live.visitor("Later")
        await counsellor.close()
        assert (await visitor.expect("notice"))["code"] == "counsellor_reconnecting"
        assert (await visitor.expect("notice", timeout=5))["code"] == "transferred"
        assert (await visitor.expect("queued"))["position"] == 1
        other = await live.staff("cees")
        again = await other.expect("assigned")
        assert again["conversation_id"] == conv
        assert [m["text"] for m in again["history"]] == ["ben je er?"]
