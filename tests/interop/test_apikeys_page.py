"""Settings → API keys: an administrator makes a key with scopes, sees it once, and revokes it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from refloop.accounts.models import AuditEvent
from refloop.interop.models import ApiKey

pytestmark = pytest.mark.django_db


def test_the_settings_page_links_to_the_keys_only_for_an_administrator(client_as):
    assert 'href="/settings/api-keys/"' in client_as("admin").get("/settings/").content.decode()
    assert 'href="/settings/api-keys/"' not in client_as("manager").get("/settings/").content.decode()


def test_a_key_made_on_the_page_is_shown_once_stored_hashed_and_opens_the_api(client_as, users):
    admin = client_as("admin")
    page = admin.post("/settings/api-keys/", {"name": "Epic referrals", "scopes": ["referrals.view"]})
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    secret = re.search(r'<code class="secret">(rfl_[^<]+)</code>', page.content.decode()).group(1)
    key = ApiKey.objects.get(name="Epic referrals")
    assert key.scopes == ["referrals.view"] and key.created_by == users["admin"]
    assert secret not in key.key_hash and not ApiKey.objects.filter(key_hash=secret).exists()
    assert secret not in admin.get("/settings/api-keys/").content.decode()  # never shown again

    integration = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert integration.get("/api/referrals").status_code == 200
    assert integration.post("/api/referrals", {}, content_type="application/json").status_code == 403
    assert AuditEvent.objects.filter(action="apikey.create", actor=users["admin"]).exists()


def test_a_revoked_key_stops_working_at_once(client_as):
    admin = client_as("admin")
    page = admin.post("/settings/api-keys/", {"name": "Old fax server", "scopes": ["referrals.edit"]})
    secret = re.search(r'<code class="secret">(rfl_[^<]+)</code>', page.content.decode()).group(1)
    key = ApiKey.objects.get(name="Old fax server")
    assert admin.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/referrals").status_code == 401


def test_a_key_needs_a_name_and_a_known_scope(client_as):
    admin = client_as("admin")
    assert admin.post("/settings/api-keys/", {"name": "", "scopes": ["referrals.view"]}).status_code == 400
    assert admin.post("/settings/api-keys/", {"name": "X", "scopes": ["everything"]}).status_code == 400
    admin.post("/settings/api-keys/", {"name": "Twice", "scopes": ["referrals.view"]})
    again = admin.post("/settings/api-keys/", {"name": "Twice", "scopes": ["referrals.view"]})
    assert again.status_code == 400 and "already exists" in again.content.decode()
    assert ApiKey.objects.filter(name="Twice").count() == 1
    assert not ApiKey.objects.filter(name__in=["", "X"]).exists()


def test_only_an_administrator_reaches_the_page(client_as):
    for role in ("manager", "coordinator", "liaison", "clinician"):
        assert client_as(role).get("/settings/api-keys/").status_code == 403
        assert (
            client_as(role).post("/settings/api-keys/", {"name": "Sneaky", "scopes": ["audit.view"]}).status_code == 403
        )
    assert not ApiKey.objects.filter(name="Sneaky").exists()
