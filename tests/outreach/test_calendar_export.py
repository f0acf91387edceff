"""Planned visits export as an iCalendar file that a real parser reads back."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
from django.utils import timezone

from refloop.outreach.ics import fold
from refloop.outreach.models import ActivityKind
from tests.directory.factories import practice
from tests.outreach.factories import activity

pytestmark = pytest.mark.django_db


def test_the_ics_export_parses_and_holds_each_planned_visit(users, client_as):
    liaison = users["liaison"]
    office = practice(name="Scioto Family Physicians; Dublin, OH")
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    timed = activity(
        by=liaison,
        kind=ActivityKind.LUNCH,
        practice=office,
        date=tomorrow,
        start_time=dt.time(11, 30),
        duration_minutes=45,
        purpose="Lunch-and-learn: ACL reconstruction, return to sport — with Dr. Ortega",
        talking_points="New sports clinic hours\nSame-week appointments",
    ).activity
    all_day = activity(
        by=liaison, kind=ActivityKind.VISIT, practice=office, date=tomorrow + dt.timedelta(days=2)
    ).activity
    activity(by=liaison, kind=ActivityKind.VISIT, practice=office, date=timezone.localdate())  # done: not exported
    activity(by=liaison, kind=ActivityKind.CALL, practice=office, date=tomorrow)  # not a visit: not exported
    activity(by=users["manager"], liaison=users["manager"], kind=ActivityKind.VISIT, practice=office, date=tomorrow)

    response = client_as("liaison").get("/outreach/calendar.ics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    body = response.content.decode()
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    calendar = icalendar.Calendar.from_ical(body)
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {f"activity-{timed.pk}@testserver", f"activity-{all_day.pk}@testserver"}

    lunch = events[f"activity-{timed.pk}@testserver"]
    start = lunch.decoded("DTSTART")
    assert start == dt.datetime.combine(tomorrow, dt.time(11, 30), tzinfo=timezone.get_current_timezone())
    assert lunch.decoded("DTEND") - start == dt.timedelta(minutes=45)
    assert str(lunch["SUMMARY"]) == "Lunch or in-service: Scioto Family Physicians; Dublin, OH"
    assert "return to sport — with Dr. Ortega" in str(lunch["DESCRIPTION"])
    assert "Same-week appointments" in str(lunch["DESCRIPTION"])
    assert str(lunch["LOCATION"]).startswith("6800 Perimeter Dr")

    visit = events[f"activity-{all_day.pk}@testserver"]
    assert visit.decoded("DTSTART") == tomorrow + dt.timedelta(days=2)


def test_long_lines_fold_without_splitting_a_character():
    line = "DESCRIPTION:" + "é" * 100
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
