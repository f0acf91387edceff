import re

import pytest
from playwright.sync_api import expect

from refloop.accounts.roles import MATRIX, NAVIGATION, Role
from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_each_role_logs_in_and_sees_its_navigation(role, users, new_page):
    page = new_page()
    log_in(page, role, PASSWORD)
    nav = page.locator("nav.mainnav a")
    expected = [label for label, _, action in NAVIGATION if role in MATRIX[action]]
    expect(nav).to_have_text(expected)
    expect(page.locator(".who-role")).to_have_text(Role(role).label)


def test_a_coordinator_is_refused_manager_pages(users, new_page):
    page = new_page()
    log_in(page, "coordinator", PASSWORD)
    response = page.goto("/insights/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    assert page.goto("/settings/").status == 403


def test_an_anonymous_visitor_is_sent_to_login(new_page, db):
    page = new_page()
    page.goto("/outreach/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/outreach/$"))
    expect(page.locator("#id_username")).to_be_visible()


def test_a_wrong_password_is_told_and_the_user_stays_on_login(users, new_page):
    page = new_page()
    log_in(page, "manager", "not-the-password")
    expect(page.locator(".form-error")).to_contain_text("correct username and password")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_the_shell_fits_a_phone_and_search_answers_as_you_type(users, new_page):
    from refloop.practice.models import Clinician

    Clinician.objects.create(first_name="Ana", last_name="Silvestri", npi="1234567893", credentials="MD")
    page = new_page(viewport=PHONE)
    log_in(page, "manager", PASSWORD)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    page.fill("input[type=search]", "silv")
    expect(page.locator("#search-results")).to_contain_text("Ana Silvestri, MD")
    page.locator("#search-results a").first.click()
    expect(page.locator("h1")).to_contain_text("Ana Silvestri")


def test_logging_out_returns_to_login(users, new_page):
    page = new_page()
    log_in(page, "liaison", PASSWORD)
    page.click("text=Log out")
    expect(page).to_have_url(re.compile(r"/login/$"))
    assert page.goto("/outreach/").url.endswith("/login/?next=/outreach/")
