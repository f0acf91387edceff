"""The demo's bulk paths (the design scale) write the rows the services write: the same directory for the same
seed, and liaison activities whose attendees, ledger rows and follow-ups have the shape activity_log gives them."""

import dataclasses
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import F, Sum

from refloop import demo
from refloop.directory.models import (
    PracticeLocation,
    ProviderPractice,
    ReferringPractice,
    ReferringProvider,
    StaffContact,
)
from refloop.outreach import compliance
from refloop.outreach.models import Activity, ActivityStatus, LedgerEntry, OutreachTask

pytestmark = pytest.mark.django_db

SKIP = {"id", "created_at", "updated_at", "tier", "practice", "provider", "location", "territory", "liaison"}


def _rows(model, *order):
    names = [f.attname for f in model._meta.concrete_fields if f.name not in SKIP]
    return list(model.objects.order_by(*order).values_list(*names))


def _directory():
    return {
        "practices": _rows(ReferringPractice, "name"),
        "providers": _rows(ReferringProvider, "last_name", "first_name", "npi"),
        "locations": _rows(PracticeLocation, "practice__name", "-is_primary", "address_line1"),
        "affiliations": _rows(ProviderPractice, "provider__npi", "practice__name"),
        "staff": _rows(StaffContact, "practice__name", "first_name", "last_name"),
        "links": sorted(
            ReferringProvider.objects.values_list("npi", "tier__code", "territory__name", "liaison__username"), key=str
        ),
    }


@pytest.fixture
def bulk_tiny(monkeypatch):
    monkeypatch.setitem(demo.SCALES, "tiny", dataclasses.replace(demo.SCALES["tiny"], bulk=True))


def test_the_bulk_directory_is_the_one_the_services_write(monkeypatch):
    savepoint = transaction.savepoint()
    demo.load(seed=5, scale="tiny")
    through_services = _directory()
    transaction.savepoint_rollback(savepoint)
    monkeypatch.setitem(demo.SCALES, "tiny", dataclasses.replace(demo.SCALES["tiny"], bulk=True))
    demo.load(seed=5, scale="tiny")
    assert _directory() == through_services
    assert ReferringPractice.objects.filter(search_text="").count() == 0


def test_bulk_activities_have_the_attendees_ledger_and_follow_ups_of_activity_log(bulk_tiny):
    demo.load(seed=5, scale="tiny")
    done = Activity.objects.filter(status=ActivityStatus.DONE)
    assert done.count() >= demo.SCALES["tiny"].activities * 0.8
    for activity in done.prefetch_related("providers", "staff", "ledger_entries"):
        assert activity.liaison_id is not None and activity.created_by_id is not None
        assert all(s.practice_id == activity.practice_id for s in activity.staff.all())
        ledger = {e.physician_id: e.amount for e in activity.ledger_entries.all()}
        physicians = [p for p in activity.providers.all() if compliance.is_physician(p)]
        assert set(ledger) <= {p.pk for p in physicians}
        if activity.cost == 0:
            assert not ledger
        assert sum(ledger.values(), Decimal("0.00")) <= activity.cost
    for year, limit in {e.year: compliance.limit_amount(e.year) for e in LedgerEntry.objects.all()}.items():
        totals = LedgerEntry.objects.filter(year=year).values("physician").annotate(total=Sum("amount"))
        assert limit is not None and all(row["total"] <= limit for row in totals)
    follow_ups = OutreachTask.objects.filter(activity__isnull=False)
    assert follow_ups.exists()
    assert not follow_ups.exclude(owner=F("activity__liaison")).exists()
