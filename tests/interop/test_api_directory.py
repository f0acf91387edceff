"""Providers, practices and staff contacts through the JSON API: created through the directory's services,
edited only with the ETag they were read with, so nobody's newer change is overwritten."""

from __future__ import annotations

import pytest

from refloop.directory.models import ReferringPractice, ReferringProvider, StaffContact
from tests.directory.factories import next_npi
from tests.interop.api_support import key_client, world

pytestmark = pytest.mark.django_db


def _patch(client, url, body, etag=None):
    extra = {"HTTP_IF_MATCH": etag} if etag else {}
    return client.patch(url, body, content_type="application/json", **extra)


def test_a_provider_added_through_the_api_is_in_the_directory():
    client = key_client("directory.edit", "directory.view")
    npi = next_npi()
    created = client.post(
        "/api/providers",
        {"npi": npi, "first_name": "Lena", "last_name": "Marsh", "credentials": "MD", "city": "Dublin"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    provider = ReferringProvider.objects.get(npi=npi)
    assert provider.last_name == "Marsh" and provider.source == "manual"
    assert created["ETag"] == f'"referringprovider-{provider.pk}-v1"'
    assert [p["id"] for p in client.get(f"/api/providers?npi={npi}").json()["items"]] == [provider.pk]


def test_a_second_provider_with_the_same_npi_is_refused_naming_the_npi():
    seeded = world()
    client = key_client("directory.edit")
    taken = seeded.office.physicians[0].npi
    refused = client.post("/api/providers", {"npi": taken, "last_name": "Other"}, content_type="application/json")
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["body.npi"]
    assert "NPI" in refused.json()["message"]
    assert ReferringProvider.objects.filter(npi=taken).count() == 1


def test_a_provider_edit_needs_the_current_etag_and_marks_the_field_as_a_persons():
    seeded = world()
    provider = seeded.office.physicians[0]
    client = key_client("directory.edit", "directory.view")
    url = f"/api/providers/{provider.pk}"
    etag = client.get(url)["ETag"]
    assert _patch(client, url, {"specialty": "Sports Medicine"}).status_code == 428
    saved = _patch(client, url, {"specialty": "Sports Medicine"}, etag=etag)
    assert saved.status_code == 200
    provider.refresh_from_db()
    assert provider.specialty == "Sports Medicine" and provider.version == 2
    assert "specialty" in provider.manual_fields
    assert provider.last_name == saved.json()["last_name"]  # fields not sent are left alone

    stale = _patch(client, url, {"specialty": "Family Medicine"}, etag=etag)
    assert stale.status_code == 412
    provider.refresh_from_db()
    assert provider.specialty == "Sports Medicine"


def test_a_practice_is_added_with_its_first_location_and_edited_with_if_match():
    client = key_client("directory.edit", "directory.view")
    created = client.post(
        "/api/practices",
        {
            "name": "Hilliard Pediatrics",
            "location": {"address_line1": "1 Main St", "city": "Hilliard", "state": "OH", "postal_code": "43026"},
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    practice = ReferringPractice.objects.get(name="Hilliard Pediatrics")
    assert practice.locations.get().is_primary
    renamed = _patch(client, f"/api/practices/{practice.pk}", {"name": "Hilliard Kids"}, etag=created["ETag"])
    assert renamed.status_code == 200
    practice.refresh_from_db()
    assert practice.name == "Hilliard Kids"


def test_an_unknown_tier_is_refused_naming_the_field():
    seeded = world()
    client = key_client("directory.edit")
    provider = seeded.office.physicians[0]
    etag = f'"referringprovider-{provider.pk}-v{provider.version}"'
    refused = _patch(client, f"/api/providers/{provider.pk}", {"tier_id": 999}, etag=etag)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.tier_id"


def test_a_staff_contact_edit_over_someone_elses_save_is_refused():
    seeded = world()
    contact = seeded.office.staff[0]
    client = key_client("directory.edit", "directory.view")
    url = f"/api/staff-contacts/{contact.pk}"
    etag = client.get(url)["ETag"]
    StaffContact.objects.filter(pk=contact.pk).update(title="Office lead")  # someone saves in between
    contact.refresh_from_db()
    contact.save()  # a save moves updated_at, as every page save does
    refused = _patch(client, url, {"title": "Scheduler"}, etag=etag)
    assert refused.status_code == 412
    contact.refresh_from_db()
    assert contact.title == "Office lead"
    fresh = client.get(url)["ETag"]
    saved = _patch(client, url, {"title": "Scheduler", "birthday_month": 2, "birthday_day": 29}, etag=fresh)
    assert saved.status_code == 200
    contact.refresh_from_db()
    assert (contact.title, contact.birthday_month, contact.birthday_day) == ("Scheduler", 2, 29)


def test_a_staff_contact_is_added_to_a_practice():
    seeded = world()
    client = key_client("directory.edit")
    created = client.post(
        "/api/staff-contacts",
        {"practice_id": seeded.office.practice.pk, "first_name": "Dana", "role": "office_manager"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    assert seeded.office.practice.staff.filter(first_name="Dana", role="office_manager").exists()
