"""A year with no figure on file (2025) is flagged, never estimated; an administrator enters it, audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from refloop.accounts.models import AuditEvent
from refloop.outreach.compliance import Level, LimitRefused, limit_amount, stark_limit_set
from refloop.outreach.models import LimitSource, StarkLimit
from tests.outreach.factories import gift, office

pytestmark = pytest.mark.django_db


def test_the_seeded_figures_carry_their_sources_and_2025_is_missing():
    assert limit_amount(2019) == Decimal("416.00")
    assert limit_amount(2024) == Decimal("507.00")
    assert StarkLimit.objects.get(year=2024).source == LimitSource.CMS
    assert limit_amount(2026) == Decimal("535.00")
    assert StarkLimit.objects.get(year=2026).source == LimitSource.SECONDARY
    assert "health-law firms citing CMS" in StarkLimit.objects.get(year=2026).source_note
    missing = StarkLimit.objects.get(year=2025)
    assert missing.amount is None and missing.source == LimitSource.MISSING
    assert "not used" in missing.source_note  # the $519 estimate is explained, never applied


def test_an_item_in_a_year_with_no_figure_is_flagged_and_refused_without_an_override(users):
    doc = office(physicians=1).physicians[0]
    with pytest.raises(LimitRefused) as refused:
        gift(by=users["liaison"], to=doc, cost="20.00", date=dt.date(2025, 6, 1))
    [check] = refused.value.checks
    assert check.level == Level.NO_LIMIT
    assert "no Stark limit is on file for 2025" in str(refused.value)


def test_a_compliance_override_lets_it_through_until_the_figure_is_entered(users):
    doc = office(physicians=1).physicians[0]
    logged = gift(
        by=users["manager"], to=doc, cost="20.00", date=dt.date(2025, 6, 1), override_reason="Figure pending from CMS"
    )
    assert logged.checks[0].level == Level.NO_LIMIT


def test_the_compliance_page_flags_the_year(client_as):
    page = client_as("liaison").get("/outreach/compliance/?year=2025").content.decode()
    assert "No limit is on file for 2025" in page
    limits = client_as("manager").get("/outreach/compliance/limits/").content.decode()
    assert "no figure on file" in limits


def test_an_administrator_enters_the_year_and_the_change_is_audited(users, client_as):
    response = client_as("admin").post(
        "/outreach/compliance/limits/2025/",
        {"amount": "519.00", "source_note": "CMS CPI-U Updates page, checked 2026-01-12"},
    )
    assert response.status_code == 302
    row = StarkLimit.objects.get(year=2025)
    assert (row.amount, row.source, row.updated_by) == (Decimal("519.00"), LimitSource.ADMIN, users["admin"])
    event = AuditEvent.objects.get(action="compliance.limit_set")
    assert event.detail["before"]["amount"] is None and event.detail["after"]["amount"] == "519.00"
    doc = office(physicians=1).physicians[0]
    assert gift(by=users["liaison"], to=doc, cost="20.00", date=dt.date(2025, 6, 1)).checks[0].level == Level.OK


def test_only_an_administrator_may_set_a_limit(users, client_as):
    assert client_as("manager").post("/outreach/compliance/limits/2025/", {"amount": "1"}).status_code == 403
    with pytest.raises(PermissionDenied):
        stark_limit_set(year=2025, amount=Decimal("1.00"), source_note="x", by=users["manager"])
    assert StarkLimit.objects.get(year=2025).amount is None
