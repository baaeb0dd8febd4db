"""Browser fixtures: Debian's Chromium driven by Playwright, never a downloaded browser.

Without Chromium the browser tests are skipped with a message — except in CI
(``REQUIRE_BROWSER=1``), where a missing browser or axe-core fails the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chatserver.config import Settings
from tests.helpers import LiveServer

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _missing(what: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(what)
    pytest.skip(what)


def chromium_path() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        _missing("Chromium not installed: apt-get install chromium")
    assert found is not None
    return found


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    path = chromium_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=path, args=ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
def axe_source() -> str:
    if not AXE.exists():
        _missing("axe-core missing: npm install --prefix tests/web axe-core")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
async def site(redis_url: str, key_prefix: str) -> AsyncIterator[LiveServer]:
    """The real server; quick exit goes to a neutral page on the same origin."""
    settings = Settings()
    settings = replace(
        settings, server=replace(settings.server, key_prefix=key_prefix, quick_exit_url="/healthz")
    )
    async with LiveServer.start(settings, redis_url) as live:
        yield live


class Recorder:
    """Every request a page makes, and every console error or CSP violation."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.requests: list[str] = []
        self.errors: list[str] = []

    def attach(self, page: Any) -> Any:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page

    def foreign(self) -> list[str]:
        return [
            u
            for u in self.requests
            if not (
                u.startswith(self.base)
                or u.startswith(self.base.replace("http", "ws"))
                or u.startswith("data:")
                or u.startswith("blob:")
            )
        ]


@pytest.fixture
async def pages(browser: Any, site: LiveServer) -> AsyncIterator[Any]:
    """A factory of pages, each in its own context (one person each)."""
    recorder = Recorder(site.base)
    contexts: list[Any] = []

    async def new(viewport: dict[str, int] = PHONE) -> Any:
        context = await browser.new_context(viewport=viewport, accept_downloads=True)
        contexts.append(context)
        return recorder.attach(await context.new_page())

    new.recorder = recorder  # type: ignore[attr-defined]
    yield new
    for context in contexts:
        await context.close()
    # Nothing from any other origin, on any page, in any test (no CDN, fonts, analytics).
    assert recorder.foreign() == [], recorder.foreign()


async def shoot(page: Any, name: str) -> None:
    """Screenshots at both sizes for a person to look at (tests/artifacts, git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    current = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(current)
