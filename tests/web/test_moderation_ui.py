"""Moderation in the browser: flag badges in the console, blocking, forgetting."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.helpers import LiveServer
from tests.web.conftest import shoot
from tests.web.test_pages import chat_between, supervisor_watching

pytestmark = pytest.mark.browser


async def test_flags_shown_and_counsellor_blocks(pages: Any, site: LiveServer) -> None:
    """Crisis and abuse show as text badges; the tab stands out; block ends it for the visitor."""
    visitor, counsellor = await chat_between(pages, site, "Storm")
    box = visitor.get_by_label("Bericht")
    await box.fill("hallo")
    await box.press("Enter")
    await box.fill("ik wil dood en jij bent een idioot")
    await visitor.get_by_role("button", name="Verstuur").click()
    log = counsellor.get_by_role("log")
    flagged = log.get_by_test_id("message").filter(has_text="ik wil dood")
    await expect(flagged.get_by_test_id("message-flags")).to_contain_text("crisis")
    await expect(flagged.get_by_test_id("message-flags")).to_contain_text("grof taalgebruik")
    plain = log.get_by_test_id("message").filter(has_text="hallo")
    await expect(plain.get_by_test_id("message-flags")).to_have_count(0)
    tab = counsellor.get_by_role("tab", name=re.compile("Storm"))
    await expect(tab).to_contain_text("crisis")
    await expect(tab).to_have_class(re.compile("tab--crisis"))
    # the visitor never sees moderation marks
    assert await visitor.get_by_test_id("message-flags").count() == 0
    await shoot(counsellor, "console-flags")

    block = counsellor.get_by_role("button", name="Blokkeren", exact=True)
    await block.click()
    await expect(block).to_have_attribute("aria-expanded", "true")
    confirm = counsellor.get_by_role("group", name=re.compile("Storm blokkeren"))
    await expect(confirm).to_be_visible()
    await shoot(counsellor, "console-block-confirm")
    # cancel first: nothing happens
    await confirm.get_by_role("button", name="Annuleren").click()
    await expect(confirm).to_be_hidden()
    await expect(visitor.get_by_label("Bericht")).to_be_visible()
    await block.click()
    await counsellor.get_by_role("button", name="Ja, blokkeren").click()
    await expect(visitor.get_by_test_id("ended")).to_be_visible()
    await expect(visitor.get_by_test_id("ended-reason")).to_have_text("Dit gesprek is beëindigd.")
    await expect(visitor.get_by_test_id("survey")).to_be_hidden()
    await expect(log).to_contain_text("De bezoeker is geblokkeerd.")
    await shoot(visitor, "visitor-blocked")


async def test_supervisor_sees_flags_when_watching(pages: Any, site: LiveServer) -> None:
    """The supervisor's read-only log shows the same flag badges."""
    visitor, _counsellor = await chat_between(pages, site, "Regen")
    await visitor.get_by_label("Bericht").fill("ik wil dood")
    await visitor.get_by_label("Bericht").press("Enter")
    supervisor = await supervisor_watching(pages, site, "Regen")
    flagged = supervisor.get_by_role("log").get_by_test_id("message").filter(has_text="ik wil dood")
    await expect(flagged.get_by_test_id("message-flags")).to_contain_text("crisis")


async def test_visitor_deletes_the_conversation(pages: Any, site: LiveServer) -> None:
    """After the end, "Wis dit gesprek" (confirmed) deletes it: the review API answers 404."""
    visitor, counsellor = await chat_between(pages, site, "Wisser")
    await visitor.get_by_label("Bericht").fill("dit mag weg")
    await visitor.get_by_label("Bericht").press("Enter")
    await expect(counsellor.get_by_role("log")).to_contain_text("dit mag weg")
    conv = await counsellor.get_by_role("tab").first.get_attribute("data-conversation-id")
    await visitor.get_by_role("button", name="Gesprek beëindigen").click()
    await visitor.get_by_test_id("end-yes").click()
    await expect(visitor.get_by_test_id("ended")).to_be_visible()
    review = f"{site.base}/api/conversations/{conv}"
    before = await counsellor.request.get(review)
    assert before.status == 200, await before.text()
    assert "dit mag weg" in await before.text()
    forget = visitor.get_by_role("button", name="Wis dit gesprek")
    await forget.click()
    await expect(visitor.get_by_test_id("forget-confirm")).to_be_visible()
    await shoot(visitor, "visitor-forget-confirm")
    await visitor.get_by_role("button", name="Nee, bewaar het").click()
    await expect(visitor.get_by_test_id("forget-confirm")).to_be_hidden()
    assert (await counsellor.request.get(review)).status == 200
    await forget.click()
    await visitor.get_by_role("button", name="Ja, wis het gesprek").click()
    await expect(visitor.get_by_test_id("forget-status")).to_contain_text("gewist")
    after = await counsellor.request.get(review)
    assert after.status == 404, await after.text()
    assert "dit mag weg" not in await visitor.content()
    assert await visitor.evaluate("sessionStorage.length") == 0


async def test_blocked_tab_cannot_start_again(pages: Any, site: LiveServer) -> None:
    """After a block, "Nieuw gesprek" in the same tab is refused by its kept token alone."""
    visitor, counsellor = await chat_between(pages, site, "Dwars")
    await visitor.get_by_label("Bericht").fill("jij bent een idioot")
    await visitor.get_by_label("Bericht").press("Enter")
    await expect(counsellor.get_by_test_id("message-flags")).to_contain_text("grof taalgebruik")
    await counsellor.get_by_role("button", name="Blokkeren", exact=True).click()
    await counsellor.get_by_role("button", name="Ja, blokkeren").click()
    await expect(visitor.get_by_test_id("ended-reason")).to_have_text("Dit gesprek is beëindigd.")
    kept = await visitor.evaluate("sessionStorage.getItem('chat.blocked')")
    assert kept, "the blocked token is kept in sessionStorage"
    # Take the network block away: only the token this tab kept can refuse it now.
    store = site.store
    address_keys = [k async for k in store.r.scan_iter(match=store.keys.blocked_address("*"))]
    assert address_keys
    await store.r.delete(*address_keys)
    await visitor.get_by_role("button", name="Nieuw gesprek").click()
    await visitor.get_by_label("Bijnaam").fill("Anders")
    await visitor.get_by_role("button", name="Start chat").click()
    await expect(visitor.get_by_test_id("start-notice")).to_contain_text("geen nieuw gesprek")
    await expect(visitor.get_by_test_id("start-screen")).to_be_visible()
    # A fresh tab (no kept token) on the same network is welcome again: the token did it.
    other = await pages()
    await other.goto(site.base)
    await other.get_by_label("Bijnaam").fill("Nieuwkomer")
    await other.get_by_role("button", name="Start chat").click()
    await expect(other.get_by_test_id("queue-status")).to_contain_text("nummer 1")
