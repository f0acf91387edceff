import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from refloop.lib.business_time import BusinessCalendar

NY = ZoneInfo("America/New_York")
THANKSGIVING = dt.date(2026, 11, 26)
CAL = BusinessCalendar(tz=NY, holidays={THANKSGIVING})


def at(y, m, d, h=10, minute=0):
    return dt.datetime(y, m, d, h, minute, tzinfo=NY)


def test_one_business_day_from_a_tuesday_is_wednesday_close():
    assert CAL.add_business_days(at(2026, 11, 17), 1) == at(2026, 11, 18, 17)


def test_a_friday_referral_is_due_monday_not_saturday():
    assert CAL.add_business_days(at(2026, 11, 20), 1) == at(2026, 11, 23, 17)


def test_a_saturday_referral_counts_from_monday():
    assert CAL.add_business_days(at(2026, 11, 21), 0) == at(2026, 11, 23, 17)
    assert CAL.add_business_days(at(2026, 11, 21), 1) == at(2026, 11, 24, 17)


def test_arriving_after_close_counts_from_the_next_business_day():
    assert CAL.add_business_days(at(2026, 11, 17, 18), 0) == at(2026, 11, 18, 17)


def test_the_holiday_is_skipped_like_a_weekend():
    # Wednesday before Thanksgiving + 1 business day: Thursday is the holiday, so Friday.
    assert CAL.add_business_days(at(2026, 11, 25), 1) == at(2026, 11, 27, 17)
    # Two business days from Wednesday: Friday, then Monday.
    assert CAL.add_business_days(at(2026, 11, 25), 2) == at(2026, 11, 30, 17)


def test_business_hours_roll_over_the_night_and_the_weekend():
    assert CAL.add_business_hours(at(2026, 11, 17, 9), 2) == at(2026, 11, 17, 11)
    assert CAL.add_business_hours(at(2026, 11, 17, 16), 2) == at(2026, 11, 18, 9)
    assert CAL.add_business_hours(at(2026, 11, 20, 16, 30), 2) == at(2026, 11, 23, 9, 30)
    assert CAL.add_business_hours(at(2026, 11, 25, 16), 2) == at(2026, 11, 27, 9)


def test_dst_change_keeps_the_close_at_local_five_pm():
    # 1 November 2026 is the end of daylight saving time in New York (a Sunday).
    due = CAL.add_business_days(at(2026, 10, 30), 1)
    assert due == at(2026, 11, 2, 17) and due.utcoffset() == dt.timedelta(hours=-5)


def test_business_days_between_counts_only_open_days():
    assert CAL.business_days_between(dt.date(2026, 11, 20), dt.date(2026, 11, 30)) == 5  # Mon-Wed, Fri, Mon


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        CAL.add_business_days(dt.datetime(2026, 11, 17, 10), 1)
