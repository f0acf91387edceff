"""`refloop apikey create|list|revoke`: the key is printed once, on stdout alone, so it can be piped."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from refloop.interop.models import ApiKey

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = StringIO()
    call_command("apikey", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_prints_a_working_key_once_and_keeps_only_its_hash():
    secret = _run("create", "Fax server", "--scope", "referrals.edit", "--scope", "referrals.view").strip()
    key = ApiKey.objects.get(name="Fax server")
    assert secret.startswith("rfl_") and secret not in key.key_hash
    assert key.scopes == ["referrals.edit", "referrals.view"]
    assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/referrals").status_code == 200
    listing = _run("list")
    assert "Fax server" in listing and "live" in listing and secret not in listing


def test_revoke_stops_the_key():
    secret = _run("create", "Kiosk", "--scope", "referrals.view").strip()
    assert "Revoked" in _run("revoke", "Kiosk")
    assert ApiKey.objects.get(name="Kiosk").revoked_at is not None
    assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/referrals").status_code == 401


def test_unknown_scopes_missing_scopes_and_unknown_names_are_refused_clearly():
    with pytest.raises(CommandError, match="Unknown scope"):
        _run("create", "Bad", "--scope", "referrals.everything")
    with pytest.raises(CommandError, match="--scope"):
        _run("create", "Bad")
    with pytest.raises(CommandError, match="No API key is named"):
        _run("revoke", "Nobody")
    assert not ApiKey.objects.exists()
