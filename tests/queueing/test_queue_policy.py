"""Queue order and assignment rules, tested directly and with random cases (hypothesis)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from queueing.conversation import ConversationState, InvalidTransition, transition
from queueing.policy import (
    CounsellorSlot,
    QueuePolicy,
    WaitingVisitor,
    plan_assignments,
    positions,
    queue_order,
)

visitors = st.lists(
    st.builds(
        WaitingVisitor,
        conversation_id=st.uuids().map(str),
        enqueued_at=st.floats(0, 1000),
        priority=st.integers(-1, 3),
    ),
    max_size=12,
    unique_by=lambda v: v.conversation_id,
)
counsellors = st.lists(
    st.builds(
        CounsellorSlot,
        staff_id=st.uuids().map(str),
        capacity=st.integers(1, 3),
        load=st.integers(0, 3),
        idle_since=st.floats(0, 1000),
    ),
    max_size=5,
    unique_by=lambda c: c.staff_id,
)


@given(visitors, counsellors)
def test_plan_respects_capacity_and_assigns_each_visitor_once(
    waiting: list[WaitingVisitor], staff: list[CounsellorSlot]
) -> None:
    """Never over capacity, never a visitor twice, only known visitors and counsellors."""
    plan = plan_assignments(waiting, staff, 2000.0)
    assert len({a.conversation_id for a in plan}) == len(plan)
    for c in staff:
        given_to = sum(1 for a in plan if a.staff_id == c.staff_id)
        assert given_to <= max(0, c.capacity - c.load)
    assert len(plan) == min(len(waiting), sum(c.free for c in staff))


@given(visitors, counsellors)
def test_higher_priority_and_earlier_first(
    waiting: list[WaitingVisitor], staff: list[CounsellorSlot]
) -> None:
    """Without topics, those helped are exactly the first ones in queue order."""
    plan = plan_assignments(waiting, staff, 2000.0)
    order = [v.conversation_id for v in queue_order(waiting)]
    assert {a.conversation_id for a in plan} == set(order[: len(plan)])
    ranked = queue_order(waiting)
    for a, b in pairwise(ranked):
        assert (a.priority, -a.enqueued_at) >= (b.priority, -b.enqueued_at)


@given(visitors)
def test_positions_are_one_to_n(waiting: list[WaitingVisitor]) -> None:
    """Positions are 1..n without gaps."""
    assert sorted(positions(waiting).values()) == list(range(1, len(waiting) + 1))


def test_longest_idle_counsellor_gets_the_next_visitor() -> None:
    """Of two free counsellors, the one idle longest gets the head of the queue."""
    plan = plan_assignments(
        [WaitingVisitor("v", 5.0)],
        [CounsellorSlot("recent", 1, 0, 90.0), CounsellorSlot("long", 1, 0, 10.0)],
        100.0,
    )
    assert plan[0].staff_id == "long"


def test_skill_first_then_anyone_after_the_wait() -> None:
    """A topic goes to a skilled counsellor; after skill_wait_seconds anyone may take it."""
    visitor = WaitingVisitor("v", 0.0, topic="school")
    other = CounsellorSlot("other", 1, 0, 50.0)
    skilled = CounsellorSlot("skilled", 1, 0, 60.0, skills=frozenset({"school"}))
    assert plan_assignments([visitor], [other, skilled], 10.0)[0].staff_id == "skilled"
    assert plan_assignments([visitor], [other], 10.0, QueuePolicy(120)) == []
    assert plan_assignments([visitor], [other], 130.0, QueuePolicy(120))[0].staff_id == "other"
    idle = CounsellorSlot("idle", 1, 0, 0.0)  # idled longer than the skill wait: takes anyone
    assert plan_assignments([visitor], [idle], 121.0, QueuePolicy(120))[0].staff_id == "idle"


def test_trainees_only_watched_and_never_crisis() -> None:
    """A trainee gets no one unless watched, and never a crisis."""
    calm, crisis = WaitingVisitor("calm", 1.0), WaitingVisitor("crisis", 0.0, 2, crisis=True)
    unwatched = CounsellorSlot("t", 2, 0, 0.0, trainee=True)
    watched = CounsellorSlot("t", 2, 0, 0.0, trainee=True, watched=True)
    assert plan_assignments([calm, crisis], [unwatched], 5.0) == []
    assert [a.conversation_id for a in plan_assignments([calm, crisis], [watched], 5.0)] == ["calm"]


def test_conversation_transitions() -> None:
    """Waiting → active → ended; no way back from ended."""
    assert transition(ConversationState.WAITING, "assign") is ConversationState.ACTIVE
    assert transition(ConversationState.ACTIVE, "requeue") is ConversationState.WAITING
    assert transition(ConversationState.ACTIVE, "end") is ConversationState.ENDED
    try:
        transition(ConversationState.ENDED, "assign")
    except InvalidTransition as exc:
        assert "ended" in str(exc)
    else:
        raise AssertionError("an ended conversation was assigned")
