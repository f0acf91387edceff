"""Birthdays and work anniversaries of office staff in the coming weeks, with what matters about them and how
often they have come to an activity."""

from __future__ import annotations

import datetime as dt

import pytest

from refloop.directory import services as directory_services
from refloop.directory.models import ContactPreference, StaffContact
from refloop.outreach.models import ActivityKind
from refloop.outreach.selectors import staff_occasions
from tests.directory.factories import practice
from tests.outreach.factories import activity

pytestmark = pytest.mark.django_db


def _staff(office, first, **fields):
    return directory_services.staff_contact_save(contact=StaffContact(practice=office, first_name=first, **fields))


def test_occasions_across_the_new_year_with_notes_and_attendance(users):
    mine = practice(liaison=users["liaison"])
    theirs = practice(name="Someone Else's Office")
    dana = _staff(
        mine,
        "Dana",
        birthday_month=1,
        birthday_day=3,
        interests="oat-milk latte",
        contact_preference=ContactPreference.TEXT,
    )
    lee = _staff(mine, "Lee", work_anniversary=dt.date(2016, 12, 28), notes="Runs the referral desk")
    _staff(mine, "Later", birthday_month=2, birthday_day=10)
    _staff(theirs, "Not mine", birthday_month=12, birthday_day=30)
    activity(by=users["liaison"], kind=ActivityKind.LUNCH, practice=mine, staff=[dana], date=dt.date(2024, 5, 1))

    found = staff_occasions(liaison=users["liaison"], start=dt.date(2024, 12, 23), days=21)
    assert [(o.on, o.contact, o.kind, o.years) for o in found] == [
        (dt.date(2024, 12, 28), lee, "work anniversary", 8),
        (dt.date(2025, 1, 3), dana, "birthday", None),
    ]
    assert found[1].attended == 1 and found[0].attended == 0
    assert found[0].label == "8 years at the office"


def test_a_29_february_birthday_is_celebrated_on_the_28th_in_other_years(users):
    office = practice(liaison=users["liaison"])
    leap = _staff(office, "Leap", birthday_month=2, birthday_day=29)
    [occasion] = staff_occasions(liaison=users["liaison"], start=dt.date(2025, 2, 20), days=14)
    assert (occasion.contact, occasion.on) == (leap, dt.date(2025, 2, 28))
    [occasion] = staff_occasions(liaison=users["liaison"], start=dt.date(2028, 2, 20), days=14)
    assert occasion.on == dt.date(2028, 2, 29)


def test_the_week_page_shows_the_occasion_with_interests_and_preference(users, client_as):
    office = practice(name="Powell Pediatrics", liaison=users["liaison"])
    today = dt.date.today()
    soon = today + dt.timedelta(days=4)
    _staff(
        office,
        "Marisol",
        last_name="Reyes",
        birthday_month=soon.month,
        birthday_day=soon.day,
        interests="training for the Columbus marathon",
        contact_preference=ContactPreference.EMAIL,
    )
    page = client_as("liaison").get("/outreach/week/").content.decode()
    assert "Marisol Reyes" in page and "training for the Columbus marathon" in page and "prefers email" in page
