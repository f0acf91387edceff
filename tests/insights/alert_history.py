"""Referral histories planted straight into the database for the early-warning scan tests (years of weekly counts
through the services would take minutes; the scan only reads source, practice and received_at)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.utils import timezone

from refloop.referrals.models import Patient, Referral
from refloop.referrals.workflow import State
from tests.directory.factories import practice as make_practice
from tests.directory.factories import provider as make_provider

WEEKS = 130
AS_OF = dt.date(2026, 6, 30)  # a Tuesday


def plant(provider, weekly, *, as_of: dt.date = AS_OF, practice=None) -> None:
    """weekly[i] referrals from `provider` in week i of the len(weekly) weeks ending on as_of (mid-week, noon)."""
    patient = Patient.objects.create(first_name="Pat", last_name="History", birth_date=dt.date(1970, 1, 1))
    tz = timezone.get_current_timezone()
    n = len(weekly)
    rows = []
    for i, count in enumerate(weekly):
        at = dt.datetime.combine(as_of - dt.timedelta(days=7 * (n - 1 - i) + 3), dt.time(12), tzinfo=tz)
        rows += [
            Referral(patient=patient, referring_provider=provider, referring_practice=practice, reason="History",
                     received_at=at, last_event_at=at, state=State.CLOSED)  # fmt: skip
            for _ in range(int(count))
        ]
    Referral.objects.bulk_create(rows)


def network(*, seed: int = 11, steady: int = 16, as_of: dt.date = AS_OF) -> dict:
    """Steady providers (about 3 a week) around a slipping one, a dormant one and a rising one, each its own office."""
    rng = np.random.default_rng(seed)
    made = {"steady": []}
    for n in range(steady):
        office = make_practice(name=f"Steady Family Practice {n}")
        person = make_provider(last_name=f"Steady{n}")
        plant(person, rng.poisson(3.0, WEEKS), practice=office, as_of=as_of)
        made["steady"].append(person)
    shapes = {
        "slipping": np.r_[rng.poisson(5.0, WEEKS - 10), rng.poisson(1.0, 10)],
        "dormant": np.r_[np.maximum(rng.poisson(4.0, WEEKS - 8), 1), np.zeros(8)],
        "rising": np.r_[rng.poisson(2.0, WEEKS - 8), rng.poisson(8.0, 8)],
    }
    for name, weekly in shapes.items():
        office = make_practice(name=f"{name.title()} Orthopaedic Partners")
        person = make_provider(last_name=name.title())
        plant(person, weekly, practice=office, as_of=as_of)
        made[name] = person
        made[f"{name}_practice"] = office
    return made
