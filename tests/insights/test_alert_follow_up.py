"""The alert block on a source's page (the expected-vs-actual chart and "Ask liaison to follow up"), and the
follow-up it makes: one outreach task for the source's liaison, never two for the same alert."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from refloop.insights.models import SourceAlert
from refloop.outreach.models import OutreachTask
from tests.directory.factories import practice as make_practice
from tests.directory.factories import provider as make_provider

pytestmark = pytest.mark.django_db


def _alert(*, kind="slipping", liaison=None, **source) -> SourceAlert:
    if not source:
        source = {"provider": make_provider(last_name="Okafor", liaison=liaison)}
    weeks = [(dt.date(2026, 1, 5) + dt.timedelta(weeks=n)).isoformat() for n in range(12)]
    return SourceAlert.objects.create(
        kind=kind, since=dt.date(2026, 2, 16), usual_per_month=12.0, recent_per_month=3.5, drop=-0.71,
        confidence=0.97, as_of=dt.date(2026, 3, 29),
        evidence={"weeks": weeks, "actual": [3, 2, 4, 3, 3, 2, 1, 0, 1, 1, 0, 1], "expected": [2.8] * 12,
                  "statistic": 9.1, "threshold": 6.3},
        **source,
    )  # fmt: skip


def _page(client, alert):
    if alert.provider_id:
        return client.get(reverse("directory:provider", args=[alert.provider_id])).content.decode()
    return client.get(reverse("directory:practice", args=[alert.practice_id])).content.decode()


def test_the_source_page_explains_the_alert_with_its_chart_and_the_follow_up_button(users, client_as):
    alert = _alert()
    html = _page(client_as("manager"), alert)
    assert 'id="source-alert"' in html
    assert 'id="expected-vs-actual"' in html
    assert "Ask liaison to follow up" in html
    assert "12.0 a month" in html and "3.5 a month" in html and "71% down" in html and "Feb 16, 2026" in html
    spec = html.split('id="expected-vs-actual-data">', 1)[1].split("</script>", 1)[0]
    traces = json.loads(spec)["data"]
    assert [t["y"] for t in traces][0] == [3, 2, 4, 3, 3, 2, 1, 0, 1, 1, 0, 1]


def test_a_practice_page_shows_its_alert_too(users, client_as):
    alert = _alert(kind="dormant", practice=make_practice(name="Quiet Valley Clinic"))
    html = _page(client_as("liaison"), alert)
    assert 'id="source-alert"' in html and "No referral since Feb 16, 2026" in html


def test_a_coordinator_does_not_see_the_block(users, client_as):
    html = _page(client_as("coordinator"), _alert())
    assert 'id="source-alert"' not in html


def test_following_up_makes_one_task_for_the_sources_liaison(users, client_as):
    alert = _alert(liaison=users["liaison"])
    client = client_as("manager")
    url = reverse("insights:alert_follow_up", args=[alert.pk])
    response = client.post(url)
    assert response.status_code == 302 and response["Location"].endswith("#source-alert")
    alert.refresh_from_db()
    task = alert.follow_up
    assert task.owner == users["liaison"] and task.provider == alert.provider
    assert task.created_by == users["manager"] and alert.followed_up_by == users["manager"]
    assert task.due_on == timezone.localdate() + dt.timedelta(days=7)
    assert "Referrals slipping" in task.title and "12.0/month" in task.title
    client.post(url)  # a second click
    assert OutreachTask.objects.count() == 1
    html = _page(client, alert)
    assert "Follow-up task for" in html and "Ask liaison to follow up" not in html


def test_without_a_liaison_the_task_goes_to_whoever_asked(users, client_as):
    alert = _alert()
    client_as("liaison").post(reverse("insights:alert_follow_up", args=[alert.pk]))
    assert SourceAlert.objects.get(pk=alert.pk).follow_up.owner == users["liaison"]


def test_a_resolved_alert_gets_no_task_and_says_why(users, client_as):
    alert = _alert()
    SourceAlert.objects.filter(pk=alert.pk).update(resolved_at=timezone.now())
    response = client_as("manager").post(reverse("insights:alert_follow_up", args=[alert.pk]), follow=True)
    assert "resolved" in response.content.decode()
    assert OutreachTask.objects.count() == 0


def test_a_role_without_outreach_rights_is_refused_and_nothing_changes(users, client_as):
    alert = _alert()
    response = client_as("clinician").post(reverse("insights:alert_follow_up", args=[alert.pk]))
    assert response.status_code == 403
    assert OutreachTask.objects.count() == 0
    assert SourceAlert.objects.get(pk=alert.pk).follow_up is None
