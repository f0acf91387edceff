"""Logins, failed logins, lockouts, logouts, password and role changes all land in the audit trail."""

from __future__ import annotations

import pytest
from django.test import Client

from refloop.accounts.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _actions(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("seq").values_list("action", flat=True))


def test_a_login_and_a_logout_are_recorded_with_the_address(users):
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.post("/login/", {"username": "coordinator", "password": PASSWORD})
    client.post("/logout/")
    login = AuditEvent.objects.get(action="auth.login", actor=users["coordinator"])
    assert login.detail == {"ip": "10.1.2.3"}
    logout = AuditEvent.objects.get(action="auth.logout", actor=users["coordinator"])
    assert logout.detail["reason"] == "user"


def test_a_failed_login_is_recorded_against_the_account_without_the_password(users):
    Client(REMOTE_ADDR="10.9.9.9").post("/login/", {"username": "liaison", "password": "guess-one"})
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.actor is None and event.actor_label == "liaison"
    assert event.target_id == str(users["liaison"].pk) and event.detail == {"ip": "10.9.9.9"}
    assert "guess-one" not in str(event.detail)


def test_repeated_failures_lock_the_account_even_with_the_right_password(users, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "clinician", "password": "wrong-wrong"})
    assert AuditEvent.objects.filter(action="auth.lockout", actor_label="clinician").count() == 1
    response = client.post("/login/", {"username": "clinician", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Account locked" in response.content
    assert "_auth_user_id" not in client.session
    # another account on the same address is not locked out with it
    other = Client()
    assert other.post("/login/", {"username": "coordinator", "password": PASSWORD}).status_code == 302


def test_a_password_change_is_recorded_and_ends_the_other_sessions(client_as, users):
    elsewhere = client_as("liaison")
    here = client_as("liaison")
    new = "quince-harbor-meadow-77"
    response = here.post(
        "/account/password/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    users["liaison"].refresh_from_db()
    assert users["liaison"].check_password(new)
    assert here.get("/outreach/").status_code == 200  # this session carries on
    assert elsewhere.get("/outreach/").status_code == 302  # the other one is logged out
    event = AuditEvent.objects.get(action="auth.password_change")
    assert event.actor == users["liaison"] and event.target_id == str(users["liaison"].pk)


def test_a_role_change_names_who_made_it_and_the_roles(client_as, users):
    person = users["coordinator"]
    response = client_as("admin").post(
        f"/settings/users/{person.pk}/",
        {"username": "coordinator", "first_name": "C", "last_name": "T", "role": "manager", "is_active": "on"},
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.role_change")
    assert event.actor == users["admin"] and event.target_id == str(person.pk)
    assert event.detail == {"from": "coordinator", "to": "manager"}


def test_deactivating_an_account_is_a_permission_change(client_as, users):
    person = users["liaison"]
    client_as("admin").post(
        f"/settings/users/{person.pk}/",
        {"username": "liaison", "first_name": "L", "last_name": "T", "role": "liaison"},
    )
    event = AuditEvent.objects.get(action="auth.permission_change")
    assert event.detail == {"field": "is_active", "from": True, "to": False}
    assert event.actor == users["admin"]


def test_a_last_login_update_is_not_mistaken_for_an_account_change(users):
    Client().post("/login/", {"username": "coordinator", "password": PASSWORD})
    assert _actions(target_id=str(users["coordinator"].pk)) == ["auth.user_create", "auth.login"]
