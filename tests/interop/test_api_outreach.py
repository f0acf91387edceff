"""Activities and concerns through the JSON API: the same compliance checks as the phone form, and concerns
worked with the ETag they were read with."""

from __future__ import annotations

import pytest
from django.utils import timezone

from refloop.outreach.models import Activity, Concern, LedgerEntry
from tests.interop.api_support import key_client, world

pytestmark = pytest.mark.django_db


def test_a_lunch_logged_by_an_integration_reaches_the_compliance_ledger():
    seeded = world()
    doctors = seeded.office.physicians
    client = key_client("outreach.edit")
    logged = client.post(
        "/api/activities",
        {
            "kind": "lunch",
            "date": timezone.localdate().isoformat(),
            "practice_id": seeded.office.practice.pk,
            "provider_ids": [d.pk for d in doctors],
            "cost": "60.00",
            "purpose": "Lunch and in-service",
        },
        content_type="application/json",
    )
    assert logged.status_code == 201, logged.content
    activity = Activity.objects.get(pk=logged.json()["id"])
    assert activity.status == "done" and sorted(logged.json()["provider_ids"]) == sorted(d.pk for d in doctors)
    assert LedgerEntry.objects.filter(activity=activity).count() == len(doctors)


def test_a_gift_card_is_refused_naming_the_field_and_nothing_is_logged():
    seeded = world()
    client = key_client("outreach.edit")
    refused = client.post(
        "/api/activities",
        {
            "kind": "gift",
            "date": timezone.localdate().isoformat(),
            "practice_id": seeded.office.practice.pk,
            "provider_ids": [seeded.office.physicians[0].pk],
            "cost": "25.00",
            "given_as": "cash_equivalent",
        },
        content_type="application/json",
    )
    assert refused.status_code == 422
    assert "body.given_as" in [e["field"] for e in refused.json()["errors"]]
    assert not Activity.objects.filter(kind="gift").exists()


def test_a_concern_is_logged_and_resolved_with_if_match():
    seeded = world()
    client = key_client("outreach.edit", "outreach.view")
    created = client.post(
        "/api/concerns",
        {"practice_id": seeded.office.practice.pk, "summary": "Reports arrive by mail, want fax", "severity": "high"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    concern = Concern.objects.get(pk=created.json()["id"])
    url = f"/api/concerns/{concern.pk}"
    no_resolution = client.patch(
        url, {"status": "resolved"}, content_type="application/json", HTTP_IF_MATCH=created["ETag"]
    )
    assert no_resolution.status_code == 422
    assert no_resolution.json()["errors"][0]["field"] == "body.resolution"
    resolved = client.patch(
        url,
        {"status": "resolved", "resolution": "Report channel set to fax"},
        content_type="application/json",
        HTTP_IF_MATCH=created["ETag"],
    )
    assert resolved.status_code == 200, resolved.content
    concern.refresh_from_db()
    assert concern.status == "resolved" and concern.resolved_on == timezone.localdate()
    again = client.patch(url, {"severity": "low"}, content_type="application/json", HTTP_IF_MATCH=created["ETag"])
    assert again.status_code == 412
    concern.refresh_from_db()
    assert concern.severity == "high"
