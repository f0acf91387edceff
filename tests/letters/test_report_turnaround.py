"""Report turnaround where it matters: the referral page (due in 5 h, overdue by 2 days, sent after N business
days) and per clinician (median, 90th percentile, share within the target)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from refloop.letters.selectors import report_clock, turnaround_by_clinician
from refloop.practice.models import Clinician, ServiceLevels
from refloop.referrals.models import Referral
from tests.directory.factories import next_npi
from tests.letters.factories import seen_referral

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


def test_the_referral_page_says_when_the_report_is_due_and_when_it_is_late(users, client_as):
    item = seen_referral(by=users["coordinator"])
    page = client_as("coordinator").get(f"/referrals/{item.pk}/").content.decode()
    assert 'id="report-clock"' in page and "Report due in" in page
    Referral.objects.filter(pk=item.pk).update(due_at=timezone.now() - dt.timedelta(days=2, hours=1))
    item.refresh_from_db()
    clock = report_clock(item)
    assert clock.text == "Report overdue by 2 days" and clock.late


def test_a_sent_report_says_after_how_many_business_days():
    monday = dt.datetime(2026, 11, 2, 10, tzinfo=NY)
    item = Referral(state="report_sent", seen_at=monday - dt.timedelta(days=3), report_sent_at=monday)  # Fri -> Mon
    assert report_clock(item).text == "Report sent after 1 business day (target 2)"


def test_turnaround_per_clinician_in_business_days(users):
    levels = ServiceLevels.current()
    levels.report_days = 2
    levels.save()
    fast = Clinician.objects.create(first_name="Ana", last_name="Ortega", credentials="MD", npi=next_npi())
    slow = Clinician.objects.create(first_name="Ben", last_name="Okafor", credentials="DO", npi=next_npi())
    now = timezone.now()
    monday = dt.datetime.combine(
        timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday() + 7), dt.time(10), tzinfo=NY
    )
    for doctor, business_days in [(fast, 0), (fast, 1), (fast, 1), (fast, 2), (slow, 3), (slow, 7)]:
        item = seen_referral(by=users["coordinator"], doctor=doctor)
        sent = monday + dt.timedelta(days=business_days + (2 if business_days >= 5 else 0))
        Referral.objects.filter(pk=item.pk).update(
            clinician=doctor, seen_at=monday, report_sent_at=sent, state="report_sent"
        )
    rows, target = turnaround_by_clinician(days=90, now=now)
    by_name = {row.clinician.last_name: row for row in rows}
    assert target == 2
    assert (by_name["Ortega"].reports, by_name["Ortega"].median_days, by_name["Ortega"].p90_days) == (4, 1, 2)
    assert by_name["Ortega"].within_target == 1.0
    assert (by_name["Okafor"].median_days, by_name["Okafor"].p90_days, by_name["Okafor"].within_target) == (5, 7, 0)


def test_the_reports_page_shows_the_table(users, client_as):
    page = client_as("clinician").get("/letters/reports/")
    assert page.status_code == 200 and b"Report turnaround" in page.content
    assert client_as("liaison").get("/letters/reports/").status_code == 403
