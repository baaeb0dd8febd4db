"""The queue store under random operation sequences (hypothesis), on a real Redis.

Whatever the sequence: a visitor is waiting xor active xor ended; never two counsellors for
one visitor; never a counsellor over capacity; the available set is exactly the counsellors
who may take one more; positions are 1..n; nicknames are held only by live visitors.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chatserver.config import Settings
from chatserver.keys import Keys
from chatserver.service import Service
from chatserver.store import Store, new_id
from queueing.policy import queue_score

STAFF = ["s1", "s2", "s3"]


class QueueStoreMachine(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        url = type(self).redis_url
        self.store = Store(
            aioredis.Redis.from_url(url, decode_responses=True),
            aioredis.Redis.from_url(url),
            Keys(f"h{uuid.uuid4().hex[:8]}"),
        )
        self.service = Service(self.store, Settings())
        self.convs: list[str] = []
        self.capacity: dict[str, int] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.r.aclose())
        self.run(self.store.rb.aclose())
        self.loop.close()

    @rule(nick=st.sampled_from(["Ab", "ab", "Cd", "Ef", "Gh", "Ij"]))
    def hello(self, nick: str) -> None:
        conv, now = new_id(), time.time()
        result = self.run(
            self.store.open_conversation(
                conv,
                nick.casefold(),
                queue_score(0, now),
                new_id(),
                60,
                50,
                {
                    "state": "waiting",
                    "nickname": nick,
                    "nick_key": nick.casefold(),
                    "enqueued": repr(now),
                    "priority": "0",
                    "crisis": "0",
                },
            )
        )
        if result == 1:
            self.convs.append(conv)

    @rule(
        staff=st.sampled_from(STAFF),
        state=st.sampled_from(["available", "paused", "offline"]),
        capacity=st.integers(1, 3),
    )
    def status(self, staff: str, state: str, capacity: int) -> None:
        self.capacity[staff] = capacity
        self.run(self.store.set_status(staff, state, capacity, time.time(), {"name": staff}))

    @rule()
    def assign(self) -> None:
        before = {s: self.run(self.store.staff_state(s)) for s in STAFF}
        self.run(self.service.assign_pass())
        for staff in STAFF:
            after = self.run(self.store.staff_state(staff))
            grew = int(after.get("load", 0)) > int(before[staff].get("load", 0))
            if grew:  # a new chat only within capacity (lowering it later is allowed)
                assert int(after["load"]) <= int(after["capacity"]), (staff, after)

    @precondition(lambda self: self.convs)
    @rule(data=st.data(), reason=st.sampled_from(["visitor_left", "counsellor_ended", "timeout"]))
    def end(self, data: st.DataObject, reason: str) -> None:
        conv = data.draw(st.sampled_from(self.convs))
        self.run(self.service.end(conv, reason))

    @precondition(lambda self: self.convs)
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        conv = data.draw(st.sampled_from(self.convs))
        meta = self.run(self.store.conversation(conv)) or {}
        if meta.get("counsellor"):
            self.run(self.store.requeue(conv, meta["counsellor"], time.time(), ""))

    @invariant()
    def consistent(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        k, r = self.store.keys, self.store.r
        queue = await r.zrange(k.queue, 0, -1)
        assert len(queue) == len(set(queue))
        holders: dict[str, str] = {}
        live_nicks = set()
        for conv in self.convs:
            meta = await r.hgetall(k.conversation(conv))
            state = meta["state"]
            assert (conv in queue) == (state == "waiting"), (conv, state)
            if state in ("waiting", "active"):
                live_nicks.add(meta["nick_key"])
            if state == "active":
                holders[conv] = meta["counsellor"]
        assert live_nicks == set(await r.smembers(k.nicknames))
        available = set(await r.zrange(k.available, 0, -1))
        for staff in STAFF:
            convs = set(await r.smembers(k.staff_conversations(staff)))
            assert convs == {c for c, s in holders.items() if s == staff}
            state = await r.hgetall(k.staff_state(staff))
            if not state:
                continue
            load, cap = int(state.get("load", 0)), int(state["capacity"])
            assert load == len(convs), (staff, load, cap)
            free = state["state"] == "available" and load < cap
            assert (staff in available) == free, (staff, state)


def test_queue_store_invariants(redis_url: str) -> None:
    """Random hello/status/assign/end/requeue sequences keep every invariant."""
    QueueStoreMachine.redis_url = redis_url
    runner = QueueStoreMachine.TestCase
    runner.settings = settings(
        max_examples=40, stateful_step_count=25, deadline=None, derandomize=True
    )
    runner().runTest()
