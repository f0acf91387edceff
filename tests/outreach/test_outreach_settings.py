"""The practice's outreach policies: thank-you milestones, the staff meal split, the warning threshold."""

from __future__ import annotations

import pytest

from refloop.accounts.models import AuditEvent
from refloop.outreach.models import OutreachSettings

pytestmark = pytest.mark.django_db


def test_a_manager_sets_the_milestones_and_the_meal_policy(users, client_as):
    response = client_as("manager").post(
        "/outreach/settings/edit/",
        {
            "thank_you_on_first_referral": "on",
            "thank_you_milestones": "50, 10; 25, 10",
            "thank_you_due_days": "5",
            "staff_share_meal_cost": "on",
            "warn_percent": "75",
            "new_source_days": "120",
        },
    )
    assert response.status_code == 302
    policy = OutreachSettings.current()
    assert policy.thank_you_milestones == [10, 25, 50]
    assert (policy.staff_share_meal_cost, policy.warn_percent, policy.thank_you_due_days) == (True, 75, 5)
    assert AuditEvent.objects.filter(action="outreach.settings", actor=users["manager"]).exists()
    page = client_as("manager").get("/outreach/settings/").content.decode()
    assert "10, 25, 50" in page


def test_a_milestone_must_be_a_count(client_as):
    response = client_as("admin").post(
        "/outreach/settings/edit/",
        {"thank_you_milestones": "10, lots", "thank_you_due_days": "3", "warn_percent": "80", "new_source_days": "180"},
    )
    assert response.status_code == 200 and "is not a referral count" in response.content.decode()
    assert OutreachSettings.current().thank_you_milestones == [10, 25, 50, 100]


def test_a_liaison_may_not_change_the_policies(client_as):
    assert client_as("liaison").get("/outreach/settings/edit/").status_code == 403
