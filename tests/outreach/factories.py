"""Builders for outreach tests: an office with physicians, a nurse practitioner and staff; activities logged
through the same service as the phone form."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from refloop.directory import services as directory_services
from refloop.directory.models import ReferringPractice, ReferringProvider, StaffContact, StaffRole
from refloop.outreach import services
from refloop.outreach.models import ActivityKind
from tests.directory.factories import practice, provider

_serial = itertools.count(1)


@dataclass
class Office:
    practice: ReferringPractice
    physicians: list[ReferringProvider]
    others: list[ReferringProvider]
    staff: list[StaffContact]


def office(*, physicians: int = 3, others: int = 0, staff: int = 2, name: str = "", **practice_fields) -> Office:
    n = next(_serial)
    where = practice(name=name or f"Olentangy Family Practice {n}", **practice_fields)
    docs = [
        provider(first_name=f"Doc{i}", last_name=f"Physician{n}x{i}", credentials="MD" if i % 2 else "D.O.")
        for i in range(physicians)
    ]
    nps = [provider(first_name=f"Nurse{i}", last_name=f"Practitioner{n}x{i}", credentials="NP") for i in range(others)]
    for person in docs + nps:
        directory_services.affiliation_set(provider=person, practice=where, is_primary=True)
    people = [
        directory_services.staff_contact_save(
            contact=StaffContact(
                practice=where, first_name=f"Staff{i}", last_name=f"Member{n}", role=StaffRole.FRONT_DESK
            )
        )
        for i in range(staff)
    ]
    return Office(where, docs, nps, people)


def activity(
    *, by, kind: str = ActivityKind.LUNCH, date: dt.date | None = None, cost: str | Decimal = "0.00", **fields
):
    """Log an activity as `by` (a user); fields are ActivityInput fields, plus override_reason and receipt."""
    override_reason = fields.pop("override_reason", "")
    receipt = fields.pop("receipt", None)
    data = services.ActivityInput(
        kind=kind,
        date=date or timezone.localdate(),
        cost=Decimal(cost),
        liaison=fields.pop("liaison", by),
        **fields,
    )
    return services.activity_log(data=data, by=by, receipt=receipt, override_reason=override_reason)


def gift(*, by, to: ReferringProvider, cost: str, date: dt.date | None = None, **fields):
    where = to.affiliations.first().practice if to.affiliations.exists() else None
    return activity(by=by, kind=ActivityKind.GIFT, practice=where, providers=[to], cost=cost, date=date, **fields)


def _planter_user():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(username="merge-planter", defaults={"role": "manager"})[0]


def _plant_ledger(entry, *, override: bool = False, repayment: bool = False) -> None:
    """Ledger rows written directly: the directory's merge test builds providers without credentials, whom
    the ledger service (rightly) does not count as physicians."""
    from refloop.outreach.models import Activity, ComplianceOverride, LedgerEntry, Repayment

    day = dt.date(2024, 3, 1)
    gift_for = Activity.objects.create(kind=ActivityKind.GIFT, date=day, cost=Decimal("20.00"))
    LedgerEntry.objects.create(
        physician=entry, activity=gift_for, year=2024, on=day, amount=Decimal("20.00"), item="Book"
    )
    if override:
        ComplianceOverride.objects.create(
            activity=gift_for,
            physician=entry,
            year=2024,
            reason="Planted",
            total_after=Decimal("20"),
            by=_planter_user(),
        )
    if repayment:
        Repayment.objects.create(
            physician=entry,
            year=2024,
            amount=Decimal("1.00"),
            received_on=day,
            repaid_on=day,
            recorded_by=_planter_user(),
        )


def _plant_thank_you(entry) -> None:
    from refloop.outreach.models import Activity, Origin

    Activity.objects.create(
        kind=ActivityKind.THANK_YOU, date=timezone.localdate(), thanked_provider=entry, milestone=1, origin=Origin.AUTO
    )


def _plant_concern(entry) -> None:
    from refloop.directory.models import ReferringProvider

    if isinstance(entry, ReferringProvider):
        services.concern_open(practice=practice(name="Concern Clinic"), provider=entry, summary="Planted", by=None)
    else:
        services.concern_open(practice=entry, summary="Planted", by=None)


def _plant_task(entry) -> None:
    from refloop.directory.models import ReferringProvider

    key = "provider" if isinstance(entry, ReferringProvider) else "practice"
    services.task_create(title="Planted", due_on=timezone.localdate(), owner=None, by=None, **{key: entry})


def _plant_territory_move(entry) -> None:
    from refloop.outreach.models import TerritoryAssignment

    TerritoryAssignment.objects.create(practice=entry, from_territory_name="North", to_territory_name="West")


# One row of every relation outreach adds to providers and practices, keyed as tests/directory/test_merge.py
# keys its PLANTERS table ("<app>.<Model>.<field>"), so that test can take them as they are.
MERGE_PLANTERS = {
    "outreach.Activity.thanked_provider": _plant_thank_you,
    "outreach.Activity_providers.referringprovider": lambda entry: activity(
        by=_planter_user(), kind=ActivityKind.VISIT, providers=[entry]
    ),
    "outreach.LedgerEntry.physician": lambda entry: _plant_ledger(entry),
    "outreach.ComplianceOverride.physician": lambda entry: _plant_ledger(entry, override=True),
    "outreach.Repayment.physician": lambda entry: _plant_ledger(entry, repayment=True),
    "outreach.Concern.provider": _plant_concern,
    "outreach.OutreachTask.provider": _plant_task,
    "outreach.Activity.practice": lambda entry: activity(by=_planter_user(), kind=ActivityKind.VISIT, practice=entry),
    "outreach.Concern.practice": _plant_concern,
    "outreach.OutreachTask.practice": _plant_task,
    "outreach.TerritoryAssignment.practice": _plant_territory_move,
}
