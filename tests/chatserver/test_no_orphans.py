"""A conversation that is gone (forgotten by its visitor, or purged) is never made again by
a late write: a record made so would hold text that no retention removes."""

from __future__ import annotations

from tests.chatserver.test_supervision import chatting
from tests.helpers import LiveServer


async def test_fields_reach_an_existing_conversation_only(server: LiveServer) -> None:
    """update_conversation sets fields of a live record, and on a missing one writes
    nothing at all (no key appears) and says so."""
    store = server.store
    _visitor, _counsellor, conv = await chatting(server)
    assert await store.update_conversation(conv, {"wrapup_note": "bellen met school"})
    assert (await store.conversation(conv) or {})["wrapup_note"] == "bellen met school"
    gone = "c0ffee00c0ffee00"
    assert not await store.update_conversation(gone, {"wrapup_note": "te laat"})
    assert not await store.r.exists(store.keys.conversation(gone))
    assert not await store.update_conversation(gone, {})


async def test_a_wrapup_after_the_visitor_forgot_makes_no_record(server: LiveServer) -> None:
    """The visitor leaves and deletes the conversation at once; the counsellor's wrap-up
    that comes after is refused, and no conversation record comes back."""
    visitor, counsellor, conv = await chatting(server)
    await visitor.send({"type": "say", "text": "dag", "ref": "1"})
    await visitor.expect("ack")
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    await visitor.send({"type": "forget", "ref": "f"})
    assert (await visitor.expect("ack"))["ref"] == "f"
    await counsellor.send(
        {
            "type": "end",
            "conversation_id": conv,
            "wrapup": {"topics": ["school"], "note": "moeder bellen"},
            "ref": "e",
        }
    )
    answer = await counsellor.expect("error", skip=("message", "ended", "queue", "notice"))
    assert answer["ref"] == "e"
    assert not await server.store.r.exists(server.store.keys.conversation(conv))
