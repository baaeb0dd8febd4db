"""Says of one loop turn go to Redis as one pipeline, and each caller still gets its own
reply, its own error, or (when others' calls fail) nothing of theirs; on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatserver.batching import evalsha
from chatserver.events import unpack_entry
from chatserver.keys import Keys
from chatserver.store import Store
from tests.conftest import free_port


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    text = aioredis.Redis.from_url(redis_url, decode_responses=True)
    binary = aioredis.Redis.from_url(redis_url)
    yield Store(text, binary, Keys(f"b{uuid.uuid4().hex[:8]}"))
    await text.aclose()
    await binary.aclose()


async def say(store: Store, conv: str, n: int, ref: str | None = None) -> int:
    result = await store.say(conv, ref, "visitor", "Nick", f"message {n}", 1.0, "c1")
    return result.seq


async def test_concurrent_says_are_batched_and_each_gets_its_own_seq(store: Store) -> None:
    """200 says made in one turn go out in one or two writes; seqs 1..200 once each, and
    the stored list holds every text at the seq its caller was told."""
    await say(store, "warm-up", 0)  # connected, script loaded
    calls, batches = store.says.calls, store.says.batches
    seqs = await asyncio.gather(*(say(store, "conv-a", i) for i in range(200)))
    assert sorted(seqs) == list(range(1, 201))
    assert store.says.calls - calls == 200
    assert 1 <= store.says.batches - batches <= 2
    stored = await store.messages("conv-a")
    assert [m.text for m in stored] == [f"message {i}" for i in range(200)]
    by_seq = {m.seq: m.text for m in stored}
    assert all(by_seq[seq] == f"message {i}" for i, seq in enumerate(seqs))


async def test_says_of_later_turns_are_pipelined_behind_unanswered_ones(store: Store) -> None:
    """Says made one turn after another (each written before the one before it was
    answered) are answered in order, each with its own seq."""
    tasks = []
    for i in range(20):
        tasks.append(asyncio.create_task(say(store, "conv-b", i)))
        await asyncio.sleep(0)
    assert await asyncio.gather(*tasks) == list(range(1, 21))
    assert store.says.batches >= 2


async def test_a_duplicate_ref_in_a_batch_gets_the_first_seq(store: Store) -> None:
    """Resends by ref inside one batch are stored once and answered with that seq."""
    results = await asyncio.gather(
        *(store.say("conv-c", "v:r1", "visitor", "Nick", "hi", 1.0, "c1") for _ in range(5))
    )
    assert [r.seq for r in results] == [1] * 5
    assert [r.duplicate for r in results] == [False, True, True, True, True]
    assert await store.message_count("conv-c") == 1


async def test_one_failing_call_fails_alone(store: Store) -> None:
    """A call whose script errs (its refs key holds a string) gets that error; the others
    in its batch are stored."""
    await say(store, "warm-up", 0)  # connected, script loaded
    batches = store.says.batches
    await store.rb.set(store.keys.refs("conv-bad"), "not a hash")
    outcomes = await asyncio.gather(
        say(store, "conv-d", 0, "v:x"),
        say(store, "conv-bad", 1, "v:x"),
        say(store, "conv-d", 2, "v:y"),
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and outcomes[2] == 2
    assert isinstance(outcomes[1], ResponseError)
    assert store.says.batches - batches == 1


async def test_a_cancelled_opener_does_not_lose_the_others(store: Store) -> None:
    """The task that opened a batch is cancelled before it is sent: every other call in
    the batch is still stored and answered."""
    tasks = [asyncio.create_task(say(store, "conv-e", i)) for i in range(30)]
    await asyncio.sleep(0)  # every task has joined the batch the first one opened
    tasks[0].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert sorted(r for r in results[1:] if isinstance(r, int)) == list(range(1, 30))
    stored = await store.messages("conv-e")
    assert sorted(m.text for m in stored) == sorted(f"message {i}" for i in range(1, 30))


async def test_scripts_are_loaded_again_after_a_script_flush(store: Store) -> None:
    """NOSCRIPT (Redis lost its scripts on a live connection): loaded again, the calls run."""
    await say(store, "conv-f", 0)
    await store.rb.script_flush()
    seqs = await asyncio.gather(*(say(store, "conv-f", i) for i in range(1, 11)))
    assert sorted(seqs) == list(range(2, 12))
    entries = await store.rb.lrange(store.keys.messages("conv-f"), 0, -1)
    assert len(entries) == 11
    assert unpack_entry(1, entries[0]).text == "message 0"


async def test_an_unreachable_redis_fails_every_caller() -> None:
    """No Redis at all: every caller of the batch gets a connection error, none hangs."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    text = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1)
    binary = aioredis.Redis.from_url(url, socket_connect_timeout=1)
    dead = Store(text, binary, Keys("dead"))
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(say(dead, "conv-g", i) for i in range(5)), return_exceptions=True), 30
    )
    assert all(isinstance(o, RedisConnectionError) for o in outcomes)
    await text.aclose()
    await binary.aclose()


async def test_an_unanswered_say_times_out_and_the_next_one_works(store: Store) -> None:
    """Redis holding writes (CLIENT PAUSE) past the timeout: the waiting callers get a
    timeout error; once Redis answers again a new say is stored."""
    store.says.timeout = 0.3
    await say(store, "conv-h", 0)
    await asyncio.sleep(0.4)  # the watchdog armed by that say has looked and gone
    await store.r.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(say(store, "conv-h", i) for i in range(1, 4)), return_exceptions=True),
        10,
    )
    assert all(isinstance(o, RedisTimeoutError) for o in outcomes)
    await store.r.execute_command("CLIENT", "UNPAUSE")
    assert await say(store, "conv-h", 9) >= 2


async def test_closing_fails_waiting_callers_and_refuses_new_ones(store: Store) -> None:
    """aclose: a say made afterwards fails at once with a connection error."""
    await say(store, "conv-i", 0)
    await store.says.aclose()
    with pytest.raises(RedisConnectionError):
        await say(store, "conv-i", 1)


@given(
    keys=st.lists(st.text(max_size=40), max_size=3),
    args=st.lists(
        st.one_of(st.text(max_size=200), st.binary(max_size=9000), st.integers()), max_size=7
    ),
)
@settings(max_examples=300, deadline=None)
def test_evalsha_packs_what_redis_py_packs(keys: list[str], args: list[Any]) -> None:
    """The batcher's own RESP packing gives the very bytes of redis-py's pack_command, for
    any text (UTF-8), bytes (large ones too, which redis-py cuts into pieces) and ints."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    theirs = b"".join(Connection().pack_command("EVALSHA", sha, len(keys), *keys, *args))
    head = b"$7\r\nEVALSHA\r\n" + b"$40\r\n" + sha.encode() + b"\r\n"
    assert evalsha(head, keys, args) == theirs
