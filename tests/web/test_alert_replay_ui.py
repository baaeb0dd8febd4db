"""The supervisor dashboard shows an alert replayed after login like a live one, marked
"eerder", once, also after the socket reconnects."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.helpers import LiveServer, eventually
from tests.web.conftest import DESKTOP
from tests.web.test_pages import check_both_sizes, staff_login

pytestmark = pytest.mark.browser


async def crisis_said(site: LiveServer, nickname: str) -> str:
    """A waiting visitor (a protocol client) says a crisis text; returns its conversation id
    once the signal is on record."""
    visitor, welcome = await site.visitor(nickname)
    conv = welcome["conversation_id"]
    await visitor.send({"type": "say", "text": "ik wil dood", "ref": "c"})
    await visitor.expect("ack")

    async def signalled() -> bool:
        meta = await site.store.conversation(conv)
        return bool(meta and meta.get("crisis_ts"))

    await eventually(signalled, what=f"the crisis signal of {nickname}")
    return str(conv)


async def test_replayed_alert_shows_like_a_live_one(
    pages: Any, site: LiveServer, axe_source: str
) -> None:
    """A crisis raised before the supervisor logged in is an announced alert like a live one,
    marked "eerder" where a live one has its time, that opens the chat; after a reconnect each
    alert is still shown once; axe finds no serious problem."""
    first = await crisis_said(site, "Stil")
    await site.add_staff("bert", "supervisor")
    supervisor = await pages(DESKTOP)
    await staff_login(supervisor, site, "bert", "/supervisor")
    alerts = supervisor.get_by_role("alert").get_by_test_id("alert")
    await expect(alerts).to_have_count(1)
    replayed = alerts.filter(has_text="Stil")
    await expect(replayed).to_have_attribute("data-conversation-id", first)
    await expect(replayed).to_contain_text("Crisis")
    await expect(replayed).to_contain_text("eerder")
    await expect(replayed).to_contain_text("Crisissignaal bij Stil")
    assert " / " not in await replayed.inner_text()
    assert await supervisor.title() == "(1!) Supervisordashboard"
    # A live one, for comparison: its time instead of "eerder", on top.
    await crisis_said(site, "Live")
    await expect(alerts).to_have_count(2)
    live = alerts.filter(has_text="Live")
    await expect(alerts.first).to_contain_text("Crisissignaal bij Live")
    await expect(live).not_to_contain_text("eerder")
    await expect(live).to_contain_text(re.compile(r"\d{1,2}[:.]\d{2}"))
    assert await check_both_sizes(supervisor, axe_source) == {}
    # The socket drops and comes back: the server replays both, the page shows each once.
    connection = supervisor.get_by_test_id("connection")
    await supervisor.context.set_offline(True)
    await expect(connection).to_have_attribute("data-state", "down")
    await supervisor.context.set_offline(False)
    await expect(connection).to_have_attribute("data-state", "open", timeout=20000)
    await crisis_said(site, "Derde")
    await expect(alerts).to_have_count(3)
    await expect(alerts.filter(has_text="Stil")).to_have_count(1)
    await expect(alerts.filter(has_text="Live")).to_have_count(1)
    assert await supervisor.title() == "(3!) Supervisordashboard"
    await replayed.get_by_role("button", name="Open gesprek").click()
    await expect(supervisor.get_by_test_id("watch")).to_be_visible()
