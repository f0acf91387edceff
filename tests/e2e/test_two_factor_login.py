"""In a browser: a manager types the authenticator's code after the password; a new administrator enrols."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import TOTP
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _password_step(page, username: str) -> None:
    page.goto("/insights/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_a_manager_is_asked_for_the_code_and_then_lands_where_she_was_going(users, new_page):
    from tests.conftest import totp_code

    page = new_page()
    _password_step(page, "manager")
    expect(page).to_have_url(re.compile(r"/account/two-factor/\?next=%2Finsights%2F$"))
    expect(page.locator("h1")).to_have_text("Enter your code")
    page.fill("#id_token", "000000")
    page.click("form.stacked button[type=submit]")
    expect(page.locator(".field-error")).to_contain_text("not right")
    page.wait_for_timeout(1100)  # the device's throttle after one wrong code
    page.fill("#id_token", totp_code(users["manager"]))
    page.click("form.stacked button[type=submit]")
    expect(page).to_have_url(re.compile(r"/insights/$"))


def test_a_new_administrator_enrols_from_the_secret_shown_on_the_page(users, new_page):
    get_user_model().objects.create_user(username="newadmin", password=PASSWORD, role="admin")
    page = new_page()
    _password_step(page, "newadmin")
    expect(page.locator("h1")).to_have_text("Set up two-factor sign-in")
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    import base64

    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    code = f"{TOTP(key).token():06d}"
    page.fill("#id_token", code)
    page.click("form.stacked button[type=submit]")
    expect(page).to_have_url(re.compile(r"/insights/$"))
    page.goto("/settings/")
    expect(page.locator("h1")).to_have_text("Settings")
