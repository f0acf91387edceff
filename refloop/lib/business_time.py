"""Business days and hours: due times that skip weekends, practice holidays and closed hours.

A referral received Friday evening is due for first contact by Monday's close, not Saturday's; one received
the day before Thanksgiving skips the holiday. All arithmetic is in the practice's local time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BusinessCalendar:
    tz: ZoneInfo
    holidays: Collection[dt.date] = frozenset()
    opens: dt.time = dt.time(8, 0)
    closes: dt.time = dt.time(17, 0)

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def next_business_day(self, day: dt.date) -> dt.date:
        day += dt.timedelta(days=1)
        while not self.is_business_day(day):
            day += dt.timedelta(days=1)
        return day

    def _local(self, moment: dt.datetime) -> dt.datetime:
        if moment.tzinfo is None:
            raise ValueError("business time needs an aware datetime")
        return moment.astimezone(self.tz)

    def _close_of(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, self.closes, tzinfo=self.tz)

    def add_business_days(self, moment: dt.datetime, days: int) -> dt.datetime:
        """Close of business `days` business days after `moment`'s business day.

        Zero days means the close of the same business day; arriving after close, on a weekend or on a holiday
        counts from the next business day.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        local = self._local(moment)
        day = local.date()
        if not self.is_business_day(day) or local.time() >= self.closes:
            day = self.next_business_day(day)
        for _ in range(days):
            day = self.next_business_day(day)
        return self._close_of(day)

    def add_business_hours(self, moment: dt.datetime, hours: float) -> dt.datetime:
        """`hours` of open time after `moment` (a stat referral at 4 pm with 2 hours is due 9 am next day)."""
        remaining = dt.timedelta(hours=hours)
        local = self._local(moment)
        day = local.date()
        start = local.time()
        while True:
            if self.is_business_day(day):
                open_at = dt.datetime.combine(day, max(start, self.opens), tzinfo=self.tz)
                close_at = self._close_of(day)
                if open_at < close_at:
                    available = close_at - open_at
                    if remaining <= available:
                        return open_at + remaining
                    remaining -= available
            day += dt.timedelta(days=1)
            start = self.opens

    def business_days_between(self, start: dt.date, end: dt.date) -> int:
        """Business days after `start` up to and including `end` (0 when end <= start)."""
        count, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            if self.is_business_day(day):
                count += 1
        return count
