"""The per-physician calendar-year total against the year's limit: exactly at the limit is allowed, one cent
over is refused unless a compliance role records an override with a reason, which is audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from refloop.accounts.models import AuditEvent
from refloop.outreach.compliance import Level, LimitRefused, physician_year
from refloop.outreach.models import Activity, ComplianceOverride, LedgerEntry
from tests.outreach.factories import activity, gift, office

pytestmark = pytest.mark.django_db
DAY = dt.date(2024, 3, 5)  # 2024's limit is $507 (CMS)


def test_a_gift_that_brings_a_physician_exactly_to_the_limit_is_allowed(users):
    doc = office(physicians=1).physicians[0]
    gift(by=users["liaison"], to=doc, cost="500.00", date=DAY)
    logged = gift(by=users["liaison"], to=doc, cost="7.00", date=DAY)
    assert physician_year(doc, 2024).total == Decimal("507.00")
    assert physician_year(doc, 2024).level == Level.WARN
    assert logged.checks[0].needs_override is False


def test_one_cent_over_the_limit_is_refused_and_nothing_is_written(users):
    doc = office(physicians=1).physicians[0]
    gift(by=users["liaison"], to=doc, cost="507.00", date=DAY)
    activities_before = Activity.objects.count()
    with pytest.raises(LimitRefused) as refused:
        gift(by=users["liaison"], to=doc, cost="0.01", date=DAY)
    assert "over the $507.00 limit by $0.01" in str(refused.value)
    assert Activity.objects.count() == activities_before
    assert physician_year(doc, 2024).total == Decimal("507.00")


def test_a_liaison_cannot_override_even_with_a_reason(users):
    doc = office(physicians=1).physicians[0]
    gift(by=users["liaison"], to=doc, cost="507.00", date=DAY)
    with pytest.raises(LimitRefused, match="Only a compliance role"):
        gift(by=users["liaison"], to=doc, cost="20.00", date=DAY, override_reason="They asked nicely")
    assert not ComplianceOverride.objects.exists()


def test_a_manager_overrides_with_a_reason_and_the_override_is_audited(users):
    doc = office(physicians=1).physicians[0]
    gift(by=users["liaison"], to=doc, cost="507.00", date=DAY)
    with pytest.raises(LimitRefused):  # a compliance role still has to give the reason
        gift(by=users["manager"], to=doc, cost="20.00", date=DAY)
    logged = gift(
        by=users["manager"], to=doc, cost="20.00", date=DAY, override_reason="Repayment cure agreed with Dr. in writing"
    )
    assert physician_year(doc, 2024).total == Decimal("527.00")
    override = ComplianceOverride.objects.get()
    assert (override.physician, override.by, override.total_after) == (doc, users["manager"], Decimal("527.00"))
    assert override.activity == logged.activity
    event = AuditEvent.objects.get(action="compliance.override")
    assert event.actor == users["manager"]
    assert event.detail["reason"] == "Repayment cure agreed with Dr. in writing"
    assert event.detail["physician"] == doc.pk


def test_the_limit_is_per_calendar_year(users):
    doc = office(physicians=1).physicians[0]
    gift(by=users["liaison"], to=doc, cost="507.00", date=dt.date(2024, 12, 31))
    gift(by=users["liaison"], to=doc, cost="400.00", date=dt.date(2023, 1, 2))  # 2023's limit is $489
    assert LedgerEntry.objects.filter(physician=doc).count() == 2


def test_a_lunch_refuses_only_because_of_the_physician_it_would_take_over(users):
    place = office(physicians=3)
    near = place.physicians[0]
    gift(by=users["liaison"], to=near, cost="480.00", date=DAY)
    with pytest.raises(LimitRefused) as refused:
        activity(by=users["liaison"], practice=place.practice, providers=place.physicians, cost="90.00", date=DAY)
    blocked = [c for c in refused.value.checks if c.needs_override]
    assert [c.physician for c in blocked] == [near]
