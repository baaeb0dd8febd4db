"""The life of a conversation: waiting, active, ended, with guarded transitions."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ConversationState(IntEnum):
    WAITING = 1
    ACTIVE = 2
    ENDED = 3


class EndReason(StrEnum):
    VISITOR_LEFT = "visitor_left"
    COUNSELLOR_ENDED = "counsellor_ended"
    TIMEOUT = "timeout"
    BLOCKED = "blocked"


class InvalidTransition(ValueError):
    """A conversation was asked to move to a state it cannot reach from where it is."""

    def __init__(self, current: ConversationState, action: str) -> None:
        super().__init__(f"cannot {action} a conversation that is {current.name.lower()}")
        self.current = current
        self.action = action


_ALLOWED: dict[str, frozenset[ConversationState]] = {
    "assign": frozenset({ConversationState.WAITING}),
    "requeue": frozenset({ConversationState.ACTIVE}),
    "end": frozenset({ConversationState.WAITING, ConversationState.ACTIVE}),
    "say": frozenset({ConversationState.WAITING, ConversationState.ACTIVE}),
    "survey": frozenset({ConversationState.ENDED}),
}

_TARGET: dict[str, ConversationState] = {
    "assign": ConversationState.ACTIVE,
    "requeue": ConversationState.WAITING,
    "end": ConversationState.ENDED,
}


def allowed(current: ConversationState, action: str) -> bool:
    return current in _ALLOWED[action]


def transition(current: ConversationState, action: str) -> ConversationState:
    """The state after ``action``; raises :class:`InvalidTransition` when not allowed."""
    if not allowed(current, action):
        raise InvalidTransition(current, action)
    return _TARGET.get(action, current)
