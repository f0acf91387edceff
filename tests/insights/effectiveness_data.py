"""Hand-made referral histories with a known answer, for the liaison-effectiveness tests.

Rows are written straight to the tables: the estimate reads only dates and sources, and a few hundred
referrals through the intake service would make these tests slow without testing anything more.
"""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from refloop.directory.models import ProviderPractice, ReferringPractice, ReferringProvider
from refloop.outreach.models import Activity, ActivityKind
from refloop.referrals.models import Patient, Referral

_serial = itertools.count(1)


def office(*, specialty: str = "Family Medicine", tier=None) -> tuple[ReferringPractice, ReferringProvider]:
    n = next(_serial)
    practice = ReferringPractice.objects.create(name=f"Office {n}", tier=tier)
    provider = ReferringProvider.objects.create(last_name=f"Doctor{n}", credentials="MD", specialty=specialty)
    ProviderPractice.objects.create(provider=provider, practice=practice, is_primary=True)
    return practice, provider


def referrals_on(source: tuple[ReferringPractice, ReferringProvider], days: list[dt.date]) -> None:
    practice, provider = source
    patient = Patient.objects.first() or Patient.objects.create(
        first_name="Pat", last_name="Doe", birth_date=dt.date(1970, 1, 1)
    )
    tz = timezone.get_current_timezone()
    Referral.objects.bulk_create(
        Referral(
            patient=patient,
            referring_provider=provider,
            referring_practice=practice,
            reason="Planted",
            received_at=(at := dt.datetime.combine(day, dt.time(10, 0), tzinfo=tz)),
            last_event_at=at,
        )
        for day in days
    )


def visit(practice: ReferringPractice, day: dt.date, *, liaison=None, kind: str = ActivityKind.VISIT) -> Activity:
    return Activity.objects.create(kind=kind, date=day, practice=practice, liaison=liaison)


def days_from(day: dt.date, offsets: list[int]) -> list[dt.date]:
    return [day + dt.timedelta(days=o) for o in offsets]
