"""Builders for referral tests, going through the same services as every entry point."""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from refloop.practice.models import Clinician, Location
from refloop.referrals import services
from tests.directory.factories import next_npi, provider

_serial = itertools.count(1)


def location() -> Location:
    return Location.objects.get_or_create(
        name="Main campus",
        defaults={"address_line1": "4100 Riverside Dr", "city": "Columbus", "state": "OH", "postal_code": "43220"},
    )[0]


def clinician(user=None) -> Clinician:
    existing = Clinician.objects.filter(user=user).first() if user else Clinician.objects.first()
    if existing:
        return existing
    return Clinician.objects.create(first_name="Ana", last_name="Ortega", credentials="MD", npi=next_npi(), user=user)


def patient_data(**fields) -> dict:
    n = next(_serial)
    return {"first_name": "Pat", "last_name": f"Doe{n}", "birth_date": dt.date(1970, 1, n % 28 + 1)} | fields


def referral(*, by=None, source=None, received_at=None, **fields):
    return services.referral_receive(
        patient_data=fields.pop("patient_data", None) or patient_data(),
        referring_provider=source or provider(),
        reason=fields.pop("reason", "Knee pain after a fall"),
        received_at=received_at or timezone.now() - dt.timedelta(hours=1),
        by=by,
        **fields,
    ).referral
