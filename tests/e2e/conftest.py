"""Browser tests: Debian's Chromium driven by Playwright against the app on a free port (pytest-django's
live_server, a real HTTP server thread sharing the test database).

Without /usr/bin/chromium the tests are skipped with the reason, except under CI, where they fail: a CI run
that silently skipped its browser tests would hide a missing install step.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls made by the test itself are still
# synchronous and safe, so Django's guard against ORM calls inside an event loop is lifted for these tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM}: install it with `apt-get install -y chromium`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """new_page(viewport=PHONE) -> a fresh browser tab (own cookies) pointed at the live server."""
    contexts = []

    def open_page(viewport: dict | None = None):
        context = browser.new_context(
            base_url=live_server.url, viewport=viewport or {"width": 1280, "height": 800}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def log_in(page, username: str, password: str) -> None:
    """Log in as a person would, typing the authenticator's current code when the account asks for one."""
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/account/two-factor/" in page.url and page.locator("#id_token").count():
        from django.contrib.auth import get_user_model

        from tests.conftest import totp_code

        page.fill("#id_token", totp_code(get_user_model().objects.get(username=username)))
        page.click("form.stacked button[type=submit]")
        page.wait_for_load_state("networkidle")
