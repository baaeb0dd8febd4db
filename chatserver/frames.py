"""Typed client frames, their validation, and the server frames built from values.

Client frames arrive as dicts (see :mod:`chatserver.codec`); :func:`parse_visitor` and
:func:`parse_staff` turn them into frozen dataclasses or raise :class:`FrameError` with the
contract's code (``unknown_type``, ``invalid``, ``too_long``). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from chatserver.errors import ErrorCode, FrameError
from queueing.policy import PRIORITY_MAX, PRIORITY_MIN

REF_MAX = 64
ID_MAX = 64
NICKNAME_FIELD_MAX = 200
SHORT_FIELD_MAX = 64
NOTE_MAX = 2000
COMMENT_MAX = 1000
CAPACITY_MAX = 10
STAFF_STATES = ("available", "paused", "offline")
LANGS = ("nl", "en")

T = TypeVar("T")


def _get(
    obj: Mapping[str, Any],
    name: str,
    kind: type[T],
    *,
    required: bool = False,
    max_len: int | None = None,
) -> T | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise FrameError(ErrorCode.INVALID, f"field '{name}' is missing")
        return None
    # bool is an int in Python; never accept one for the other.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FrameError(ErrorCode.INVALID, f"field '{name}' must be {kind.__name__}")
    if max_len is not None and isinstance(value, str) and len(value) > max_len:
        raise FrameError(ErrorCode.INVALID, f"field '{name}' is longer than {max_len}")
    return value


def _req(obj: Mapping[str, Any], name: str, kind: type[T], max_len: int | None = None) -> T:
    value = _get(obj, name, kind, required=True, max_len=max_len)
    assert value is not None
    return value


def _text(obj: Mapping[str, Any], limit: int) -> str:
    text = _req(obj, "text", str)
    if len(text) > limit:
        raise FrameError(ErrorCode.TOO_LONG, f"text is longer than {limit} characters")
    if not text.strip():
        raise FrameError(ErrorCode.INVALID, "text is empty")
    return text


def frame_ref(obj: Mapping[str, Any]) -> str | None:
    """The frame's ``ref`` when it is a usable one, for echoing in errors."""
    ref = obj.get("ref")
    return ref if isinstance(ref, str) and len(ref) <= REF_MAX else None


def _ref(obj: Mapping[str, Any]) -> str | None:
    return _get(obj, "ref", str, max_len=REF_MAX)


# --- visitor frames -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    nickname: str | None
    topic: str | None
    lang: str
    entry: str | None
    resume: str | None
    last_seq: int
    ref: str | None = None
    #: The resume token of this browser's last chat, sent after a block (1008).
    previous_token: str | None = None


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    ref: str | None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Typing:
    active: bool
    conversation_id: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    ref: str | None = None
    #: ``forget``: after the end, delete the conversation now (not after retention).
    forget: bool = False


@dataclass(frozen=True, slots=True)
class Survey:
    rating: int
    understood: bool | None
    comment: str | None
    ref: str | None = None


def _hello(obj: Mapping[str, Any], limit: int) -> Hello:
    lang = _get(obj, "lang", str) or "nl"
    if lang not in LANGS:
        raise FrameError(ErrorCode.INVALID, "field 'lang' must be 'nl' or 'en'")
    resume = _get(obj, "resume", str, max_len=128)
    nickname = _get(obj, "nickname", str, max_len=NICKNAME_FIELD_MAX)
    if nickname is None and resume is None:
        raise FrameError(ErrorCode.INVALID, "field 'nickname' is missing")
    last_seq = _get(obj, "last_seq", int) or 0
    if last_seq < 0:
        raise FrameError(ErrorCode.INVALID, "field 'last_seq' must be 0 or more")
    return Hello(
        nickname=nickname,
        topic=_get(obj, "topic", str, max_len=SHORT_FIELD_MAX),
        lang=lang,
        entry=_get(obj, "entry", str, max_len=SHORT_FIELD_MAX),
        resume=resume,
        last_seq=last_seq,
        ref=_ref(obj),
        previous_token=_get(obj, "previous_token", str, max_len=128),
    )


def _visitor_say(obj: Mapping[str, Any], limit: int) -> Say:
    return Say(text=_text(obj, limit), ref=_ref(obj))


def _visitor_typing(obj: Mapping[str, Any], limit: int) -> Typing:
    return Typing(active=_req(obj, "active", bool), ref=_ref(obj))


def _leave(obj: Mapping[str, Any], limit: int) -> Leave:
    return Leave(ref=_ref(obj), forget=obj["type"] == "forget")


def _survey(obj: Mapping[str, Any], limit: int) -> Survey:
    rating = _req(obj, "rating", int)
    if not 1 <= rating <= 5:
        raise FrameError(ErrorCode.INVALID, "field 'rating' must be 1 to 5")
    return Survey(
        rating=rating,
        understood=_get(obj, "understood", bool),
        comment=_get(obj, "comment", str, max_len=COMMENT_MAX),
        ref=_ref(obj),
    )


VisitorFrame = Hello | Say | Typing | Leave | Survey

_VISITOR: dict[str, Callable[[Mapping[str, Any], int], VisitorFrame]] = {
    "hello": _hello,
    "say": _visitor_say,
    "typing": _visitor_typing,
    "leave": _leave,
    "survey": _survey,
    "forget": _leave,
}


def parse_visitor(obj: Mapping[str, Any], text_limit: int) -> VisitorFrame:
    parser = _VISITOR.get(obj["type"])
    if parser is None:
        raise FrameError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {obj['type']!r:.40}")
    return parser(obj, text_limit)


# --- staff frames -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Status:
    state: str
    capacity: int | None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Wrapup:
    topics: tuple[str, ...]
    note: str | None


@dataclass(frozen=True, slots=True)
class End:
    conversation_id: str
    wrapup: Wrapup | None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    conversation_id: str
    to: str | None
    note: str | None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationFrame:
    """A staff frame that names only a conversation: watch, unwatch, help, join, takeover."""

    type: str
    conversation_id: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Prioritise:
    conversation_id: str
    priority: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class TraineeFrame:
    """``watch_trainee`` / ``unwatch_trainee``: follow every conversation of a trainee."""

    type: str
    staff_id: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Overview:
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Whisper:
    conversation_id: str
    text: str
    ref: str | None = None


def _conv(obj: Mapping[str, Any]) -> str:
    return _req(obj, "conversation_id", str, max_len=ID_MAX)


def _status(obj: Mapping[str, Any], limit: int) -> Status:
    state = _req(obj, "state", str)
    if state not in STAFF_STATES:
        raise FrameError(ErrorCode.INVALID, "field 'state' must be available, paused or offline")
    capacity = _get(obj, "capacity", int)
    if capacity is not None and not 1 <= capacity <= CAPACITY_MAX:
        raise FrameError(ErrorCode.INVALID, f"field 'capacity' must be 1 to {CAPACITY_MAX}")
    return Status(state=state, capacity=capacity, ref=_ref(obj))


def _staff_say(obj: Mapping[str, Any], limit: int) -> Say:
    return Say(text=_text(obj, limit), ref=_ref(obj), conversation_id=_conv(obj))


def _staff_typing(obj: Mapping[str, Any], limit: int) -> Typing:
    return Typing(active=_req(obj, "active", bool), conversation_id=_conv(obj), ref=_ref(obj))


def _wrapup(obj: Mapping[str, Any]) -> Wrapup | None:
    raw = _get(obj, "wrapup", dict)
    if raw is None:
        return None
    topics = raw.get("topics", [])
    if (
        not isinstance(topics, list)
        or len(topics) > 20
        or not all(isinstance(t, str) and 0 < len(t) <= SHORT_FIELD_MAX for t in topics)
    ):
        raise FrameError(ErrorCode.INVALID, "field 'wrapup.topics' must be a list of short strings")
    return Wrapup(topics=tuple(topics), note=_get(raw, "note", str, max_len=NOTE_MAX))


def _end(obj: Mapping[str, Any], limit: int) -> End:
    return End(conversation_id=_conv(obj), wrapup=_wrapup(obj), ref=_ref(obj))


def _transfer(obj: Mapping[str, Any], limit: int) -> Transfer:
    return Transfer(
        conversation_id=_conv(obj),
        to=_get(obj, "to", str, max_len=ID_MAX),
        note=_get(obj, "note", str, max_len=NOTE_MAX),
        ref=_ref(obj),
    )


def _conversation_frame(obj: Mapping[str, Any], limit: int) -> ConversationFrame:
    return ConversationFrame(type=obj["type"], conversation_id=_conv(obj), ref=_ref(obj))


def _overview(obj: Mapping[str, Any], limit: int) -> Overview:
    return Overview(ref=_ref(obj))


def _whisper(obj: Mapping[str, Any], limit: int) -> Whisper:
    return Whisper(conversation_id=_conv(obj), text=_text(obj, limit), ref=_ref(obj))


def _prioritise(obj: Mapping[str, Any], limit: int) -> Prioritise:
    priority = _req(obj, "priority", int)
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise FrameError(
            ErrorCode.INVALID, f"field 'priority' must be {PRIORITY_MIN} to {PRIORITY_MAX}"
        )
    return Prioritise(conversation_id=_conv(obj), priority=priority, ref=_ref(obj))


def _trainee(obj: Mapping[str, Any], limit: int) -> TraineeFrame:
    return TraineeFrame(
        type=obj["type"], staff_id=_req(obj, "staff_id", str, max_len=ID_MAX), ref=_ref(obj)
    )


StaffFrame = (
    Status
    | Say
    | Typing
    | End
    | Transfer
    | ConversationFrame
    | Overview
    | Whisper
    | Prioritise
    | TraineeFrame
)

_STAFF: dict[str, Callable[[Mapping[str, Any], int], StaffFrame]] = {
    "status": _status,
    "say": _staff_say,
    "typing": _staff_typing,
    "end": _end,
    "transfer": _transfer,
    "overview": _overview,
    "watch": _conversation_frame,
    "unwatch": _conversation_frame,
    "whisper": _whisper,
    "join": _conversation_frame,
    "takeover": _conversation_frame,
    "help": _conversation_frame,
    "block": _conversation_frame,
    "prioritise": _prioritise,
    "watch_trainee": _trainee,
    "unwatch_trainee": _trainee,
}


def parse_staff(obj: Mapping[str, Any], text_limit: int) -> StaffFrame:
    parser = _STAFF.get(obj["type"])
    if parser is None:
        raise FrameError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {obj['type']!r:.40}")
    return parser(obj, text_limit)


# --- server frames ------------------------------------------------------------------


def error_frame(code: ErrorCode, message: str, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code.value, "message": message}
    if ref is not None:
        frame["ref"] = ref
    return frame


def ack_frame(ref: str | None, seq: int, conversation_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "ack", "ref": ref, "seq": seq}
    if conversation_id is not None:
        frame["conversation_id"] = conversation_id
    return frame
