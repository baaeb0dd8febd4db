"""An assignment pass claims its whole plan at once, in plan order, on a real Redis: a full
queue is assigned in one pass (crisis first), a claim that lost its visitor or its place is
only not claimed, and counsellors are never given more than their capacity."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from chatserver.config import Settings
from chatserver.events import Event, decode_event
from chatserver.keys import Keys
from chatserver.service import ASSIGN_SNAPSHOT, Service
from chatserver.store import Store, new_id
from queueing.policy import PRIORITY_CRISIS, queue_score
from tests.helpers import LiveServer


def open_store(redis_url: str, prefix: str) -> Store:
    text = aioredis.Redis.from_url(redis_url, decode_responses=True)
    return Store(text, aioredis.Redis.from_url(redis_url), Keys(prefix))


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    found = open_store(redis_url, f"a{uuid.uuid4().hex[:8]}")
    yield found
    await found.r.aclose()
    await found.rb.aclose()


async def waiting(store: Store, n: int, at: float) -> list[str]:
    """``n`` waiting visitors, arrived one millisecond apart from ``at`` (queue order)."""
    convs = []
    for i in range(n):
        conv, when = new_id(), at + i / 1000
        fields = {
            "state": "waiting",
            "nickname": f"Gast{i}",
            "nick_key": f"gast{i}",
            "enqueued": repr(when),
            "priority": "0",
            "crisis": "0",
        }
        opened = await store.open_conversation(
            conv, f"gast{i}", queue_score(0, when), new_id(), 60, 10_000, fields
        )
        assert opened == 1
        convs.append(conv)
    return convs


async def available(store: Store, n: int, capacity: int) -> list[str]:
    """``n`` available counsellors named ``Name<i>``, idle longest first."""
    staff = [f"s{i}" for i in range(n)]
    now = time.time()
    for i, staff_id in enumerate(staff):
        await store.set_status(staff_id, "available", capacity, now - 100 + i, {"name": f"Name{i}"})
    return staff


async def load(store: Store, staff_id: str) -> int:
    return int((await store.staff_state(staff_id)).get("load", 0))


async def events(pubsub: Any, until_quiet: float = 0.5) -> list[Event]:
    """The events published on the channel, in order, until none comes for a while."""
    out = []
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=until_quiet)
        if message is None:
            return out
        ev = decode_event(message["data"])
        assert isinstance(ev, Event)
        out.append(ev)


async def test_a_full_queue_is_assigned_in_one_pass_crisis_first(store: Store) -> None:
    """More visitors than one snapshot holds are all assigned by one pass, the crisis visitor
    (arrived last) first; each claim publishes its assigned event, each batch one queue event
    after its claims; each is logged without personal data; names come from staff state."""
    n = ASSIGN_SNAPSHOT + 30
    convs = await waiting(store, n, time.time() - 60)
    crisis = convs[-1]
    assert await store.prioritise(crisis, PRIORITY_CRISIS, crisis=True)
    staff = await available(store, (n + 9) // 10, 10)
    pubsub = store.rb.pubsub()
    await pubsub.subscribe(store.keys.channel)
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    with structlog.testing.capture_logs() as logs:
        assert await Service(store, Settings()).assign_pass() == n
    seen = await events(pubsub)
    await pubsub.aclose()
    assert await store.waiting_count() == 0
    assigned = [ev.data["c"] for ev in seen if ev.kind == "assigned"]
    assert assigned[0] == crisis
    assert sorted(assigned) == sorted(convs)
    assert [ev.kind for ev in seen].count("queue") == 2  # one per batch, not one per claim
    assert seen[-1].kind == "queue"
    lines = [e for e in logs if e["event"] == "assigned"]
    assert [e["conversation_id"] for e in lines] == assigned
    assert all(set(e) == {"event", "log_level", "conversation_id", "staff_id"} for e in lines)
    for conv in convs:
        meta = await store.conversation(conv)
        assert meta is not None and meta["state"] == "active"
        assert meta["counsellor_name"] == f"Name{staff.index(meta['counsellor'])}"
    loads = [await load(store, s) for s in staff]
    assert sum(loads) == n and max(loads) <= 10


async def test_claims_of_one_batch_compete_for_the_last_places(store: Store) -> None:
    """Four claims for a counsellor with two free places: the first two are claimed, the
    others not, the counsellor is full and leaves the available set, the others still wait."""
    convs = await waiting(store, 4, time.time() - 10)
    (staff,) = await available(store, 1, 2)
    got = await store.claim_all([(c, staff) for c in convs], time.time())
    assert got == [True, True, False, False]
    assert await load(store, staff) == 2
    assert await store.staff_conversation_ids(staff) == sorted(convs[:2])
    assert await store.r.zscore(store.keys.available, staff) is None
    assert await store.queue_ids() == convs[2:]


async def test_a_claim_whose_visitor_left_does_not_stop_the_rest(store: Store) -> None:
    """The first visitor of a batch left before its claim: that claim is not made (its
    conversation stays ended), the claims after it are."""
    convs = await waiting(store, 3, time.time() - 10)
    (staff,) = await available(store, 1, 5)
    assert await Service(store, Settings()).end(convs[0], "visitor_left") == "waiting"
    got = await store.claim_all([(c, staff) for c in convs], time.time())
    assert got == [False, True, True]
    assert (await store.conversation(convs[0]) or {})["state"] == "ended"
    assert await store.staff_conversation_ids(staff) == sorted(convs[1:])
    assert await load(store, staff) == 2


async def test_a_claim_that_errs_is_its_own_error(store: Store) -> None:
    """A claim whose call fails in Redis gets its own error; the claims after it are made."""
    convs = await waiting(store, 2, time.time() - 10)
    (staff,) = await available(store, 1, 5)
    await store.r.set(store.keys.staff_state("broken"), "not a hash")
    got = await store.claim_all([(convs[0], "broken"), (convs[1], staff)], time.time())
    assert isinstance(got[0], ResponseError) and got[1] is True
    assert await store.queue_ids() == convs[:1]


async def test_concurrent_passes_never_exceed_capacity(redis_url: str, store: Store) -> None:
    """Three processes' passes plan from the same snapshot at once: every place is filled
    once (the losers' failed claims are planned again), no counsellor is over capacity,
    and no visitor has two counsellors."""
    convs = await waiting(store, 40, time.time() - 60)
    staff = await available(store, 5, 3)
    others = [open_store(redis_url, store.keys.prefix) for _ in range(2)]
    try:
        passes = [Service(s, Settings()).assign_pass() for s in (store, *others)]
        claimed = await asyncio.gather(*passes)
    finally:
        for other in others:
            await other.r.aclose()
            await other.rb.aclose()
    assert sum(claimed) == 15
    holders: dict[str, str] = {}
    for staff_id in staff:
        mine = await store.staff_conversation_ids(staff_id)
        assert len(mine) == await load(store, staff_id) == 3
        for conv in mine:
            assert conv not in holders
            holders[conv] = staff_id
    assert len(await store.queue_ids()) == 25
    for conv in convs:
        meta = await store.conversation(conv) or {}
        assert (meta["state"] == "active") == (conv in holders)
        assert meta.get("counsellor", "") == holders.get(conv, "")


async def test_a_crisis_visitor_gets_the_first_free_place(server: LiveServer) -> None:
    """Over real sockets: of eight waiting visitors and a crisis visitor who came last, a
    counsellor with five places gets the crisis visitor first, then the four who waited
    longest, each visitor hears the counsellor's name, and the three left are told their
    new places 1..3."""
    visitors = []
    for i in range(8):
        visitor, welcome = await server.visitor(f"Wacht{i}")
        visitors.append((visitor, welcome["conversation_id"]))
    crisis, welcome = await server.visitor("Nood", topic="niet-meer-leven")
    crisis_conv = welcome["conversation_id"]
    while (await crisis.expect("queued"))["position"] != 1:
        pass
    anna = await server.staff("anna", available=None, skills=("niet-meer-leven",))
    await anna.send({"type": "status", "state": "available", "capacity": 5})
    await anna.expect("status")
    got = [(await anna.expect("assigned"))["conversation_id"] for _ in range(5)]
    assert got == [crisis_conv] + [conv for _, conv in visitors[:4]]
    for visitor, _ in [(crisis, crisis_conv), *visitors[:4]]:
        assert (await visitor.expect("assigned"))["counsellor"] == "Anna"
    for place, (visitor, _) in enumerate(visitors[4:7], start=1):
        while (await visitor.expect("queued"))["position"] != place:
            pass
    await anna.nothing(0.5, skip=("queue", "overview"))
