"""Nickname rules and friendly suggestions (pure logic, no I/O)."""

from nickname.rules import (
    MAX_LENGTH,
    MIN_LENGTH,
    NicknameError,
    nickname_key,
    normalise,
    taken_message,
    validate,
)
from nickname.suggest import suggest, suggestions

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "NicknameError",
    "nickname_key",
    "normalise",
    "suggest",
    "suggestions",
    "taken_message",
    "validate",
]
