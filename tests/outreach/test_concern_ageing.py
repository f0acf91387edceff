"""Concerns: days outstanding count until resolved; a manager sees every open one grouped by age; open ones
show on the provider's and the practice's pages and in the liaison's week."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from refloop.outreach.models import Concern, ConcernCategory, ConcernStatus, Severity
from refloop.outreach.selectors import concerns_by_age, open_concerns
from refloop.outreach.services import concern_open, concern_update
from tests.conftest import make_user
from tests.directory.factories import practice, provider

pytestmark = pytest.mark.django_db


def _concern(users, *, days_ago: int, summary: str, office=None, **fields):
    office = office or practice(liaison=users["liaison"])
    today = timezone.localdate()
    return concern_open(
        practice=office,
        summary=summary,
        raised_on=today - dt.timedelta(days=days_ago),
        by=users["liaison"],
        **fields,
    )


def test_days_outstanding_run_until_the_concern_is_resolved(users):
    concern = _concern(users, days_ago=12, summary="Report for Mrs. K took three weeks", severity=Severity.HIGH)
    assert concern.owner == users["liaison"]  # the practice's liaison owns it unless someone is named
    assert concern.days_outstanding() == 12
    with pytest.raises(ValidationError, match="how it was resolved"):
        concern_update(concern=concern, changes={"status": ConcernStatus.RESOLVED}, by=users["manager"])
    resolved = concern_update(
        concern=concern,
        changes={"status": ConcernStatus.RESOLVED, "resolution": "Called the office manager; reports now faxed"},
        by=users["manager"],
    )
    assert (resolved.resolved_on, resolved.resolved_by) == (timezone.localdate(), users["manager"])
    assert resolved.days_outstanding(timezone.localdate() + dt.timedelta(days=30)) == 12


def test_open_concerns_are_grouped_by_age_for_a_manager(users):
    for days, summary in ((2, "fresh"), (20, "weeks"), (45, "month"), (90, "stale"), (61, "stale too")):
        _concern(users, days_ago=days, summary=summary)
    done = _concern(users, days_ago=100, summary="closed long ago")
    concern_update(concern=done, changes={"status": ConcernStatus.RESOLVED, "resolution": "Fixed"}, by=users["manager"])
    buckets = concerns_by_age(list(Concern.objects.open()))
    assert [(b.label, sorted(c.summary for c in b.concerns)) for b in buckets] == [
        ("Up to a week", ["fresh"]),
        ("8 to 30 days", ["weeks"]),
        ("31 to 60 days", ["month"]),
        ("Over 60 days", ["stale", "stale too"]),
    ]


def test_the_manager_page_shows_everyones_concerns_with_their_age(users, client_as):
    other = make_user("liaison2", "liaison")
    _concern(users, days_ago=70, summary="Fax line busy all week")
    _concern(users, days_ago=3, summary="Asked for the new PT protocol", office=practice(liaison=other))
    manager_page = client_as("manager").get("/outreach/concerns/").content.decode()
    assert "Fax line busy all week" in manager_page and "Asked for the new PT protocol" in manager_page
    assert "Over 60 days" in manager_page and ">70<" in manager_page
    liaison_page = client_as("liaison").get("/outreach/concerns/").content.decode()
    assert "Fax line busy all week" in liaison_page and "Asked for the new PT protocol" not in liaison_page


def test_open_concerns_show_on_the_provider_and_practice_pages_and_in_the_week(users, client_as):
    from refloop.directory import services as directory_services

    office = practice(name="Hilliard Primary Care", liaison=users["liaison"])
    doc = provider(first_name="Theo", last_name="Marsh")
    directory_services.affiliation_set(provider=doc, practice=office, is_primary=True)
    concern = _concern(
        users,
        days_ago=9,
        summary="Patient waited 40 minutes",
        office=office,
        provider=doc,
        category=ConcernCategory.COMPLAINT,
    )
    for url in (f"/directory/providers/{doc.pk}/", f"/directory/practices/{office.pk}/"):
        page = client_as("liaison").get(url).content.decode()
        assert 'id="open-concerns"' in page and "Patient waited 40 minutes" in page and "9 days outstanding" in page
    coordinator_page = client_as("coordinator").get(f"/directory/practices/{office.pk}/").content.decode()
    assert 'id="open-concerns"' not in coordinator_page  # outreach is not the coordinator's to see
    week = client_as("liaison").get("/outreach/week/").content.decode()
    assert "Patient waited 40 minutes" in week
    assert list(open_concerns(liaison=users["liaison"])) == [concern]


def test_a_liaison_logs_a_concern_from_the_practice_page(users, client_as):
    office = practice(name="Gahanna Family Medicine", liaison=users["liaison"])
    response = client_as("liaison").post(
        "/outreach/concerns/new/",
        {
            "practice": office.pk,
            "category": "request",
            "severity": "low",
            "summary": "Wants the new referral form",
            "due_on": (timezone.localdate() + dt.timedelta(days=5)).isoformat(),
        },
    )
    concern = Concern.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/outreach/concerns/{concern.pk}/"
    assert (concern.practice, concern.category, concern.created_by) == (office, "request", users["liaison"])
    assert concern.raised_on == timezone.localdate()
