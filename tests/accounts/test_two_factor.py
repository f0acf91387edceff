"""TOTP two-factor: required for administrators and managers, optional (then required) for everyone else."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from refloop.accounts.models import AuditEvent
from tests.conftest import PASSWORD, make_user, totp_code

pytestmark = pytest.mark.django_db


def _password_only(username: str, next_url: str = "/") -> Client:
    client = Client()
    response = client.post(f"/login/?next={next_url}", {"username": username, "password": PASSWORD, "next": next_url})
    assert response.status_code == 302
    return client


def test_a_manager_with_only_a_password_reaches_nothing_but_the_code_page(users):
    client = _password_only("manager")
    response = client.get("/insights/")
    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/?next=%2Finsights%2F"
    assert client.get("/referrals/").status_code == 302
    assert client.get("/settings/").status_code == 302


def test_the_right_code_opens_the_app_and_returns_to_the_page_asked_for(users):
    client = _password_only("manager")
    response = client.post("/account/two-factor/", {"token": totp_code(users["manager"]), "next": "/insights/"})
    assert response.status_code == 302 and response["Location"] == "/insights/"
    assert client.get("/settings/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.otp_verify", actor=users["manager"]).exists()


def test_a_wrong_code_is_refused_said_and_audited(users):
    client = _password_only("admin")
    right = totp_code(users["admin"])
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = client.post("/account/two-factor/", {"token": wrong, "next": "/settings/"})
    assert response.status_code == 200
    assert b"That code is not right" in response.content
    assert client.get("/settings/").status_code == 302
    assert AuditEvent.objects.filter(action="auth.otp_failed", actor=users["admin"]).count() == 1


def test_a_code_cannot_be_used_twice(users):
    code = totp_code(users["manager"])
    first = _password_only("manager")
    assert first.post("/account/two-factor/", {"token": code}).status_code == 302
    second = _password_only("manager")
    response = second.post("/account/two-factor/", {"token": code})
    assert response.status_code == 200 and b"already used" in response.content


def test_repeated_wrong_codes_are_throttled(users):
    client = _password_only("manager")
    client.post("/account/two-factor/", {"token": "000000"})
    device = TOTPDevice.objects.get(user=users["manager"])
    assert device.throttling_failure_count == 1
    # the next try, even with the right code, waits out the throttle (doubling after each failure)
    right = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    assert client.post("/account/two-factor/", {"token": right}).status_code == 200
    assert client.get("/settings/").status_code == 302
    assert AuditEvent.objects.filter(action="auth.otp_failed", detail__throttled=True).count() == 1


def test_a_required_user_without_a_device_enrols_with_a_qr_code_and_the_secret(db):
    make_user("newadmin", "coordinator")  # created as a coordinator: no device
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="newadmin").update(role="admin")
    client = _password_only("newadmin")
    page = client.get("/account/two-factor/?next=/settings/")
    html = page.content.decode()
    assert "<svg" in html and "Set up two-factor sign-in" in html
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html).group(1)
    device = TOTPDevice.objects.get(user__username="newadmin", confirmed=False)
    import base64

    assert base64.b32decode(secret.replace(" ", "") + "=" * (-len(secret.replace(" ", "")) % 8)) == device.bin_key
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    response = client.post("/account/two-factor/", {"token": code, "next": "/settings/"})
    assert response["Location"] == "/settings/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/settings/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.otp_enrol", actor_label="newadmin").exists()


def test_a_coordinator_is_not_asked_for_a_code(users):
    client = _password_only("coordinator")
    assert client.get("/referrals/").status_code == 200


def test_a_coordinator_who_turns_it_on_is_asked_for_it_from_then_on(users):
    client = _password_only("coordinator")
    assert client.post("/account/two-factor/enrol/").status_code == 302
    device = TOTPDevice.objects.get(user=users["coordinator"], confirmed=False)
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    assert client.post("/account/two-factor/", {"token": code}).status_code == 302
    later = _password_only("coordinator")
    assert later.get("/referrals/")["Location"].startswith("/account/two-factor/")


def test_an_administrator_resets_a_lost_device(client_as, users):
    response = client_as("admin").post(f"/account/users/{users['manager'].pk}/two-factor/reset/")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=users["manager"]).exists()
    assert AuditEvent.objects.filter(action="auth.otp_reset", target_id=str(users["manager"].pk)).exists()
    assert client_as("coordinator").post(f"/account/users/{users['admin'].pk}/two-factor/reset/").status_code == 403
    assert TOTPDevice.objects.filter(user=users["admin"]).exists()


def test_public_pages_and_logout_stay_reachable_before_the_code(users):
    client = _password_only("manager")
    assert client.get("/healthz").status_code == 200
    assert client.post("/logout/").status_code == 302


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "'; DROP TABLE x; --"])
def test_after_the_code_a_next_that_is_not_a_local_page_leads_home(users, next_url):
    client = _password_only("manager")
    response = client.post("/account/two-factor/", {"token": totp_code(users["manager"]), "next": next_url})
    assert response.status_code == 302 and response["Location"] == "/"
