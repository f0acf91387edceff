"""A thank-you note is queued on a source's first referral and on the practice's milestones, once each."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from refloop.directory import services as directory_services
from refloop.outreach.models import Activity, ActivityKind, ActivityStatus, Origin, OutreachSettings, OutreachTask
from refloop.outreach.services import activity_input, activity_update, thank_you_queue
from tests.directory.factories import practice, provider
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def _thank_yous(doc):
    return list(Activity.objects.filter(thanked_provider=doc).order_by("milestone"))


def test_a_first_referral_queues_a_thank_you_note_for_the_liaison(users, django_capture_on_commit_callbacks):
    office = practice(liaison=users["liaison"])
    doc = provider(first_name="Mina", last_name="Ruiz", liaison=users["liaison"])
    directory_services.affiliation_set(provider=doc, practice=office, is_primary=True)
    with django_capture_on_commit_callbacks(execute=True):
        first = referral(source=doc, by=users["coordinator"])
    [note] = _thank_yous(doc)
    assert (note.kind, note.status, note.origin) == (ActivityKind.THANK_YOU, ActivityStatus.PLANNED, Origin.AUTO)
    assert (note.milestone, note.referral, note.practice, note.liaison) == (1, first, office, users["liaison"])
    assert list(note.providers.all()) == [doc]
    assert note.cost == 0
    task = OutreachTask.objects.get(activity=note)
    assert task.owner == users["liaison"]
    assert task.title == "Send a thank-you note to Mina Ruiz, MD (first referral)"
    assert task.due_on == timezone.localdate() + dt.timedelta(days=3)


def test_milestones_from_the_settings_queue_one_note_each(users, django_capture_on_commit_callbacks):
    OutreachSettings.objects.update_or_create(pk=1, defaults={"thank_you_milestones": [3, 5]})
    doc = provider(liaison=users["liaison"])
    start = timezone.now() - dt.timedelta(days=10)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(6):
            referral(source=doc, received_at=start + dt.timedelta(hours=n))
    assert [a.milestone for a in _thank_yous(doc)] == [1, 3, 5]
    assert "5th referral" in _thank_yous(doc)[-1].purpose


def test_other_steps_of_the_loop_and_other_sources_queue_nothing(users, django_capture_on_commit_callbacks):
    OutreachSettings.objects.update_or_create(pk=1, defaults={"thank_you_on_first_referral": False})
    doc = provider()
    with django_capture_on_commit_callbacks(execute=True):
        referral(source=doc)
    assert _thank_yous(doc) == []


def test_the_same_milestone_is_never_thanked_twice(users, django_capture_on_commit_callbacks):
    doc = provider()
    with django_capture_on_commit_callbacks(execute=True):
        first = referral(source=doc)
    assert thank_you_queue(referral=first) is None
    assert len(_thank_yous(doc)) == 1


def test_a_milestone_thank_you_cannot_carry_a_gift(users, django_capture_on_commit_callbacks):
    doc = provider()
    with django_capture_on_commit_callbacks(execute=True):
        referral(source=doc)
    [note] = _thank_yous(doc)
    with pytest.raises(ValidationError, match="volume or value of referrals"):
        activity_update(activity=note, data=activity_input(note, cost=Decimal("40.00")), by=users["liaison"])
    done = activity_update(activity=note, data=activity_input(note, status=ActivityStatus.DONE), by=users["liaison"])
    assert done.activity.status == ActivityStatus.DONE


def test_the_count_stops_past_the_last_milestone(users):
    from refloop.outreach.services import referral_ordinal

    doc = provider()
    start = timezone.now() - dt.timedelta(days=10)
    made = [referral(source=doc, received_at=start + dt.timedelta(hours=n)) for n in range(5)]
    assert [referral_ordinal(r) for r in made] == [1, 2, 3, 4, 5]
    assert [referral_ordinal(r, up_to=3) for r in made] == [1, 2, 3, 3, 3]


def test_referrals_received_at_the_same_moment_are_counted_in_the_order_they_were_logged(users):
    from refloop.outreach.services import referral_ordinal

    doc = provider()
    moment = timezone.now() - dt.timedelta(days=2)
    made = [referral(source=doc, received_at=moment) for _ in range(3)]
    assert [referral_ordinal(r) for r in made] == [1, 2, 3]
