"""Opening hours: weekly periods in a time zone, closed dates, past midnight, DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from queueing.hours import HoursError, OpeningHours, helped_before_closing

TABLE = {
    "timezone": "Europe/Amsterdam",
    "mon": ["14:00-21:00"],
    "tue": ["09:00-12:00", "14:00-24:00"],
    "fri": ["22:00-02:00"],
    "closed_dates": ["2026-12-28"],
}
HOURS = OpeningHours.from_table(TABLE)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_no_table_is_always_open() -> None:
    """Without [hours] the service is always open and has no opening time."""
    always = OpeningHours.from_table(None)
    assert always.is_open(utc(2026, 11, 24, 3)) and always.opens_at(utc(2026, 11, 24)) is None


def test_open_and_closed_in_local_time() -> None:
    """Monday 14:00-21:00 Amsterdam is 13:00-20:00 UTC in winter."""
    assert HOURS.is_open(utc(2026, 11, 23, 13, 0))
    assert not HOURS.is_open(utc(2026, 11, 23, 12, 59))
    assert not HOURS.is_open(utc(2026, 11, 23, 20, 0))
    assert HOURS.closes_at(utc(2026, 11, 23, 15)) == datetime.fromisoformat(
        "2026-11-23T21:00:00+01:00"
    )


def test_two_periods_and_until_midnight() -> None:
    """Tuesday has a gap at noon and runs until 24:00."""
    assert not HOURS.is_open(utc(2026, 11, 24, 12, 0))
    assert HOURS.is_open(utc(2026, 11, 24, 22, 59))
    assert HOURS.opens_at(utc(2026, 11, 24, 11, 30)).isoformat() == "2026-11-24T14:00:00+01:00"


def test_past_midnight() -> None:
    """Friday 22:00-02:00 is still open at 01:30 on Saturday."""
    assert HOURS.is_open(utc(2026, 11, 28, 0, 30))
    assert not HOURS.is_open(utc(2026, 11, 28, 1, 0))


def test_closed_dates_and_next_opening() -> None:
    """A closed Monday is skipped: the next opening is Tuesday morning."""
    assert not HOURS.is_open(utc(2026, 12, 28, 15))
    assert HOURS.opens_at(utc(2026, 12, 28, 15)).isoformat() == "2026-12-29T09:00:00+01:00"


def test_daylight_saving() -> None:
    """On the last Sunday of March wall-clock hours stay wall-clock hours."""
    sundays = OpeningHours.from_table({"timezone": "Europe/Amsterdam", "sun": ["14:00-21:00"]})
    assert sundays.is_open(utc(2026, 3, 29, 12, 0))  # 14:00 CEST
    assert not sundays.is_open(utc(2026, 3, 29, 11, 59))
    assert sundays.is_open(utc(2026, 10, 25, 13, 0))  # 14:00 CET


@pytest.mark.parametrize(
    "table",
    [
        {"timezone": "Mars/Olympus"},
        {"mon": ["14-21"]},
        {"mon": ["25:00-26:00"]},
        {"mon": ["10:00-10:00"]},
        {"closed_dates": ["christmas"]},
        {"monday": []},
    ],
)
def test_bad_tables_are_refused(table: dict[str, object]) -> None:
    """A wrong [hours] table stops startup with a message saying where."""
    with pytest.raises(HoursError):
        OpeningHours.from_table(table)


def test_helped_before_closing() -> None:
    """With an estimate past closing time the visitor is told honestly."""
    assert helped_before_closing(1000.0, 2000.0, 500)
    assert not helped_before_closing(1000.0, 2000.0, 1500)
    assert helped_before_closing(1000.0, None, 1500) and helped_before_closing(1.0, 2.0, None)
