"""Who is helped next: the queue order and the assignment plan.

Pure functions over plain values. The server reads a snapshot of the queue and of the
counsellors from Redis, asks :func:`plan_assignments` what to do, and applies each
:class:`Assignment` with an atomic, guarded claim (a claim whose preconditions no longer
hold is simply skipped and the plan is made again). The simulator drives the very same
functions on a virtual clock.

Rules:

* Queue order: higher ``priority`` first; within a priority, first come, first served
  (``enqueued_at``), ties broken by conversation id so the order is total.
* A waiting visitor goes to the counsellor with free capacity who has been idle longest.
* A visitor with a topic goes first to a counsellor with that skill. After
  ``skill_wait_seconds`` of waiting, or when a free counsellor has idled that long, any
  counsellor may take them: nobody waits behind a skill rule while someone idles.
* A trainee is only assigned while a supervisor watches them, and never a crisis.
* A visitor sent back to the queue does not go straight back to a counsellor they had
  (``avoid``): those are passed over until the visitor has waited ``skill_wait_seconds``
  since being requeued, so nobody waits forever when only they are free; even then any
  other eligible counsellor is preferred.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

# Priorities. Larger is more urgent. A crisis signal lifts a visitor to CRISIS.
PRIORITY_NORMAL = 0
PRIORITY_RAISED = 1
PRIORITY_CRISIS = 2
PRIORITY_MIN = -1
PRIORITY_MAX = 3

#: Score distance between two priorities in the Redis sorted set: far more than any
#: Unix timestamp, so priority always dominates and the time orders within one priority.
PRIORITY_WEIGHT = 1e10


@dataclass(frozen=True, slots=True)
class WaitingVisitor:
    """A visitor in the queue, as the policy sees them."""

    conversation_id: str
    enqueued_at: float
    priority: int = PRIORITY_NORMAL
    topic: str | None = None
    crisis: bool = False
    #: Counsellors this conversation had before (sent back to the queue): passed over
    #: until the visitor has waited ``skill_wait_seconds`` since ``requeued_at``.
    avoid: frozenset[str] = field(default_factory=frozenset)
    #: When the visitor was sent back to the queue (their ``enqueued_at`` then puts them
    #: first in line, so it says nothing about how long they wait this time).
    requeued_at: float | None = None


@dataclass(frozen=True, slots=True)
class CounsellorSlot:
    """An available counsellor, as the policy sees them."""

    staff_id: str
    capacity: int
    load: int
    idle_since: float
    skills: frozenset[str] = field(default_factory=frozenset)
    trainee: bool = False
    watched: bool = False

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.load)


@dataclass(frozen=True, slots=True)
class Assignment:
    conversation_id: str
    staff_id: str


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    skill_wait_seconds: float = 120.0


def queue_score(priority: int, enqueued_at: float) -> float:
    """Sorted-set score: ascending score is queue order."""
    return enqueued_at - priority * PRIORITY_WEIGHT


def order_key(visitor: WaitingVisitor) -> tuple[int, float, str]:
    """Exact queue order. (The Redis score of :func:`queue_score` agrees to about a
    microsecond of arrival time: float precision at 1e10.)"""
    return (-visitor.priority, visitor.enqueued_at, visitor.conversation_id)


def queue_order(visitors: Iterable[WaitingVisitor]) -> list[WaitingVisitor]:
    """The waiting visitors, first to be helped first."""
    return sorted(visitors, key=order_key)


def may_take(
    visitor: WaitingVisitor, counsellor: CounsellorSlot, now: float, policy: QueuePolicy
) -> bool:
    """Whether ``counsellor`` may be given ``visitor`` now."""
    if counsellor.free <= 0:
        return False
    if counsellor.trainee and (visitor.crisis or not counsellor.watched):
        return False
    if counsellor.staff_id in visitor.avoid:
        since = visitor.requeued_at if visitor.requeued_at is not None else visitor.enqueued_at
        if now - since < policy.skill_wait_seconds:
            return False
    if visitor.topic is None or visitor.topic in counsellor.skills:
        return True
    waited = now - visitor.enqueued_at
    idled = now - counsellor.idle_since
    return waited >= policy.skill_wait_seconds or idled >= policy.skill_wait_seconds


def _preference(visitor: WaitingVisitor, counsellor: CounsellorSlot) -> tuple[int, int, float, str]:
    skilled = visitor.topic is not None and visitor.topic in counsellor.skills
    avoided = counsellor.staff_id in visitor.avoid
    return (1 if avoided else 0, 0 if skilled else 1, counsellor.idle_since, counsellor.staff_id)


def plan_assignments(
    waiting: Sequence[WaitingVisitor],
    counsellors: Sequence[CounsellorSlot],
    now: float,
    policy: QueuePolicy = QueuePolicy(),
) -> list[Assignment]:
    """Pair waiting visitors with counsellors, in queue order.

    A visitor nobody may take yet is passed over (no head-of-line blocking); the
    visitors behind them are still served.
    """
    pool = {c.staff_id: c for c in counsellors if c.free > 0}
    plan: list[Assignment] = []
    for visitor in queue_order(waiting):
        if not pool:
            break
        eligible = [c for c in pool.values() if may_take(visitor, c, now, policy)]
        if not eligible:
            continue
        chosen = min(eligible, key=lambda c: _preference(visitor, c))
        plan.append(Assignment(visitor.conversation_id, chosen.staff_id))
        updated = replace(chosen, load=chosen.load + 1, idle_since=now)
        if updated.free > 0:
            pool[chosen.staff_id] = updated
        else:
            del pool[chosen.staff_id]
    return plan


def positions(waiting: Iterable[WaitingVisitor]) -> dict[str, int]:
    """Queue position of each waiting conversation, 1 = next."""
    return {v.conversation_id: i for i, v in enumerate(queue_order(waiting), start=1)}
