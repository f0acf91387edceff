"""The yearly report for the compliance officer: a PDF and a formula-safe CSV, both audited."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from refloop.accounts.models import AuditEvent
from tests.outreach.factories import activity, gift, office

pytestmark = pytest.mark.django_db


def _ledger(users):
    place = office(physicians=2, name='=HYPERLINK("http://evil.example")')
    activity(
        by=users["liaison"],
        practice=place.practice,
        providers=place.physicians,
        cost="90.00",
        purpose="Lunch-and-learn",
        date=dt.date(2024, 2, 6),
    )
    gift(by=users["liaison"], to=place.physicians[0], cost="420.00", purpose="+Textbook", date=dt.date(2024, 8, 1))
    return place


def test_the_csv_has_one_row_per_item_with_totals_and_no_formula_can_run(users, client_as):
    place = _ledger(users)
    response = client_as("manager").get("/outreach/compliance/2024/report.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="refloop-stark-ledger-2024.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 3
    first = place.physicians[0]
    mine = [r for r in rows if r["NPI"] == first.npi]
    assert [r["Amount"] for r in mine] == ["45.00", "420.00"]
    assert {r["Physician year total"] for r in mine} == {"465.00"}
    assert {r["% of limit"] for r in mine} == {"91.7"}
    assert all(r["Practice"].startswith("'=") for r in rows)
    assert any(r["Item"] == "'+Textbook" for r in rows)
    event = AuditEvent.objects.get(action="compliance.export")
    assert event.detail == {"year": 2024, "format": "csv", "physicians": 2}


def test_the_pdf_renders_for_the_year_and_for_one_physician(users, client_as):
    place = _ledger(users)
    response = client_as("admin").get("/outreach/compliance/2024/report.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    one = client_as("admin").get(f"/outreach/compliance/2024/report.pdf?physician={place.physicians[1].pk}")
    assert one.content.startswith(b"%PDF-")
    assert AuditEvent.objects.filter(action="compliance.export").count() == 2


def test_the_ledger_page_lists_each_physician_against_the_limit(users, client_as):
    place = _ledger(users)
    page = client_as("liaison").get("/outreach/compliance/?year=2024").content.decode()
    assert place.physicians[0].display_name in page
    assert "91.7%" in page and "level-warn" in page
    detail = (
        client_as("liaison").get(f"/outreach/compliance/2024/physicians/{place.physicians[0].pk}/").content.decode()
    )
    assert "$465.00" in detail and "Record the repayment" not in detail
