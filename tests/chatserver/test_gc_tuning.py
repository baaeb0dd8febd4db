"""The serve process's garbage-collector tuning (chatserver.cli.tune_gc), in a child process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import asyncio, gc, weakref
    from chatserver.cli import GC_THRESHOLDS, tune_gc

    class Node:
        pass

    async def main():
        node = Node()
        node.me = node  # a cycle: only the collector can free it
        dead = weakref.ref(node)
        task = asyncio.create_task(tune_gc(freeze_seconds=0.01, unfreeze_every=3))
        await asyncio.sleep(0)
        assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold()
        assert gc.get_freeze_count() > 0
        del node  # garbage now, but frozen: only the collection after an unfreeze frees it
        for _ in range(2000):
            if dead() is None:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        assert dead() is None, "frozen cyclic garbage never reclaimed"
        print("ok")

    asyncio.run(main())
    """
)


def test_tune_gc_freezes_raises_thresholds_and_reclaims_frozen_garbage() -> None:
    """tune_gc freezes start-up objects, sets GC_THRESHOLDS, and frees frozen cycles later."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
