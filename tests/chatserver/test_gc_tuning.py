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


TICKS = textwrap.dedent(
    """
    import asyncio, gc
    from chatserver.cli import tune_gc

    async def main():
        generations = []
        gc.callbacks.append(
            lambda phase, info: phase == "start" and generations.append(info["generation"])
        )
        task = asyncio.create_task(tune_gc(freeze_seconds=0.01, unfreeze_every=3))
        await asyncio.sleep(0)
        frozen = gc.get_freeze_count()
        young = [[] for _ in range(1000)]  # new objects: frozen by the next tick
        while 1 not in generations:
            await asyncio.sleep(0.01)
        assert gc.get_freeze_count() >= frozen + len(young)
        while [g for g in generations if g > 0].count(2) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        print(",".join(str(g) for g in generations if g > 0))

    asyncio.run(main())
    """
)


def test_tune_gc_ticks_collect_young_generations_and_everything_only_after_unfreezing() -> None:
    """Each tick collects generations 0-1 only and freezes; every 3rd (unfreeze) all of them."""
    done = subprocess.run(
        [sys.executable, "-c", TICKS], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    # the start-up collection, then ticks: two young-only ones before each whole one
    assert done.stdout.strip() == "2,1,1,2,1,1,2", done.stdout
