"""Events between processes, published on one Redis channel.

The channel is only a doorbell: everything a client must not lose is stored first, and
a receiver that sees a gap in a conversation's ``seq`` reads the missing part from the
store. Two payload shapes:

* ``m|CONV|SEQ|CONN|ENTRY`` — a stored message, published by the Lua script that stored
  it (so publish order is seq order). ENTRY is the stored msgpack entry.
* ``e|`` + msgpack map — every other event, with ``k`` naming its kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack


@dataclass(frozen=True, slots=True)
class StoredMessage:
    seq: int
    sender: str  # visitor | counsellor | system
    author: str
    text: str
    ts: float
    #: Moderation marks for staff: "crisis", "abuse", "pii" (the text was redacted in store).
    flags: tuple[str, ...] = ()

    def frame(self, conversation_id: str) -> dict[str, Any]:
        frame = {
            "type": "message",
            "conversation_id": conversation_id,
            "seq": self.seq,
            "from": self.sender,
            "author": self.author,
            "text": self.text,
            "ts": self.ts,
        }
        if self.flags:
            frame["flags"] = list(self.flags)
        return frame


def pack_entry(
    sender: str, author: str, text: str, ts: float, flags: tuple[str, ...] = ()
) -> bytes:
    item: list[object] = [sender, author, text, ts]
    if flags:
        item.append(list(flags))
    packed: bytes = msgpack.packb(item, use_bin_type=True)
    return packed


def unpack_entry(seq: int, entry: bytes) -> StoredMessage:
    sender, author, text, ts, *rest = msgpack.unpackb(entry, raw=False)
    flags = tuple(rest[0]) if rest else ()
    return StoredMessage(
        seq=seq, sender=sender, author=author, text=text, ts=float(ts), flags=flags
    )


@dataclass(frozen=True, slots=True)
class MessageEvent:
    conversation_id: str
    conn_id: str
    message: StoredMessage


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    data: dict[str, Any]

    @property
    def conversation_id(self) -> str | None:
        value = self.data.get("c")
        return value if isinstance(value, str) else None


def event(event_kind: str, /, **data: Any) -> bytes:
    body: bytes = msgpack.packb({"k": event_kind, **data}, use_bin_type=True)
    return b"e|" + body


def crisis_alert_text(nickname: str, categories: Sequence[str]) -> str:
    """The text of a ``crisis`` alert, live (``service.crisis_signal``) and replayed."""
    text = f"Crisissignaal bij {nickname} / crisis signal"
    return f"{text} ({', '.join(categories)})" if categories else text


def help_alert_text(name: str) -> str:
    """The text of a ``help_requested`` alert, live (``StaffSession._on_help``) and replayed."""
    return f"{name} vraagt hulp / asks for help"


def decode_event(payload: bytes) -> MessageEvent | Event:
    if payload.startswith(b"m|"):
        _, conv, seq, conn, entry = payload.split(b"|", 4)
        seq_no = int(seq)
        return MessageEvent(conv.decode(), conn.decode(), unpack_entry(seq_no, entry))
    data = msgpack.unpackb(payload[2:], raw=False)
    return Event(kind=data.pop("k"), data=data)
