import datetime as dt

from refloop.lib.holidays import practice_holidays


def test_it_computes_the_2026_holidays():
    days = dict((name, day) for day, name in practice_holidays(2026))
    assert days["Memorial Day"] == dt.date(2026, 5, 25)
    assert days["Labor Day"] == dt.date(2026, 9, 7)
    assert days["Thanksgiving Day"] == dt.date(2026, 11, 26)
    # July 4th 2026 is a Saturday: observed on Friday the 3rd.
    assert days["Independence Day"] == dt.date(2026, 7, 3)


def test_a_sunday_holiday_is_observed_on_monday_and_a_saturday_one_on_friday():
    days_2022 = dict((name, day) for day, name in practice_holidays(2022))
    assert days_2022["Christmas Day"] == dt.date(2022, 12, 26)  # Sunday
    assert days_2022["New Year's Day"] == dt.date(2021, 12, 31)  # Saturday 1 Jan 2022
    days_2023 = dict((name, day) for day, name in practice_holidays(2023))
    assert days_2023["New Year's Day"] == dt.date(2023, 1, 2)  # Sunday
