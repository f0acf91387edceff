"""Password reset by email through Django's views and the project's mail settings; the link works once."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from refloop.accounts.models import AuditEvent

pytestmark = pytest.mark.django_db
NEW = "juniper-tide-harvest-31"


def _ask(users) -> str:
    users["liaison"].email = "lena@lakeside.example"
    users["liaison"].save(update_fields=["email"])
    response = Client().post("/account/password/reset/", {"email": "lena@lakeside.example"})
    assert response.status_code == 302 and response["Location"] == "/account/password/reset/sent/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["lena@lakeside.example"] and message.subject == "refloop: reset your password"
    return re.search(r"https?://[^/\s]+(/account/password/reset/\S+/)", message.body).group(1)


def test_the_emailed_link_sets_a_new_password_once_and_ends_other_sessions(users, client_as):
    other_session = client_as("liaison")
    link = _ask(users)
    client = Client()
    form = client.get(link, follow=True)
    assert b"Set a new password" in form.content
    response = client.post(form.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302 and response["Location"] == "/account/password/reset/done/"
    users["liaison"].refresh_from_db()
    assert users["liaison"].check_password(NEW)
    assert other_session.get("/outreach/").status_code == 302
    assert AuditEvent.objects.filter(action="auth.password_change", target_id=str(users["liaison"].pk)).exists()
    again = Client().get(link, follow=True)
    assert b"This link does not work" in again.content


def test_the_password_rules_apply_to_a_reset(users):
    link = _ask(users)
    client = Client()
    form = client.get(link, follow=True)
    response = client.post(form.redirect_chain[-1][0], {"new_password1": "short", "new_password2": "short"})
    assert response.status_code == 200 and b"too short" in response.content
    users["liaison"].refresh_from_db()
    assert not users["liaison"].check_password("short")


def test_an_unknown_address_gets_the_same_answer_and_no_email(users):
    response = Client().post("/account/password/reset/", {"email": "nobody@example.org"})
    assert response.status_code == 302 and response["Location"] == "/account/password/reset/sent/"
    assert mail.outbox == []


def test_the_login_page_links_to_the_reset(db):
    assert b'href="/account/password/reset/"' in Client().get("/login/").content
