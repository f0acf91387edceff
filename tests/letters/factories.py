"""Referrals at the step a letters test needs, moved through the workflow services like the pages do."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from refloop.letters.models import LetterRule
from refloop.practice.models import Practice
from refloop.referrals.services import referral_transition
from tests.directory.factories import practice, provider
from tests.referrals.factories import clinician, location, referral


def letterhead() -> Practice:
    return Practice.objects.get_or_create(
        name="Riverside Orthopaedics",
        defaults={
            "specialty": "Orthopaedics",
            "address_line1": "4100 Riverside Dr",
            "city": "Columbus",
            "state": "OH",
            "postal_code": "43220",
            "phone": "(614) 555-0100",
            "fax": "(614) 555-0101",
        },
    )[0]


def emailing_provider(**fields):
    """A referring provider who wants reports by email."""
    defaults = {
        "first_name": "Imogen",
        "last_name": "Castellanos",
        "report_channel": "email",
        "report_email": "dr.castellanos@dublin-fm.example",
    }
    return provider(**(defaults | fields))


def only_rules(*steps: str) -> None:
    """Switch every automatic letter off except those of `steps` (tests say which letters they expect)."""
    LetterRule.objects.update(enabled=False)
    LetterRule.objects.filter(step__in=steps, recipient="referring_provider").exclude(kind="thank_you_first").update(
        enabled=True
    )


def seen_referral(*, by, source=None, doctor=None, **fields):
    """A referral received, accepted, scheduled and seen."""
    letterhead()
    item = referral(by=by, source=source or emailing_provider(), **fields)
    place, doctor = location(), doctor or clinician()
    referral_transition(referral=item, name="accept", by=by)
    when = timezone.now() - dt.timedelta(minutes=30)
    referral_transition(
        referral=item,
        name="schedule",
        by=by,
        data={"appointment_at": when, "location": place, "clinician": doctor},
    )
    return referral_transition(referral=item, name="mark_seen", by=by)


__all__ = ["emailing_provider", "letterhead", "only_rules", "practice", "provider", "seen_referral"]
