"""Logging through structlog: JSON lines off a terminal, readable lines on one.

Never log message text or addresses: log events carry ids (conversation, staff,
connection) and codes only. A last processor drops keys that must never appear.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

#: Keys that would carry personal data; dropped from every event, whoever adds them.
FORBIDDEN_KEYS = frozenset(
    {
        "text",
        "message_text",
        "nickname",
        "ip",
        "remote",
        "address",
        "peer",
        "password",
        "token",
        "comment",
        "note",
    }
)


def drop_personal_data(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in FORBIDDEN_KEYS.intersection(event):
        del event[key]
    return event


#: Anything that looks like an IPv4 address (also inside IPv6), or an IPv6 address with
#: ``::`` or all eight groups. Scrubbed from every string a log line carries.
_ADDRESS = re.compile(
    r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
    r"|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])"
    r"|(?<![\w:])(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})?::"
    r"(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})?(?![\w:])"
)
_PLACEHOLDER = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdrifxX]")


def scrub_addresses(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace whatever looks like an IP address in string values (a traceback, a library's
    message) with ``[address]``: no address reaches the log, whoever wrote the line."""
    for key, value in event.items():
        if isinstance(value, str) and key != "timestamp":
            event[key] = _ADDRESS.sub("[address]", value)
    return event


def foreign_event(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A stdlib record (aiohttp, asyncio, redis) keeps its message template only: its
    arguments are never rendered (aiohttp passes the peer's address as one)."""
    event["event"] = _PLACEHOLDER.sub("-", str(event.get("event", "")))
    return event


def configure_logging(level: str = "info", json_lines: bool | None = None) -> None:
    """structlog for our own events, and every stdlib logger (aiohttp.*, asyncio, redis)
    through the same processors, so every line is JSON off a terminal."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_personal_data,
            structlog.processors.format_exc_info,
            scrub_addresses,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                foreign_event,
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                drop_personal_data,
                structlog.processors.format_exc_info,
                scrub_addresses,
                renderer,
            ],
            use_get_message=False,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # aiohttp's access log would write client addresses: keep it off.
    logging.getLogger("aiohttp.access").disabled = True
