"""US holidays most practices close for, computed (no calendar download on a closed network)."""

from __future__ import annotations

import datetime as dt


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    next_month = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = next_month - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    """A holiday on Saturday is observed the Friday before, on Sunday the Monday after."""
    if day.weekday() == 5:
        return day - dt.timedelta(days=1)
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


def practice_holidays(year: int) -> list[tuple[dt.date, str]]:
    monday, thursday = 0, 3
    return [
        (_observed(dt.date(year, 1, 1)), "New Year's Day"),
        (_last_weekday(year, 5, monday), "Memorial Day"),
        (_observed(dt.date(year, 7, 4)), "Independence Day"),
        (_nth_weekday(year, 9, monday, 1), "Labor Day"),
        (_nth_weekday(year, 11, thursday, 4), "Thanksgiving Day"),
        (_observed(dt.date(year, 12, 25)), "Christmas Day"),
    ]
