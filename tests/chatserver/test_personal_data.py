"""Personal data left out of what is kept: survey comment, wrap-up note, free-text entry."""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from chatserver.config import Settings
from tests.chatserver.test_review_and_audit import call
from tests.chatserver.test_supervision import chatting
from tests.helpers import LiveServer, wait_for_fact


async def test_survey_comment_is_stored_redacted(server: LiveServer) -> None:
    """A phone number or e-mail in the survey comment is never kept as written."""
    visitor, _, conv = await chatting(server, "Enquete")
    await visitor.send({"type": "leave"})
    await visitor.expect("ended")
    comment = "bel me op 0612345678 of mail jip@example.nl, dank!"
    await visitor.send({"type": "survey", "rating": 5, "comment": comment, "ref": "s"})
    await visitor.expect("ack")
    meta = await server.store.conversation(conv)
    assert meta is not None and meta.get("survey_comment")
    assert (
        "0612345678" not in meta["survey_comment"]
        and "jip@example.nl" not in meta["survey_comment"]
    )
    assert "dank" in meta["survey_comment"]
    fact = await server.store.r.hgetall(server.store.keys.fact(conv))
    assert fact, "the fact is written before the survey is acknowledged"
    assert "survey_comment" not in fact and fact["survey_rating"] == "5"


async def test_review_redacts_the_wrapup_note(server: LiveServer) -> None:
    """The wrap-up note comes back from review with personal data redacted."""
    visitor, counsellor, conv = await chatting(server, "Afsluiter")
    note = "terugbellen op 0612345678, moeder: ma@example.nl"
    await counsellor.send(
        {"type": "end", "conversation_id": conv, "wrapup": {"topics": ["school"], "note": note}}
    )
    await visitor.expect("ended")
    await wait_for_fact(server.store, conv)
    await server.add_staff("bert", "supervisor")
    for who in ("bert", "anna"):
        status, review = await call(
            server, "GET", f"/api/conversations/{conv}", (await server.login(who))["token"]
        )
        assert status == 200, review
        assert (
            "0612345678" not in review["wrapup_note"]
            and "ma@example.nl" not in review["wrapup_note"]
        )
        assert review["wrapup_note"].startswith("terugbellen op")


async def test_entry_is_kept_only_as_a_safe_label(redis_url: str, key_prefix: str) -> None:
    """Free text in hello.entry is kept as "other"; with allowed_entries, only those by name."""
    settings = Settings()
    settings = replace(
        settings,
        server=replace(settings.server, key_prefix=key_prefix, allowed_entries=("gemeente-a",)),
    )
    async with LiveServer.start(settings, redis_url) as server:
        kept = {}
        for nick, entry in (
            ("Eenn", "gemeente-a"),
            ("Tweee", "gemeente-b"),
            ("Drie", "Hoi ik ben Zonnetje, 06-12345678"),
        ):
            visitor, welcome = await server.visitor(nick, entry=entry)
            await visitor.send({"type": "leave"})
            await visitor.expect("ended")
            conv = welcome["conversation_id"]
            await wait_for_fact(server.store, conv)  # written right after the end
            kept[entry] = await server.store.r.hget(server.store.keys.fact(conv), "entry")
        assert kept == {
            "gemeente-a": "gemeente-a",
            "gemeente-b": "other",
            "Hoi ik ben Zonnetje, 06-12345678": "other",
        }
        await server.add_staff("bert", "supervisor")
        status, body = await call(
            server, "GET", "/api/stats", (await server.login("bert"))["token"]
        )
        assert status == 200 and body["entries"] == {"other": 2, "gemeente-a": 1}


async def test_no_entry_is_kept_by_name_without_a_list(server: LiveServer) -> None:
    """With no allowed_entries configured, label-like entries (a phone number, a name and
    town) are kept and shown as "other" only."""
    convs = []
    for nick, entry in (("Eenn", "0612345678"), ("Tweee", "jan-de-vries-utrecht")):
        visitor, welcome = await server.visitor(nick, entry=entry)
        await visitor.send({"type": "leave"})
        await visitor.expect("ended")
        convs.append(welcome["conversation_id"])
        await wait_for_fact(server.store, welcome["conversation_id"])
    kept = [await server.store.r.hget(server.store.keys.fact(c), "entry") for c in convs]
    assert kept == ["other", "other"]
    await server.add_staff("bert", "supervisor")
    token = (await server.login("bert"))["token"]
    status, body = await call(server, "GET", "/api/stats", token)
    assert status == 200 and body["entries"] == {"other": 2}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base}/stats", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        page = await r.text()
    assert r.status == 200 and "0612345678" not in page and "jan-de-vries" not in page
