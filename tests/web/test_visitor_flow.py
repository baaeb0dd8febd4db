"""The rest of the visitor and console flows in the browser: start form, waiting room, English
names, wrap-up, help alerts, keyboard-only use, leaving, and what the page stores."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from playwright.async_api import expect

from chatserver.config import Settings
from nickname import validate
from tests.helpers import LiveServer
from tests.web.conftest import DESKTOP, shoot
from tests.web.test_pages import (
    available,
    chat_between,
    check_both_sizes,
    staff_login,
    start_visitor,
)

pytestmark = pytest.mark.browser

EMERGENCY = "Testlijn voor noodgevallen: bel 0800-1234 (dit is een test)."


@pytest.fixture
async def site(redis_url: str, key_prefix: str) -> AsyncIterator[LiveServer]:
    """The real server with its own emergency text ([texts] emergency_nl)."""
    settings = Settings()
    settings = replace(
        settings,
        server=replace(settings.server, key_prefix=key_prefix, quick_exit_url="/healthz"),
        texts=replace(settings.texts, emergency_nl=EMERGENCY),
    )
    async with LiveServer.start(settings, redis_url) as live:
        yield live


async def tab_to(page: Any, target: Any, limit: int = 40) -> None:
    """Press Tab until `target` has the focus (it must be reachable by keyboard alone)."""
    for _ in range(limit):
        if await target.evaluate("e => e === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{target} is not reachable with Tab")


async def test_start_form_suggest_topic_emergency_and_first_message(
    pages: Any, site: LiveServer
) -> None:
    """Suggest fills a valid nickname; the topic and a message written while waiting (sent with
    the Verstuur button) reach the counsellor; the configured emergency text stays reachable."""
    visitor = await pages()
    await visitor.goto(site.base)
    await expect(visitor.get_by_test_id("emergency")).to_contain_text(EMERGENCY)
    await shoot(visitor, "visitor-start")
    nickname = visitor.get_by_label("Bijnaam")
    await visitor.get_by_role("button", name="Verzin er een").click()
    await expect(nickname).not_to_have_value("")
    suggested = await nickname.input_value()
    assert validate(suggested) == suggested.strip()
    await visitor.get_by_label(re.compile("Waar wil je over praten")).select_option(label="School")
    await visitor.get_by_role("button", name="Start chat").click()
    await expect(visitor.get_by_role("status").filter(has_text="nummer 1")).to_be_visible()
    await expect(visitor.get_by_test_id("emergency")).to_contain_text(EMERGENCY)
    await visitor.get_by_label("Bericht").fill("ik schrijf alvast iets")
    await visitor.get_by_role("button", name="Verstuur").click()
    await expect(visitor.get_by_role("log")).to_contain_text("ik schrijf alvast iets")
    await expect(visitor.get_by_role("log").get_by_text("wordt verstuurd")).to_have_count(0)
    await shoot(visitor, "visitor-waiting")
    await site.add_staff("anna", skills=("school",))
    counsellor = await pages(DESKTOP)
    await staff_login(counsellor, site, "anna")
    await available(counsellor)
    await expect(counsellor.get_by_role("log")).to_contain_text("ik schrijf alvast iets")
    await expect(counsellor.get_by_text("Onderwerp: School")).to_be_visible()
    await expect(counsellor.get_by_role("tab")).to_contain_text(suggested.strip())
    # while chatting the emergency help stays one click away
    await expect(visitor.get_by_text("In nood?")).to_be_visible()


async def test_waiting_room_position_updates_live(pages: Any, site: LiveServer) -> None:
    """Two wait; when the first is assigned the second's status changes from 2 to 1."""
    first, second = await pages(), await pages()
    await start_visitor(first, site, "Eerste")
    await expect(first.get_by_role("status").filter(has_text="nummer 1")).to_be_visible()
    await start_visitor(second, site, "Tweede")
    status = second.get_by_test_id("queue-status")
    await expect(status).to_contain_text("nummer 2")
    await site.add_staff("anna")
    counsellor = await pages(DESKTOP)
    await staff_login(counsellor, site, "anna")
    await available(counsellor)
    await expect(counsellor.get_by_role("tab")).to_contain_text("Eerste")
    await expect(status).to_contain_text("nummer 1")
    await expect(second.get_by_role("status").filter(has_text="nummer 1")).to_be_visible()


async def test_english_accessible_names(pages: Any, site: LiveServer) -> None:
    """The contract's English names on the console and the visitor page."""
    await site.add_staff("anna")
    counsellor = await pages(DESKTOP)
    await counsellor.goto(f"{site.base}/staff?lang=en")
    await counsellor.get_by_role("textbox", name="Username").fill("anna")
    await counsellor.get_by_label("Password").fill("correct horse 1")
    await counsellor.get_by_role("button", name="Log in").click()
    await counsellor.get_by_role("button", name="Available").click()
    visitor = await pages()
    await visitor.goto(f"{site.base}/?lang=en")
    await visitor.get_by_role("textbox", name="Nickname").fill("Sunny")
    await visitor.get_by_role("button", name="Start chat").click()
    await expect(counsellor.get_by_role("log")).to_be_visible()
    await visitor.get_by_role("textbox", name="Message").fill("hi there")
    await visitor.get_by_role("button", name="Send").click()
    await expect(counsellor.get_by_role("log")).to_contain_text("hi there")
    await counsellor.get_by_role("textbox", name="Message").fill("hello Sunny")
    await counsellor.get_by_role("button", name="Send", exact=True).click()
    await expect(visitor.get_by_role("log")).to_contain_text("hello Sunny")
    await expect(visitor.get_by_role("button", name="End chat")).to_be_visible()
    await expect(visitor.get_by_role("button", name="Quick exit")).to_be_visible()
    await expect(counsellor.get_by_role("button", name="Available")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(counsellor.get_by_test_id("my-state")).to_have_text("You are available")
    await shoot(counsellor, "console-chat-en")


async def test_wrapup_form_ends_the_conversation(pages: Any, site: LiveServer) -> None:
    """Afronden → topics and a note → the visitor sees the end; the wrap-up is stored."""
    visitor, counsellor = await chat_between(pages, site, "Afronder")
    await visitor.get_by_label("Bericht").fill("dank je")
    await visitor.get_by_label("Bericht").press("Enter")
    await expect(counsellor.get_by_role("log")).to_contain_text("dank je")
    conv = await counsellor.get_by_role("tab").first.get_attribute("data-conversation-id")
    await counsellor.get_by_role("button", name="Afronden").click()
    wrapup = counsellor.get_by_test_id("wrapup")
    await expect(wrapup).to_be_visible()
    await wrapup.get_by_role("checkbox", name="Thuis").check()
    await wrapup.get_by_role("checkbox", name="School").check()
    await wrapup.get_by_label("Notitie (intern)").fill("rustig gesprek")
    await shoot(counsellor, "console-wrapup")
    await wrapup.get_by_role("button", name="Gesprek afsluiten").click()
    await expect(visitor.get_by_test_id("ended-reason")).to_have_text(
        "De hulpverlener heeft het gesprek afgesloten."
    )
    await expect(counsellor.get_by_role("log")).to_contain_text("afgesloten")
    review = await counsellor.request.get(f"{site.base}/api/conversations/{conv}")
    assert review.status == 200, await review.text()
    body = await review.json()
    assert sorted(body["wrapup_topics"]) == ["school", "thuis"]
    assert body["wrapup_note"] == "rustig gesprek"


async def test_help_button_raises_an_alert(pages: Any, site: LiveServer) -> None:
    """ "Hulp vragen" gives the supervisor a red, announced alert in Dutch that opens the chat."""
    visitor, counsellor = await chat_between(pages, site, "Hulpje")
    await site.add_staff("bert", "supervisor")
    supervisor = await pages(DESKTOP)
    await staff_login(supervisor, site, "bert", "/supervisor")
    await expect(supervisor.get_by_test_id("conversation-row")).to_have_count(1)
    await counsellor.get_by_role("button", name="Hulp vragen").click()
    await expect(counsellor.get_by_text("Je supervisor is gewaarschuwd.")).to_be_visible()
    alert = supervisor.get_by_role("alert").get_by_test_id("alert")
    await expect(alert).to_contain_text("Hulpvraag")
    await expect(alert).to_contain_text("Anna vraagt hulp")
    assert " / " not in await alert.inner_text()
    background = await supervisor.get_by_test_id("alerts").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert background == "rgb(180, 35, 24)"  # the danger red, unlike every other box
    assert await supervisor.title() == "(1!) Supervisordashboard"
    await shoot(supervisor, "dashboard-alert")
    await alert.get_by_role("button", name="Open gesprek").click()
    await expect(supervisor.get_by_test_id("watch")).to_be_visible()
    del visitor


async def test_keyboard_only_visitor_flow(pages: Any, site: LiveServer) -> None:
    """Every control of the visitor flow is reached with Tab and works with Enter or Space."""
    await site.add_staff("anna", skills=("school",))
    counsellor = await pages(DESKTOP)
    await staff_login(counsellor, site, "anna")
    await available(counsellor)
    page = await pages()
    await page.goto(site.base)
    await tab_to(page, page.get_by_role("button", name="Verzin er een"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Bijnaam")).not_to_have_value("")
    await page.get_by_label("Bijnaam").fill("")
    await tab_to(page, page.get_by_label("Bijnaam"))
    await page.keyboard.type("Toetsenbord")
    await tab_to(page, page.get_by_label(re.compile("Waar wil je over praten")))
    await page.keyboard.press("ArrowDown")
    await tab_to(page, page.get_by_role("button", name="Start chat"))
    await page.keyboard.press("Enter")
    await expect(counsellor.get_by_role("log")).to_be_visible()
    await tab_to(page, page.get_by_label("Bericht"))
    await page.keyboard.type("met het toetsenbord")
    await page.keyboard.press("Enter")
    await expect(counsellor.get_by_role("log")).to_contain_text("met het toetsenbord")
    await page.keyboard.type("nog een")
    await tab_to(page, page.get_by_role("button", name="Verstuur"))
    await page.keyboard.press("Space")
    await expect(counsellor.get_by_role("log")).to_contain_text("nog een")
    await tab_to(page, page.get_by_role("button", name="Gesprek beëindigen"))
    await page.keyboard.press("Space")
    await tab_to(page, page.get_by_role("button", name="Ja, beëindigen"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("survey")).to_be_visible()
    await tab_to(page, page.get_by_role("radio", name="1"))
    for _ in range(3):
        await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("radio", name="4")).to_be_checked()
    await tab_to(page, page.get_by_role("radio", name="Ja"))
    await page.keyboard.press("Space")
    await expect(page.get_by_role("radio", name="Ja")).to_be_checked()
    await tab_to(page, page.get_by_role("button", name="Verstuur beoordeling"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("survey-thanks")).to_be_visible()
    await tab_to(page, page.get_by_role("button", name="Nieuw gesprek"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Bijnaam")).to_be_focused()
    facts = await site.store.facts_between(0, float("inf"))
    assert facts and facts[0]["survey_rating"] == "4"
    assert facts[0]["survey_understood"] == "1"


async def test_survey_understood_no_and_nothing_stored(pages: Any, site: LiveServer) -> None:
    """The "understood" answer is stored; the page never writes localStorage or cookies."""
    visitor, counsellor = await chat_between(pages, site, "Enquete")
    await visitor.get_by_label("Bericht").fill("hoi")
    await visitor.get_by_label("Bericht").press("Enter")
    await expect(counsellor.get_by_role("log")).to_contain_text("hoi")
    await visitor.get_by_role("button", name="Gesprek beëindigen").click()
    await visitor.get_by_test_id("end-yes").click()
    survey = visitor.get_by_test_id("survey")
    await expect(survey).to_be_visible()
    await shoot(visitor, "visitor-survey-form")
    await survey.get_by_text("2", exact=True).click()
    await survey.get_by_text("Nee", exact=True).click()
    await survey.get_by_label(re.compile("Wil je nog iets kwijt")).fill("te kort")
    await visitor.get_by_role("button", name="Verstuur beoordeling").click()
    await expect(visitor.get_by_test_id("survey-thanks")).to_be_visible()
    for _ in range(50):
        facts = await site.store.facts_between(0, float("inf"))
        if facts and facts[0].get("survey_understood"):
            break
        await visitor.wait_for_timeout(100)
    assert facts[0]["survey_rating"] == "2"
    assert facts[0]["survey_understood"] == "0"
    assert await visitor.evaluate("localStorage.length") == 0
    assert await visitor.evaluate("document.cookie") == ""
    assert await visitor.context.cookies() == []


async def test_back_after_shift_exit_and_bfcache_restore(pages: Any, site: LiveServer) -> None:
    """After Shift×3, Back does not bring the chat back; a page restored from the back/forward
    cache (pageshow persisted) shows nothing of the chat and leaves."""
    page = await pages()
    await page.goto(f"{site.base}/healthz")
    await start_visitor(page, site, "Terugknop")
    await expect(page.get_by_role("status").filter(has_text="nummer 1")).to_be_visible()
    for _ in range(3):
        await page.keyboard.press("Shift")
    await page.wait_for_url(f"{site.base}/healthz")
    await page.go_back()
    assert not page.url.startswith(f"{site.base}/?") and page.url != f"{site.base}/", page.url
    assert "Terugknop" not in await page.content()

    other = await pages()
    await start_visitor(other, site, "Cache")
    await expect(other.get_by_role("status").filter(has_text="nummer")).to_be_visible()
    await other.evaluate(
        "window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))"
    )
    await other.wait_for_url(f"{site.base}/healthz")
    assert "Cache" not in await other.content()
    assert await other.evaluate("sessionStorage.length") == 0


async def test_stats_and_privacy_pages(pages: Any, site: LiveServer, axe_source: str) -> None:
    """The server-rendered pages open from the dashboard and the visitor page, fit a phone and
    pass axe at both sizes."""
    await site.add_staff("bert", "supervisor")
    import time

    now = time.time()
    for i in range(12):  # anonymous facts over the last days, so the charts have something
        ended = now - i * 7 * 3600
        waited = 30.0 * (i % 5)
        fact = {
            "created": repr(ended - 1800),
            "ended": repr(ended),
            "reason": "counsellor_ended",
            "topic": ("school", "thuis", "")[i % 3],
            "entry": "",
            "lang": "nl",
            "crisis": "0",
            "abandoned": "1" if i % 4 == 3 else "0",
            "waited": repr(waited),
            "duration": "" if i % 4 == 3 else repr(900.0 + 60 * i),
            "wrapup_topics": "",
        }
        await site.store.record_fact(f"stats-{i}", fact, ended, 3600)
    supervisor = await pages(DESKTOP)
    await staff_login(supervisor, site, "bert", "/supervisor")
    await expect(supervisor.get_by_test_id("staff-row").first).to_be_visible()
    await supervisor.get_by_role("link", name="Statistieken").click()
    await supervisor.wait_for_load_state()
    assert "/stats" in supervisor.url
    chart = supervisor.get_by_role("img", name="Gesprekken per dag")
    await expect(chart).to_be_visible()
    await supervisor.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )
    await shoot(supervisor, "stats")
    await supervisor.get_by_role("link", name="Terug naar het dashboard").click()
    await expect(supervisor.get_by_test_id("staff-row").first).to_be_visible()
    await supervisor.go_back()
    visitor = await pages()
    await visitor.goto(f"{site.base}/?lang=en")
    async with visitor.context.expect_page() as opened:
        await visitor.get_by_role("link", name="Privacy statement").click()
    privacy = await opened.value
    await privacy.wait_for_load_state()
    assert "/privacy?lang=en" in privacy.url
    await shoot(privacy, "privacy")
    problems = {}
    for name, page in (("stats", supervisor), ("privacy", privacy)):
        found = await check_both_sizes(page, axe_source)
        if found:
            problems[name] = found
    assert problems == {}
