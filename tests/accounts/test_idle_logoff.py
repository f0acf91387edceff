"""Automatic logoff after the practice's idle period, decided by the server; the idle timer's checks are no activity."""

from __future__ import annotations

import time

import pytest

from refloop.accounts.middleware import SESSION_SEEN
from refloop.accounts.models import AuditEvent
from refloop.practice.models import SecuritySettings

pytestmark = pytest.mark.django_db


def _idle_for(client, seconds: float) -> None:
    session = client.session
    session[SESSION_SEEN] = time.time() - seconds
    session.save()


def test_the_default_is_fifteen_minutes():
    assert SecuritySettings.current().idle_logoff_minutes == 15


def test_a_user_idle_past_the_limit_is_logged_off_and_sent_to_login_with_the_page(client_as, users):
    client = client_as("coordinator")
    assert client.get("/referrals/").status_code == 200
    _idle_for(client, 15 * 60 + 1)
    response = client.get("/referrals/?tab=new")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Freferrals%2F%3Ftab%3Dnew"
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="auth.logout", actor=users["coordinator"])
    assert event.detail["reason"] == "idle"


def test_a_user_active_within_the_limit_stays(client_as):
    client = client_as("coordinator")
    client.get("/referrals/")
    _idle_for(client, 14 * 60)
    assert client.get("/referrals/").status_code == 200
    assert time.time() - client.session[SESSION_SEEN] < 5  # the request counted as activity


def test_the_practice_setting_is_what_counts(client_as):
    SecuritySettings.objects.create(pk=1, idle_logoff_minutes=2)
    client = client_as("liaison")
    client.get("/outreach/")
    _idle_for(client, 3 * 60)
    assert client.get("/outreach/").status_code == 302


def test_the_timers_check_tells_the_time_left_without_counting_as_activity(client_as):
    client = client_as("liaison")
    client.get("/outreach/")
    _idle_for(client, 10 * 60)
    seen = client.session[SESSION_SEEN]
    remaining = client.get("/account/session/").json()["remaining"]
    assert 4 * 60 <= remaining <= 5 * 60
    assert client.session[SESSION_SEEN] == seen
    stay = client.post("/account/session/").json()["remaining"]
    assert stay == 15 * 60 and time.time() - client.session[SESSION_SEEN] < 5


def test_the_timers_check_after_the_limit_logs_off_and_says_so(client_as):
    client = client_as("liaison")
    client.get("/outreach/")
    _idle_for(client, 16 * 60)
    response = client.get("/account/session/")
    assert response.status_code == 401 and response.json() == {"remaining": 0, "logged_off": True}
    assert "_auth_user_id" not in client.session


def test_a_manager_sets_the_period_and_it_is_audited(client_as, users):
    response = client_as("manager").post("/settings/security/", {"idle_logoff_minutes": "30"})
    assert response.status_code == 302
    assert SecuritySettings.current().idle_logoff_minutes == 30
    event = AuditEvent.objects.get(action="settings.security")
    assert event.detail["idle_logoff_minutes"] == [15, 30] and event.actor == users["manager"]


def test_a_period_out_of_range_is_refused_by_name(client_as):
    response = client_as("manager").post("/settings/security/", {"idle_logoff_minutes": "0"})
    assert response.status_code == 200
    assert b"greater than or equal to 1" in response.content
    assert not SecuritySettings.objects.exists()


def test_pages_carry_the_period_for_the_warning_script_and_no_inline_script(client_as):
    html = client_as("coordinator").get("/referrals/").content.decode()
    assert 'data-idle-seconds="900"' in html and "refloop/idle.js" in html
