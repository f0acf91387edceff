"""Who is due for a visit: the last in-person visit or lunch older than the cadence (provider's own target,
else the tier's), most overdue first; a visit takes a source off the list; new sources never visited apart."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from refloop.directory.models import Tier
from refloop.outreach.models import ActivityKind
from refloop.outreach.selectors import due_list, never_visited
from tests.directory.factories import practice, provider
from tests.outreach.factories import activity
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def _names(items):
    return [item.name for item in items]


def test_a_provider_past_the_tier_cadence_is_due_and_a_visit_takes_them_off(users):
    today = timezone.localdate()
    liaison = users["liaison"]
    office = practice(liaison=liaison)
    doc = provider(first_name="Rhea", last_name="Okafor", tier=Tier.objects.get(code="B"), liaison=liaison)  # 91 days
    activity(by=liaison, kind=ActivityKind.VISIT, practice=office, providers=[doc], date=today - dt.timedelta(days=100))
    [item] = due_list(liaison=liaison, kinds=("provider",))
    assert (item.entry, item.cadence_days, item.days_overdue) == (doc, 91, 9)
    assert item.last_visit == today - dt.timedelta(days=100)

    activity(by=liaison, kind=ActivityKind.LUNCH, practice=office, providers=[doc], date=today)
    assert due_list(liaison=liaison, kinds=("provider",)) == []


def test_a_call_or_a_planned_visit_does_not_count_as_seen(users):
    today = timezone.localdate()
    liaison = users["liaison"]
    office = practice(liaison=liaison)
    doc = provider(tier=Tier.objects.get(code="A"), liaison=liaison)  # 30 days
    activity(by=liaison, kind=ActivityKind.VISIT, practice=office, providers=[doc], date=today - dt.timedelta(days=45))
    activity(by=liaison, kind=ActivityKind.CALL, practice=office, providers=[doc], date=today)
    activity(by=liaison, kind=ActivityKind.VISIT, practice=office, providers=[doc], date=today + dt.timedelta(days=3))
    assert _names(due_list(liaison=liaison, kinds=("provider",))) == [doc.display_name]


def test_the_provider_override_beats_the_tier_and_the_most_overdue_come_first(users):
    today = timezone.localdate()
    liaison = users["liaison"]
    office = practice(liaison=liaison)
    c_tier = Tier.objects.get(code="C")  # 182 days
    keen = provider(last_name="Keen", tier=c_tier, target_visit_days=20, liaison=liaison)
    late = provider(last_name="Late", tier=c_tier, target_visit_days=20, liaison=liaison)
    fine = provider(last_name="Fine", tier=c_tier, liaison=liaison)
    for doc, days in ((keen, 25), (late, 60), (fine, 60)):
        activity(
            by=liaison, kind=ActivityKind.VISIT, practice=office, providers=[doc], date=today - dt.timedelta(days=days)
        )
    items = due_list(liaison=liaison, kinds=("provider",))
    assert [(i.entry.last_name, i.days_overdue) for i in items] == [("Late", 40), ("Keen", 5)]


def test_practices_follow_their_tier_and_only_the_liaisons_own_are_listed(users):
    today = timezone.localdate()
    mine = practice(name="Mine Primary Care", liaison=users["liaison"], tier=Tier.objects.get(code="A"))
    theirs = practice(name="Theirs Primary Care", tier=Tier.objects.get(code="A"))
    for office in (mine, theirs):
        activity(by=users["liaison"], kind=ActivityKind.VISIT, practice=office, date=today - dt.timedelta(days=31))
    assert _names(due_list(liaison=users["liaison"], kinds=("practice",))) == ["Mine Primary Care"]
    assert set(_names(due_list(kinds=("practice",)))) == {"Mine Primary Care", "Theirs Primary Care"}


def test_a_new_source_never_visited_is_listed_apart_until_someone_visits(users):
    liaison = users["liaison"]
    office = practice(liaison=liaison)
    newcomer = provider(last_name="Newcomer", tier=Tier.objects.get(code="C"), liaison=liaison)
    referral(source=newcomer)
    [item] = [n for n in never_visited(liaison=liaison) if n.kind == "provider"]
    assert (item.entry, item.referrals) == (newcomer, 1)
    activity(by=liaison, kind=ActivityKind.VISIT, practice=office, providers=[newcomer])
    assert [n for n in never_visited(liaison=liaison) if n.kind == "provider"] == []


def test_the_due_page_lists_the_overdue_source(users, client_as):
    today = timezone.localdate()
    doc = provider(first_name="Ines", last_name="Vasquez", tier=Tier.objects.get(code="A"), liaison=users["liaison"])
    activity(by=users["liaison"], kind=ActivityKind.VISIT, providers=[doc], date=today - dt.timedelta(days=40))
    page = client_as("liaison").get("/outreach/due/").content.decode()
    assert "Ines Vasquez, MD" in page and "10 days" in page
