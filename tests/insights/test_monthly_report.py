"""The monthly report for managers: the month's figures, as a PDF anyone with insights.view can open for any
month, and nothing for a month that cannot have one."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.utils import timezone
from pypdf import PdfReader

from refloop.insights.models import AlertKind, SourceAlert
from refloop.insights.monthly_report import monthly_report
from refloop.practice.models import Clinician
from refloop.referrals.models import Referral
from tests.directory.factories import next_npi
from tests.insights.effectiveness_data import office, referrals_on, visit

pytestmark = pytest.mark.django_db


def pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def may_2026(users):
    busy, quiet = office(), office()
    busy[1].first_name, busy[1].last_name = "Ines", "Castellanos"
    busy[1].save()
    referrals_on(busy, [dt.date(2026, 5, 4)] * 6 + [dt.date(2025, 5, 10)] * 3)
    referrals_on(quiet, [dt.date(2026, 5, 20)] * 2 + [dt.date(2025, 5, 11)] * 1 + [dt.date(2026, 6, 2)] * 4)
    ortega = Clinician.objects.create(first_name="Ana", last_name="Ortega", credentials="MD", npi=next_npi())
    tz = timezone.get_current_timezone()
    seen = dt.datetime(2026, 5, 11, 10, tzinfo=tz)  # a Monday
    first_two = Referral.objects.filter(referring_provider=busy[1]).order_by("pk")[:2]
    Referral.objects.filter(pk__in=[r.pk for r in first_two]).update(
        clinician=ortega, seen_at=seen, report_sent_at=seen + dt.timedelta(days=2)
    )
    Referral.objects.filter(pk=first_two[0].pk).update(closed_at=seen + dt.timedelta(days=9))
    SourceAlert.objects.create(
        kind=AlertKind.SLIPPING,
        practice=quiet[0],
        since=dt.date(2026, 3, 1),
        usual_per_month=6,
        recent_per_month=2,
        drop=-0.67,
        confidence=0.9,
        as_of=dt.date(2026, 5, 31),
    )
    visit(busy[0], dt.date(2026, 5, 12), liaison=users["liaison"])
    return busy, quiet


def test_the_report_holds_the_months_figures(users):
    busy, quiet = may_2026(users)
    report = monthly_report(2026, 5, today=dt.date(2026, 7, 1))
    assert (report.referrals, report.referrals_last_year) == (8, 4)
    assert report.change == 1.0
    assert [(s.name, s.referrals, s.last_year) for s in report.top_sources][0] == ("Ines Castellanos, MD", 6, 3)
    assert [a.practice for a in report.slipping] == [quiet[0]]
    assert (report.seen, report.reported, report.closed) == (2, 2, 1)
    assert (report.median_days, report.p90_days, report.reports_sent) == (2, 2, 2)
    [liaison] = report.liaisons
    assert liaison.activities == {"visit": 1}


def test_a_manager_opens_any_months_pdf(users, client_as):
    may_2026(users)
    response = client_as("manager").get("/insights/reports/2026/5/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert "Referral report · May 2026" in text
    assert "Ines Castellanos, MD" in text and "May 2025" in text
    assert "+100%" in text
    listing = client_as("manager").get("/insights/reports/").content.decode()
    assert "/insights/reports/2026/5/" in listing and "/insights/reports/2025/5/" in listing


def test_no_report_for_a_month_that_cannot_have_one(client_as):
    client = client_as("manager")
    assert client.get("/insights/reports/1999/12/").status_code == 404
    assert client.get("/insights/reports/2026/13/").status_code == 404
    future = timezone.localdate() + dt.timedelta(days=40)
    assert client.get(f"/insights/reports/{future.year}/{future.month}/").status_code == 404
    assert client_as("liaison").get("/insights/reports/2026/5/").status_code == 403
