"""Opening hours: a weekly schedule in a time zone, plus closed dates. Pure.

Built from the contract's ``[hours]`` table::

    timezone = "Europe/Amsterdam"
    mon = ["14:00-21:00"]        # tue ... sun alike; [] or absent = closed that day
    closed_dates = ["2026-12-25"]

No table means always open. A period may end at ``24:00``; a period whose end is before its
start (``"22:00-02:00"``) runs past midnight into the next day. Times are wall-clock times
in the zone, so daylight-saving changes are handled by ``zoneinfo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOOKAHEAD_DAYS = 14


class HoursError(ValueError):
    """The ``[hours]`` table is wrong; the message says where."""


def _clock(text: str, where: str) -> int:
    try:
        hh, mm = text.split(":")
        minutes = int(hh) * 60 + int(mm)
    except ValueError:
        raise HoursError(f"{where}: {text!r} is not HH:MM") from None
    if not 0 <= minutes <= 24 * 60 or int(mm) >= 60:
        raise HoursError(f"{where}: {text!r} is not a time of day")
    return minutes


@dataclass(frozen=True)
class OpeningHours:
    zone: ZoneInfo | None  # None: always open
    week: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7  # minutes from midnight
    closed: frozenset[date] = frozenset()

    @classmethod
    def from_table(cls, table: dict[str, Any] | None) -> OpeningHours:
        if table is None:
            return cls(None)
        try:
            zone = ZoneInfo(str(table.get("timezone", "Europe/Amsterdam")))
        except (ZoneInfoNotFoundError, ValueError):
            raise HoursError(f"[hours] timezone {table.get('timezone')!r} is unknown") from None
        unknown = set(table) - {"timezone", "closed_dates", *DAYS}
        if unknown:
            raise HoursError(f"[hours] has unknown keys: {', '.join(sorted(unknown))}")
        week = []
        for day in DAYS:
            periods = []
            for item in table.get(day, []):
                start, sep, end = str(item).partition("-")
                if not sep:
                    raise HoursError(f"[hours] {day}: {item!r} is not HH:MM-HH:MM")
                a, b = _clock(start, f"[hours] {day}"), _clock(end, f"[hours] {day}")
                if a == b:
                    raise HoursError(f"[hours] {day}: {item!r} is empty")
                periods.append((a, b))
            week.append(tuple(periods))
        try:
            closed = frozenset(date.fromisoformat(d) for d in table.get("closed_dates", []))
        except ValueError as exc:
            raise HoursError(f"[hours] closed_dates: {exc}") from None
        return cls(zone, tuple(week), closed)

    def _periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """Open periods that start on ``day`` (local, aware datetimes)."""
        assert self.zone is not None
        if day in self.closed:
            return []
        out = []
        for a, b in self.week[day.weekday()]:
            start = datetime.combine(day, time(0), self.zone) + timedelta(minutes=a)
            end_day = day if b > a else day + timedelta(days=1)
            end = datetime.combine(end_day, time(0), self.zone) + timedelta(minutes=b)
            start = start.replace(tzinfo=self.zone)
            out.append((_wall(start, self.zone), _wall(end, self.zone)))
        return out

    def current_period(self, now: datetime) -> tuple[datetime, datetime] | None:
        if self.zone is None:
            return None
        local = now.astimezone(self.zone)
        for offset in (-1, 0):
            for start, end in self._periods(local.date() + timedelta(days=offset)):
                if start <= local < end:
                    return start, end
        return None

    def is_open(self, now: datetime) -> bool:
        return self.zone is None or self.current_period(now) is not None

    def opens_at(self, now: datetime) -> datetime | None:
        """The next opening after ``now`` (None when always open or none within 14 days)."""
        if self.zone is None:
            return None
        local = now.astimezone(self.zone)
        for offset in range(LOOKAHEAD_DAYS + 1):
            for start, _ in sorted(self._periods(local.date() + timedelta(days=offset))):
                if start > local:
                    return start
        return None

    def closes_at(self, now: datetime) -> datetime | None:
        period = self.current_period(now)
        return period[1] if period else None


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """The wall-clock time in the zone (folds and gaps of DST resolved by zoneinfo)."""
    return datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute, tzinfo=zone)


def helped_before_closing(now: float, closes_at: float | None, eta_seconds: int | None) -> bool:
    """Whether a visitor with this estimate will likely be helped before closing time."""
    if closes_at is None or eta_seconds is None:
        return True
    return now + eta_seconds < closes_at
