"""Each step of the loop queues the letters the practice switched on for it, in the step's own transaction, and
never twice for the same event."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from refloop.letters.models import Delivery, Letter, LetterKind, LetterRule
from refloop.letters.services import event_letters_queue
from refloop.referrals.services import referral_transition
from refloop.referrals.workflow import TransitionRefused
from tests.letters.factories import emailing_provider, letterhead
from tests.referrals.factories import clinician, location, referral

pytestmark = pytest.mark.django_db


def kinds(item) -> list[str]:
    return list(Letter.objects.filter(referral=item).order_by("pk").values_list("kind", flat=True))


def test_each_switched_on_step_queues_its_letter(users):
    letterhead()
    coordinator = users["coordinator"]
    item = referral(by=coordinator, source=emailing_provider())
    referral_transition(referral=item, name="accept", by=coordinator)
    when = timezone.now() + dt.timedelta(days=2)
    referral_transition(
        referral=item,
        name="schedule",
        by=coordinator,
        data={"appointment_at": when, "location": location(), "clinician": clinician()},
    )
    referral_transition(referral=item, name="mark_no_show", by=coordinator)
    assert kinds(item) == [LetterKind.RECEIPT, LetterKind.SCHEDULED, LetterKind.MISSED]
    scheduled = Letter.objects.get(referral=item, kind=LetterKind.SCHEDULED)
    assert scheduled.event.action == "schedule" and "Main campus" in scheduled.html
    assert Delivery.objects.filter(letter__referral=item).count() == 3


def test_a_switched_off_step_sends_nothing(users):
    LetterRule.objects.filter(step="receive").update(enabled=False)
    item = referral(by=users["coordinator"], source=emailing_provider())
    assert kinds(item) == []


def test_the_same_event_never_gets_the_same_letter_twice(users):
    item = referral(by=users["coordinator"], source=emailing_provider())
    event = item.events.get()
    assert event_letters_queue(event=event) == []  # already written when the event was saved
    assert Letter.objects.filter(event=event).count() == 1
    letter = Letter.objects.get(event=event)
    with pytest.raises(IntegrityError), transaction.atomic():
        Letter.objects.create(
            kind=letter.kind,
            recipient=letter.recipient,
            event=event,
            referral=item,
            recipient_name="x",
            title="x",
            html="x",
        )


def test_a_step_refused_leaves_no_letter(users):
    item = referral(by=users["coordinator"], source=emailing_provider())
    with pytest.raises(TransitionRefused):
        referral_transition(referral=item, name="mark_seen", by=users["coordinator"])
    assert kinds(item) == [LetterKind.RECEIPT]


def test_the_first_referral_thank_you_goes_only_for_a_first_referral(users):
    LetterRule.objects.filter(kind=LetterKind.THANK_YOU_FIRST).update(enabled=True)
    source = emailing_provider()
    first = referral(by=users["coordinator"], source=source)
    second = referral(by=users["coordinator"], source=source)
    assert kinds(first) == [LetterKind.RECEIPT, LetterKind.THANK_YOU_FIRST]
    assert kinds(second) == [LetterKind.RECEIPT]


def test_a_referral_from_another_source_gets_no_provider_letter(users):
    from refloop.directory.models import OtherSource
    from refloop.referrals.services import referral_receive
    from tests.referrals.factories import patient_data

    campaign = OtherSource.objects.create(kind="campaign", name="Knee seminar")
    received = referral_receive(patient_data=patient_data(), other_source=campaign, reason="Knee pain")
    assert kinds(received.referral) == []


def test_a_manager_switches_steps_on_and_off(users, client_as):
    rule = LetterRule.objects.get(step="mark_seen", kind=LetterKind.AFTER_VISIT)
    on = list(LetterRule.objects.filter(enabled=True).values_list("pk", flat=True))
    response = client_as("manager").post("/letters/automation/", {"enabled": [*on, rule.pk]})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.enabled
    assert client_as("coordinator").post("/letters/automation/", {"enabled": []}).status_code == 403
