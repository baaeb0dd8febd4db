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
    order_key,
    plan_assignments,
    positions,
    queue_order,
    queue_score,
)

NOW = 2000.0
POLICY = QueuePolicy(skill_wait_seconds=120.0)
TOPICS = ("school", "thuis", "pesten")
STAFF_IDS = ("anna", "bert", "cees", "dirk", "eva")

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


#: Arrival times drawn from a few values too, so equal priorities and equal arrivals occur.
tied_visitors = st.lists(
    st.builds(
        WaitingVisitor,
        conversation_id=st.text("abcdef", min_size=1, max_size=3),
        enqueued_at=st.sampled_from([0.0, 1.0, 2.5]) | st.floats(0, 1000),
        priority=st.integers(-1, 3),
    ),
    max_size=12,
    unique_by=lambda v: v.conversation_id,
)


@given(tied_visitors)
def test_queue_order_is_priority_then_arrival(waiting: list[WaitingVisitor]) -> None:
    """queue_order returns every visitor once; of each adjacent pair the first has the
    higher priority, or the same priority and the earlier arrival (the same arrival:
    the smaller conversation id)."""
    order = queue_order(waiting)
    assert sorted(v.conversation_id for v in order) == sorted(v.conversation_id for v in waiting)
    for first, second in pairwise(order):
        assert first.priority >= second.priority, (first, second)
        if first.priority == second.priority:
            assert first.enqueued_at <= second.enqueued_at, (first, second)
            if first.enqueued_at == second.enqueued_at:
                assert first.conversation_id < second.conversation_id, (first, second)


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


def test_requeued_visitor_goes_to_someone_else() -> None:
    """Back in the queue, a visitor goes to another free counsellor, not the one they had."""
    back = WaitingVisitor("v", 0.0, avoid=frozenset({"anna"}), requeued_at=100.0)
    anna = CounsellorSlot("anna", 1, 0, 10.0)  # idle longest: would win without the rule
    dirk = CounsellorSlot("dirk", 1, 0, 90.0)
    assert plan_assignments([back], [anna, dirk], 101.0, POLICY)[0].staff_id == "dirk"


def test_requeued_visitor_never_waits_forever() -> None:
    """When only the old counsellor is free, they take the visitor after skill_wait_seconds."""
    back = WaitingVisitor("v", 0.0, avoid=frozenset({"anna"}), requeued_at=100.0)
    anna = CounsellorSlot("anna", 1, 0, 100.0)
    assert plan_assignments([back], [anna], 219.0, POLICY) == []
    assert plan_assignments([back], [anna], 220.0, POLICY)[0].staff_id == "anna"
    dirk = CounsellorSlot("dirk", 1, 0, 200.0)  # even then, anyone else first
    assert plan_assignments([back], [anna, dirk], 300.0, POLICY)[0].staff_id == "dirk"


rich_visitors = st.lists(
    st.builds(
        WaitingVisitor,
        conversation_id=st.uuids().map(str),
        enqueued_at=st.floats(0, NOW),
        priority=st.integers(-1, 3),
        topic=st.none() | st.sampled_from(TOPICS),
        crisis=st.booleans(),
        avoid=st.frozensets(st.sampled_from(STAFF_IDS), max_size=2),
        requeued_at=st.none() | st.floats(0, NOW),
    ),
    max_size=12,
    unique_by=lambda v: v.conversation_id,
)
rich_counsellors = st.lists(
    st.builds(
        CounsellorSlot,
        staff_id=st.sampled_from(STAFF_IDS),
        capacity=st.integers(1, 3),
        load=st.integers(0, 3),
        idle_since=st.floats(0, NOW),
        skills=st.frozensets(st.sampled_from(TOPICS)),
        trainee=st.booleans(),
        watched=st.booleans(),
    ),
    max_size=5,
    unique_by=lambda c: c.staff_id,
)


@given(rich_visitors, rich_counsellors)
def test_avoided_counsellor_only_after_the_wait(
    waiting: list[WaitingVisitor], staff: list[CounsellorSlot]
) -> None:
    """A requeued visitor reaches a counsellor they had only after skill_wait_seconds."""
    by_id = {v.conversation_id: v for v in waiting}
    for a in plan_assignments(waiting, staff, NOW, POLICY):
        v = by_id[a.conversation_id]
        if a.staff_id in v.avoid:
            since = v.requeued_at if v.requeued_at is not None else v.enqueued_at
            assert NOW - since >= POLICY.skill_wait_seconds


@given(rich_visitors, rich_counsellors)
def test_no_topic_visitor_waits_while_someone_idles_long(
    waiting: list[WaitingVisitor], staff: list[CounsellorSlot]
) -> None:
    """No topic visitor stays unassigned while a free counsellor who may take them
    (trainee rules, not one they had) has idled at least skill_wait_seconds."""
    plan = plan_assignments(waiting, staff, NOW, POLICY)
    assigned = {a.conversation_id for a in plan}
    given_to = {c.staff_id: sum(1 for a in plan if a.staff_id == c.staff_id) for c in staff}
    # Counsellors still free after the plan who were given nobody (so still idle).
    idle_long = [
        c
        for c in staff
        if c.free > 0
        and given_to[c.staff_id] == 0
        and NOW - c.idle_since >= POLICY.skill_wait_seconds
    ]
    for v in waiting:
        if v.topic is None or v.conversation_id in assigned:
            continue
        for c in idle_long:
            trainee_ok = not c.trainee or (c.watched and not v.crisis)
            assert not trainee_ok or c.staff_id in v.avoid, (v, c)


@given(rich_visitors, rich_counsellors)
def test_trainee_never_crisis_never_unwatched(
    waiting: list[WaitingVisitor], staff: list[CounsellorSlot]
) -> None:
    """A trainee is never given a crisis visitor, nor anyone while nobody watches them."""
    crisis = {v.conversation_id for v in waiting if v.crisis}
    slots = {c.staff_id: c for c in staff}
    for a in plan_assignments(waiting, staff, NOW, POLICY):
        c = slots[a.staff_id]
        if c.trainee:
            assert c.watched and a.conversation_id not in crisis


@given(
    st.lists(
        st.builds(
            WaitingVisitor,
            conversation_id=st.text("0123456789abcdef", min_size=1, max_size=4),
            # Unix times at millisecond resolution, as the server writes them; many equal.
            enqueued_at=st.integers(0, 5000).map(lambda ms: 1.7e9 + ms / 1000),
            priority=st.integers(-1, 3),
        ),
        max_size=20,
        unique_by=lambda v: v.conversation_id,
    )
)
def test_redis_score_order_is_queue_order(waiting: list[WaitingVisitor]) -> None:
    """Redis orders the queue by queue_score, then member: the same as order_key."""
    by_score = sorted(
        waiting, key=lambda v: (queue_score(v.priority, v.enqueued_at), v.conversation_id)
    )
    assert by_score == sorted(waiting, key=order_key)
