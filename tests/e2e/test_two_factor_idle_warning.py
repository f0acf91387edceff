"""The idle-logoff warning in a browser: it warns before the server's limit, "Stay logged in" keeps the session,
and once the server has logged the user off the page goes to the login page (fake page clock, real server)."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from refloop.accounts.middleware import SESSION_SEEN
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _seen_ago(page, seconds: float) -> None:
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=key)
    session[SESSION_SEEN] = time.time() - seconds
    session.save()


def test_the_page_warns_keeps_the_session_on_request_and_leaves_when_logged_off(users, new_page):
    page = new_page()
    page.clock.install()
    log_in(page, "coordinator", PASSWORD)
    page.goto("/referrals/")
    assert page.locator("body").get_attribute("data-idle-seconds") == "900"
    _seen_ago(page, 15 * 60 - 40)  # the server's clock: 40 seconds left
    page.clock.run_for(14 * 60 * 1000 + 1000)  # the page's clock reaches its first check
    banner = page.locator(".idle-warning")
    expect(banner).to_contain_text("You will be logged off in")
    page.click("text=Stay logged in")
    expect(banner).to_have_count(0)
    assert page.goto("/referrals/").status == 200  # still logged in

    _seen_ago(page, 16 * 60)
    page.clock.run_for(15 * 60 * 1000)
    expect(page).to_have_url(re.compile(r"/login/\?next=%2Freferrals%2F$"))
    assert page.goto("/referrals/").url.endswith("/login/?next=/referrals/")
