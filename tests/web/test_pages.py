"""The three pages in real headless Chromium against the real server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.helpers import LiveServer
from tests.web.conftest import DESKTOP, PHONE, shoot

pytestmark = pytest.mark.browser


async def start_visitor(page: Any, site: LiveServer, nickname: str, lang: str = "") -> None:
    await page.goto(f"{site.base}/{'?lang=en' if lang == 'en' else ''}")
    label = "Nickname" if lang == "en" else "Bijnaam"
    await page.get_by_label(label).fill(nickname)
    await page.get_by_role("button", name="Start chat").click()


async def staff_login(page: Any, site: LiveServer, username: str, path: str = "/staff") -> None:
    await page.goto(f"{site.base}{path}")
    await page.get_by_label("Gebruikersnaam").fill(username)
    await page.get_by_label("Wachtwoord").fill("correct horse 1")
    await page.get_by_role("button", name="Inloggen").click()
    code = site.otp(username)
    if code is not None:
        await page.get_by_label("Code uit je authenticator-app").fill(code)
        await page.get_by_role("button", name="Inloggen").click()


async def available(page: Any) -> None:
    await page.get_by_role("button", name="Beschikbaar").click()


async def supervisor_watching(pages: Any, site: LiveServer, nickname: str) -> Any:
    """Bert, a new supervisor, logged in on the dashboard and watching ``nickname``'s chat."""
    await site.add_staff("bert", "supervisor")
    supervisor = await pages(DESKTOP)
    await staff_login(supervisor, site, "bert", "/supervisor")
    await supervisor.get_by_role("button", name=re.compile(f"Meekijken.*{nickname}")).click()
    return supervisor


async def chat_between(pages: Any, site: LiveServer, nickname: str = "Zonnetje") -> tuple[Any, Any]:
    visitor = await pages()
    await start_visitor(visitor, site, nickname)
    await expect(visitor.get_by_role("status").filter(has_text="1")).to_be_visible()
    await site.add_staff("anna")
    counsellor = await pages(DESKTOP)
    await staff_login(counsellor, site, "anna")
    await available(counsellor)
    await expect(counsellor.get_by_role("log")).to_be_visible()
    return visitor, counsellor


async def test_visitor_and_counsellor_chat(pages: Any, site: LiveServer) -> None:
    """The visitor waits (position shown), then both pages chat in both directions."""
    visitor, counsellor = await chat_between(pages, site)
    await shoot(visitor, "visitor-chat-start")
    box = visitor.get_by_label("Bericht")
    await box.fill("hoi, ik wil praten")
    await box.press("Enter")
    await expect(counsellor.get_by_role("log")).to_contain_text("hoi, ik wil praten")
    await counsellor.get_by_label("Bericht").fill("Hoi Zonnetje, vertel maar")
    await counsellor.get_by_role("button", name="Verstuur").click()
    await expect(visitor.get_by_role("log")).to_contain_text("Hoi Zonnetje, vertel maar")
    await visitor.get_by_label("Bericht").press_sequentially("ik typ")
    await expect(counsellor.get_by_text(re.compile("aan het typen"))).to_be_visible()
    await shoot(visitor, "visitor-chat")
    await shoot(counsellor, "console-chat")
    assert pages.recorder.foreign() == []


async def test_english_visitor_page(pages: Any, site: LiveServer) -> None:
    """?lang=en gives the English names and html lang."""
    visitor = await pages()
    await start_visitor(visitor, site, "Sunny", lang="en")
    await expect(visitor.get_by_role("status")).to_contain_text(re.compile("queue|number", re.I))
    assert await visitor.evaluate("document.documentElement.lang") == "en"
    await expect(visitor.get_by_role("button", name="Quick exit")).to_be_visible()
    await expect(visitor.get_by_label("Message")).to_be_visible()
    await shoot(visitor, "visitor-waiting-en")


async def test_supervisor_watches_and_whispers(pages: Any, site: LiveServer) -> None:
    """The dashboard shows the chat; the whisper reaches the console, never the visitor."""
    visitor, counsellor = await chat_between(pages, site, "Wolkje")
    await visitor.get_by_label("Bericht").fill("het gaat niet goed")
    await visitor.get_by_label("Bericht").press("Enter")
    supervisor = await supervisor_watching(pages, site, "Wolkje")
    await expect(supervisor.get_by_role("log")).to_contain_text("het gaat niet goed")
    await supervisor.get_by_role("textbox", name="Fluisteren").fill("vraag naar thuis")
    await supervisor.get_by_role("button", name="Fluister").click()
    await expect(counsellor.get_by_text("vraag naar thuis")).to_be_visible()
    await supervisor.wait_for_timeout(300)
    await expect(supervisor.get_by_test_id("whisper")).to_have_count(1)
    await shoot(supervisor, "dashboard-watching")
    await shoot(counsellor, "console-whisper")
    await visitor.wait_for_timeout(500)
    assert "vraag naar thuis" not in await visitor.content()
    assert "Bert" not in await visitor.get_by_role("log").inner_text()


async def test_dropped_connection_loses_nothing(pages: Any, site: LiveServer) -> None:
    """Offline for a while, writing meanwhile: after reconnecting every message shows once."""
    visitor, counsellor = await chat_between(pages, site, "Trein")
    await visitor.get_by_label("Bericht").fill("een")
    await visitor.get_by_label("Bericht").press("Enter")
    await expect(counsellor.get_by_role("log")).to_contain_text("een")
    await visitor.context.set_offline(True)
    await visitor.wait_for_timeout(500)
    await counsellor.get_by_label("Bericht").fill("twee van mij")
    await counsellor.get_by_role("button", name="Verstuur").click()
    await visitor.get_by_label("Bericht").fill("drie in de tunnel")
    await visitor.get_by_label("Bericht").press("Enter")
    await visitor.wait_for_timeout(800)
    await visitor.context.set_offline(False)
    log = visitor.get_by_role("log")
    await expect(log).to_contain_text("twee van mij", timeout=20000)
    await expect(counsellor.get_by_role("log")).to_contain_text("drie in de tunnel", timeout=20000)
    text = await log.inner_text()
    for line in ("een", "twee van mij", "drie in de tunnel"):
        assert text.count(line) == 1, text
    assert text.index("een") < text.index("twee van mij")
    await visitor.reload()
    await expect(visitor.get_by_role("log")).to_contain_text("drie in de tunnel")
    assert (await visitor.get_by_role("log").inner_text()).count("twee van mij") == 1


async def test_quick_exit_leaves_and_back_does_not_return(pages: Any, site: LiveServer) -> None:
    """Quick exit (button, and Shift three times) leaves with location.replace and clears."""
    first = await pages()
    await first.goto(f"{site.base}/healthz")
    await start_visitor(first, site, "Snelweg")
    await expect(first.get_by_role("status")).to_be_visible()
    await first.get_by_role("button", name="Snel weg").click()
    await first.wait_for_url(f"{site.base}/healthz")
    assert await first.evaluate("sessionStorage.length") == 0
    await first.go_back()
    assert "/healthz" in first.url or first.url == "about:blank"
    second = await pages()
    await start_visitor(second, site, "Shifter")
    await expect(second.get_by_role("status")).to_be_visible()
    for _ in range(3):
        await second.keyboard.press("Shift")
    await second.wait_for_url(f"{site.base}/healthz")
    assert await second.evaluate("sessionStorage.length") == 0


async def test_survey_and_saving_the_conversation(pages: Any, site: LiveServer) -> None:
    """After the end: the survey is sent and the conversation downloads as a file."""
    visitor, counsellor = await chat_between(pages, site, "Einde")
    await visitor.get_by_label("Bericht").fill("bedankt voor het luisteren")
    await visitor.get_by_label("Bericht").press("Enter")
    await expect(counsellor.get_by_role("log")).to_contain_text("bedankt")
    await visitor.get_by_role("button", name="Gesprek beëindigen").click()
    await visitor.get_by_test_id("end-yes").click()
    await expect(visitor.get_by_test_id("survey")).to_be_visible()
    await visitor.get_by_test_id("survey").get_by_text("4", exact=True).click()
    await visitor.get_by_test_id("survey-send").click()
    await expect(visitor.get_by_test_id("survey-thanks")).to_be_visible()
    async with visitor.expect_download() as info:
        await visitor.get_by_test_id("save").click()
    download = await info.value
    content = Path(await download.path()).read_text(encoding="utf-8-sig")
    assert "bedankt voor het luisteren" in content
    await shoot(visitor, "visitor-survey")
    facts = await site.store.facts_between(0, float("inf"))
    assert facts and facts[0]["survey_rating"] == "4"


async def test_console_tabs_with_unread_marks(pages: Any, site: LiveServer) -> None:
    """Capacity 2: two chats in tabs; a new tab says "nieuw gesprek", and each message in the
    tab behind raises its count by one."""
    await site.add_staff("anna")
    counsellor = await pages(DESKTOP)
    await staff_login(counsellor, site, "anna")
    await counsellor.get_by_label("Capaciteit").fill("2")
    await available(counsellor)
    one, two = await pages(), await pages()
    tabs = counsellor.get_by_role("tab")
    await start_visitor(one, site, "Eentje")
    await expect(tabs).to_have_count(1)
    await start_visitor(two, site, "Tweetje")
    await expect(tabs).to_have_count(2)
    await tabs.filter(has_text="Eentje").click()
    badge = tabs.filter(has_text="Tweetje").get_by_test_id("unread")
    await expect(badge).to_have_text("nieuw gesprek")
    assert await counsellor.title() == "(1) Hulpverlenersconsole"
    await two.get_by_label("Bericht").fill("hallo daar")
    await two.get_by_label("Bericht").press("Enter")
    await expect(badge).to_have_text("1 (1 nieuw)")
    await two.get_by_label("Bericht").fill("ben je er?")
    await two.get_by_label("Bericht").press("Enter")
    await expect(badge).to_have_text("2 (2 nieuw)")
    await expect(tabs.filter(has_text="Tweetje")).to_have_accessible_name(
        re.compile(r"Tweetje.*\(2 nieuw\)")
    )
    await tabs.filter(has_text="Tweetje").click()
    await expect(badge).to_have_text("")
    await shoot(counsellor, "console-tabs")


async def axe_problems(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """Serious or critical axe-core violations on the page as it is now."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(axe_source)
    result = await page.evaluate(
        "axe.run().then(r => r.violations.map("
        "v => ({id: v.id, impact: v.impact, n: v.nodes.length,"
        " where: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def check_both_sizes(page: Any, axe_source: str) -> dict[str, Any]:
    """axe at 390x844 and 1280x800, and no sideways scrolling of the page at either size."""
    problems: dict[str, Any] = {}
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.wait_for_timeout(50)  # one frame for resize handlers
        bad = await axe_problems(page, axe_source)
        if bad:
            problems[f"{label}-axe"] = bad
        width = await page.evaluate("document.documentElement.scrollWidth")
        if width > size["width"]:
            problems[f"{label}-width"] = width
    return problems


async def test_accessibility_no_serious_violations(
    pages: Any, site: LiveServer, axe_source: str
) -> None:
    """axe-core finds no serious or critical violation, and no page is wider than the screen,
    on every page state at phone and desktop size."""
    visitor, counsellor = await chat_between(pages, site, "Toegankelijk")
    await visitor.get_by_label("Bericht").fill("ik wil dood")
    await visitor.get_by_label("Bericht").press("Enter")
    await expect(counsellor.get_by_test_id("message-flags")).to_be_visible()
    waiting = await pages()
    await start_visitor(waiting, site, "Wachtende")
    await expect(waiting.get_by_role("status").filter(has_text="1")).to_be_visible()
    await site.add_staff("bert", "supervisor")
    supervisor = await pages(DESKTOP)
    login = await pages()
    await login.goto(f"{site.base}/staff")
    await expect(login.get_by_label("Gebruikersnaam")).to_be_visible()
    await staff_login(supervisor, site, "bert", "/supervisor")
    await expect(supervisor.get_by_test_id("queue-row")).to_have_count(1)
    await expect(supervisor.get_by_test_id("conversation-row")).to_have_count(1)
    start = await pages()
    await start.goto(site.base)
    problems = {}
    for name, page in (
        ("start", start),
        ("waiting", waiting),
        ("chat", visitor),
        ("login", login),
        ("console", counsellor),
        ("dashboard", supervisor),
    ):
        found = await check_both_sizes(page, axe_source)
        if found:
            problems[name] = found
    await expect(supervisor.get_by_test_id("watch-hint")).to_be_visible()
    await expect(supervisor.get_by_test_id("staff-row").filter(has_text="Bert")).to_contain_text(
        "ingelogd"
    )
    await shoot(supervisor, "dashboard-overview")
    await shoot(login, "login")
    await supervisor.get_by_role("button", name=re.compile("Meekijken.*Toegankelijk")).click()
    await expect(supervisor.get_by_role("log")).to_contain_text("ik wil dood")
    found = await check_both_sizes(supervisor, axe_source)
    if found:
        problems["dashboard-watching"] = found
    await shoot(supervisor, "dashboard-rows")
    await visitor.get_by_role("button", name="Gesprek beëindigen").click()
    await visitor.get_by_test_id("end-yes").click()
    await expect(visitor.get_by_test_id("survey")).to_be_visible()
    found = await check_both_sizes(visitor, axe_source)
    if found:
        problems["ended"] = found
    assert problems == {}
    assert [e for e in pages.recorder.errors if "401" not in e] == []
