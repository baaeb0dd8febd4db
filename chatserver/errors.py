"""Error codes, close codes and the project's exception tree, as data in one place.

Exception tree::

    ChatError                      root of every error this project raises on purpose
    ├── FrameError                 a client frame the server answers with an error frame
    │   (code: ErrorCode; the connection survives)
    ├── StoreUnavailable           Redis cannot be reached right now (→ ErrorCode.UNAVAILABLE)
    ├── AuthError                  staff authentication failed (→ HTTP 401 / close 4401)
    └── ConfigError                a configuration file or value is wrong (startup refuses)
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    BAD_FRAME = "bad_frame"
    UNKNOWN_TYPE = "unknown_type"
    INVALID = "invalid"
    TOO_LONG = "too_long"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    NICKNAME_INVALID = "nickname_invalid"
    NICKNAME_TAKEN = "nickname_taken"
    RESUME_INVALID = "resume_invalid"
    UNAVAILABLE = "unavailable"


ERROR_EXPLANATIONS: dict[ErrorCode, str] = {
    ErrorCode.BAD_FRAME: "not valid JSON/msgpack, not an object, or no string type",
    ErrorCode.UNKNOWN_TYPE: "a type this endpoint does not know",
    ErrorCode.INVALID: "a field is missing, of the wrong kind, or out of range",
    ErrorCode.TOO_LONG: "a text over the limit; nothing of it is delivered",
    ErrorCode.RATE_LIMITED: "over the rate limit; the frame is dropped",
    ErrorCode.CONFLICT: "the frame does not fit the current state",
    ErrorCode.NOT_FOUND: "no such conversation, or not one this connection may touch",
    ErrorCode.FORBIDDEN: "the role may not do this",
    ErrorCode.NICKNAME_INVALID: "hello refused: the nickname breaks a rule",
    ErrorCode.NICKNAME_TAKEN: "hello refused: the nickname is in use right now",
    ErrorCode.RESUME_INVALID: "the resume token is unknown or expired",
    ErrorCode.UNAVAILABLE: "the backend (Redis) cannot be reached right now; retry",
}


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    TRY_AGAIN = 1013
    UNAUTHORISED = 4401
    IDLE_TIMEOUT = 4408
    TOO_MANY = 4429


CLOSE_EXPLANATIONS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "normal closure",
    CloseCode.GOING_AWAY: "the server is shutting down",
    CloseCode.POLICY: "policy: blocked visitor (do not reconnect)",
    CloseCode.TOO_BIG: "frame over the frame limit",
    CloseCode.INTERNAL: "internal error",
    CloseCode.TRY_AGAIN: "try again later: a reader too slow to keep up, or the store is "
    "unreachable; reconnect and resume",
    CloseCode.UNAUTHORISED: "staff socket without valid authentication",
    CloseCode.IDLE_TIMEOUT: "idle timeout",
    CloseCode.TOO_MANY: "too many connections or sustained flooding",
}


class ChatError(Exception):
    """Root of the project's own errors."""


class FrameError(ChatError):
    """A client frame that gets an error frame back; the connection goes on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StoreUnavailable(ChatError):
    """Redis cannot be reached right now."""


class AuthError(ChatError):
    """Staff authentication failed."""


class ConfigError(ChatError):
    """A configuration file or value is wrong."""
