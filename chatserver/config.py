"""Settings: every key has a default, so no file is needed; ``--config FILE`` reads TOML.

A table or key the service does not know is refused at startup with a clear message,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from chatserver.errors import ConfigError


@dataclass(frozen=True)
class ServerSettings:
    allowed_origins: tuple[str, ...] = ()
    key_prefix: str = "chat"
    #: Tell a counsellor when a supervisor starts watching ("Anna is watching").
    tell_counsellor_when_watched: bool = True
    quick_exit_url: str = "https://www.google.com/search?q=weer"
    #: Behind a reverse proxy: take the client address from X-Forwarded-For (last hop).
    trust_forwarded_for: bool = False
    shutdown_grace_seconds: float = 5.0
    #: Entries (``hello.entry``, the referring site) counted by name in the statistics
    #: (labels of ``[a-z0-9-]{1,40}``); anything else, and every entry while the list is
    #: empty, is counted as "other".
    allowed_entries: tuple[str, ...] = ()


@dataclass(frozen=True)
class LimitSettings:
    text_max_chars: int = 2000
    frame_max_bytes: int = 65536
    visitor_rate: float = 5.0
    visitor_burst: int = 10
    staff_rate: float = 20.0
    staff_burst: int = 40
    connections_per_address: int = 50
    #: Frames refused by the rate limit within 10 s before the socket is closed with 4429.
    flood_refusals: int = 50
    heartbeat_seconds: float = 20.0
    idle_timeout_seconds: float = 1800.0
    #: Compression leaks secrets (CRIME-like) and invites decompression bombs: off by
    #: default; when on, frames are still bounded by frame_max_bytes after inflating.
    permessage_deflate: bool = False
    #: Frames queued for one slow reader before it is dropped (close 1008).
    send_queue_max: int = 1000
    #: How long a block keeps a browser (resume token) and a network out (at most 24 h
    #: for the network: the address hash is kept no longer).
    block_hours: float = 24.0
    #: Failed logins per username (or per address) in 15 minutes before a lockout.
    login_failures: int = 5
    login_failures_per_address: int = 20


@dataclass(frozen=True)
class QueueSettings:
    max_waiting: int = 500
    skill_wait_seconds: float = 120.0
    wrapup_seconds: float = 0.0


@dataclass(frozen=True)
class GraceSettings:
    visitor_seconds: float = 120.0
    counsellor_seconds: float = 60.0
    #: A process that sent no heartbeat this long is dead; another takes over its sockets.
    node_dead_seconds: float = 10.0


#: What a Redis crash can lose: ``always`` nothing acknowledged, ``everysec`` up to about
#: a second, ``no`` whatever the operating system had not yet written.
APPENDFSYNC_CHOICES = ("always", "everysec", "no")


@dataclass(frozen=True)
class RedisSettings:
    """The embedded private Redis (ignored with ``--redis-url``: configure that Redis itself)."""

    appendfsync: str = "everysec"


@dataclass(frozen=True)
class RetentionSettings:
    transcripts_days: float = 30.0
    #: Anonymous facts (times, counts, topic, rating) for statistics.
    statistics_days: float = 730.0
    #: How often the purge runs (once per interval across all processes).
    purge_interval_seconds: float = 3600.0


@dataclass(frozen=True)
class AuthSettings:
    session_idle_minutes: float = 30.0
    session_absolute_hours: float = 9.0
    #: How often an open staff socket re-reads its session and account (without refreshing).
    session_check_seconds: float = 60.0
    #: Roles that must log in with a TOTP second factor (an authenticator app).
    totp_roles: tuple[str, ...] = ("supervisor", "admin")


@dataclass(frozen=True)
class TextSettings:
    emergency_nl: str = (
        "Ben je in direct gevaar? Bel 112. Denk je aan zelfmoord? Bel of chat gratis en "
        "anoniem met 113 Zelfmoordpreventie: 0800-0113 (dag en nacht)."
    )
    emergency_en: str = (
        "In immediate danger? Call 112. Thinking about suicide? Call or chat with 113 "
        "Suicide Prevention for free and anonymously: 0800-0113 (day and night)."
    )
    closed_nl: str = (
        "De chat is nu gesloten. Heb je nu hulp nodig? Bel 113 (0800-0113) of in nood 112."
    )
    closed_en: str = (
        "The chat is closed right now. Need help now? Call 113 (0800-0113), or 112 in an emergency."
    )
    #: When the queue is full (``queue.max_waiting``): the chat is open, only busy.
    queue_full_nl: str = (
        "Het is nu erg druk: er kan niemand meer bij in de wachtrij. Probeer het over een "
        "tijdje opnieuw. Heb je nu hulp nodig? Bel 113 (0800-0113) of in nood 112."
    )
    queue_full_en: str = (
        "It is very busy right now: the queue is full. Please try again in a while. Need help "
        "now? Call 113 (0800-0113), or 112 in an emergency."
    )


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    grace: GraceSettings = field(default_factory=GraceSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    texts: TextSettings = field(default_factory=TextSettings)
    #: The contract's ``[hours]`` table as read; ``None`` means always open.
    hours: dict[str, Any] | None = None
    #: Configured topics (``[[topics]]`` with id, nl, en, crisis); empty means the defaults.
    topics: tuple[dict[str, Any], ...] = ()


_SECTIONS = {
    "server": ServerSettings,
    "limits": LimitSettings,
    "queue": QueueSettings,
    "grace": GraceSettings,
    "retention": RetentionSettings,
    "redis": RedisSettings,
    "auth": AuthSettings,
    "texts": TextSettings,
}


def _coerce(section: str, name: str, default: Any, value: Any) -> Any:
    where = f"[{section}] {name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    if isinstance(default, int | float) and not isinstance(value, bool):
        if not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number")
        if value < 0:
            raise ConfigError(f"{where} must not be negative")
        return type(default)(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return tuple(value)
    raise ConfigError(f"{where} has a value of the wrong kind")


def _section(name: str, cls: type[Any], table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"[{name}] has unknown keys: {', '.join(unknown)}")
    changes = {k: _coerce(name, k, getattr(defaults, k), v) for k, v in table.items()}
    return replace(defaults, **changes)


def settings_from_dict(data: dict[str, Any]) -> Settings:
    unknown = sorted(set(data) - set(_SECTIONS) - {"hours", "topics"})
    if unknown:
        raise ConfigError(f"unknown tables: {', '.join(unknown)}")
    parts = {
        name: _section(name, cls, data[name]) for name, cls in _SECTIONS.items() if name in data
    }
    hours = data.get("hours")
    if hours is not None and not isinstance(hours, dict):
        raise ConfigError("[hours] must be a table")
    topics = data.get("topics", [])
    if not isinstance(topics, list) or not all(
        isinstance(t, dict) and isinstance(t.get("id"), str) for t in topics
    ):
        raise ConfigError("[[topics]] entries need at least a string 'id'")
    from queueing.hours import HoursError, OpeningHours
    from queueing.topics import topics_for

    try:
        OpeningHours.from_table(hours)
        topics_for(topics)
    except (HoursError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    redis = parts.get("redis")
    if redis is not None and redis.appendfsync not in APPENDFSYNC_CHOICES:
        raise ConfigError(f"[redis] appendfsync must be one of {', '.join(APPENDFSYNC_CHOICES)}")
    return Settings(**parts, hours=hours, topics=tuple(topics))


def load_settings(path: str | Path | None) -> Settings:
    if path is None:
        return Settings()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return settings_from_dict(data)
