"""Logging through structlog: JSON lines off a terminal, readable lines on one.

Never log message text or addresses: log events carry ids (conversation, staff,
connection) and codes only. A last processor drops keys that must never appear.
"""

from __future__ import annotations

import logging
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


def configure_logging(level: str = "info", json_lines: bool | None = None) -> None:
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_personal_data,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # aiohttp's access log would write client addresses: keep it off.
    logging.getLogger("aiohttp.access").disabled = True
