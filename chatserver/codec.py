"""The two subprotocols: JSON text frames and MessagePack binary frames.

One module turns frames (plain dicts on the wire side) into bytes and back. Decoding
failures become :class:`FrameError` with code ``bad_frame``. :class:`Outgoing` encodes a
server frame at most once per subprotocol, however many connections it goes to.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import msgpack

from chatserver.errors import ErrorCode, FrameError


class Subprotocol(StrEnum):
    JSON = "chat.v1.json"
    MSGPACK = "chat.v1.msgpack"


SUBPROTOCOLS: tuple[str, ...] = (Subprotocol.JSON.value, Subprotocol.MSGPACK.value)

_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def decode(data: str | bytes, protocol: Subprotocol) -> dict[str, Any]:
    """A client frame as a dict with a string ``type``; raises ``FrameError(bad_frame)``."""
    try:
        if protocol is Subprotocol.MSGPACK:
            if isinstance(data, str):
                raise ValueError("text frame on the msgpack subprotocol")
            obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
        else:
            if isinstance(data, bytes):
                data = data.decode("utf-8")
            obj = json.loads(data)
    except (
        ValueError,
        TypeError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
        UnicodeDecodeError,
    ) as exc:
        raise FrameError(
            ErrorCode.BAD_FRAME, f"cannot decode frame: {type(exc).__name__}"
        ) from None
    if not isinstance(obj, dict):
        raise FrameError(ErrorCode.BAD_FRAME, "a frame must be an object")
    if not isinstance(obj.get("type"), str):
        raise FrameError(ErrorCode.BAD_FRAME, "a frame needs a string field 'type'")
    return obj


def encode(frame: dict[str, Any], protocol: Subprotocol) -> str | bytes:
    if protocol is Subprotocol.MSGPACK:
        packed: bytes = msgpack.packb(frame, use_bin_type=True)
        return packed
    return _json_encoder.encode(frame)


class Outgoing:
    """A server frame, encoded lazily and at most once per subprotocol."""

    __slots__ = ("_json", "_msgpack", "frame")

    def __init__(self, frame: dict[str, Any]) -> None:
        self.frame = frame
        self._json: str | None = None
        self._msgpack: bytes | None = None

    def encoded(self, protocol: Subprotocol) -> str | bytes:
        if protocol is Subprotocol.MSGPACK:
            if self._msgpack is None:
                self._msgpack = msgpack.packb(self.frame, use_bin_type=True)
            return self._msgpack
        if self._json is None:
            self._json = _json_encoder.encode(self.frame)
        return self._json
