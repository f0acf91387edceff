import re

import pytest
from playwright.sync_api import expect

from refloop.directory.models import ReferringProvider
from tests.conftest import PASSWORD
from tests.directory.factories import practice, provider
from tests.e2e.conftest import TABLET, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_coordinator_finds_a_provider_as_they_type_and_changes_the_report_channel(users, new_page):
    target = provider(first_name="Imogen", last_name="Castellanos", fax="(614) 555-0143")
    for n in range(30):
        provider(first_name="Other", last_name=f"Provider{n:02d}")
    page = new_page(viewport=TABLET)
    log_in(page, "coordinator", PASSWORD)
    page.goto("/directory/")
    page.fill("#directory-q", "castel")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=castel"))
    page.click("text=Imogen Castellanos, MD")
    expect(page.locator("h1")).to_have_text("Imogen Castellanos, MD")
    expect(page.locator("#report-channel")).to_have_text("Fax")

    page.click("text=Edit")
    page.select_option("#id_report_channel", "direct")
    page.click("button:has-text('Save')")
    expect(page.locator(".field-error")).to_contain_text("give a Direct address")
    page.fill("#id_direct_address", "icastellanos@direct.dublinfm.example")
    page.click("button:has-text('Save')")
    expect(page.locator(".flash-success")).to_contain_text("Saved")
    expect(page.locator("#report-channel")).to_have_text("Direct secure message")
    target.refresh_from_db()
    assert (target.report_channel, target.direct_address) == (
        "direct",
        "icastellanos@direct.dublinfm.example",
    )


def test_a_liaison_links_a_provider_to_a_practice_with_office_days(users, new_page):
    office = practice(name="Hilliard Primary Care")
    doc = provider(first_name="Theo", last_name="Marsh")
    page = new_page()
    log_in(page, "liaison", PASSWORD)
    page.goto(f"/directory/providers/{doc.pk}/")
    page.click("summary:has-text('Add a practice')")
    page.fill("#practice_q", "hilli")
    page.check(f"input[name=practice][value='{office.pk}']")
    page.check("input[name=days][value=tue]")
    page.check("input[name=days][value=fri]")
    page.click("button:has-text('Add')")
    expect(page.locator("#practices")).to_contain_text("Hilliard Primary Care")
    expect(page.locator("#practices")).to_contain_text("Tue, Fri")
    assert ReferringProvider.objects.get(pk=doc.pk).affiliations.get().days == ["tue", "fri"]
