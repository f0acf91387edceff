"""A clinician signs and sends a consult report; the worker delivers it; the coordinator sees it delivered; the
referring office's status link shows the report, and shows nothing once the link is revoked."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from refloop.directory.services import affiliation_set
from refloop.letters.models import ConsultReport, Delivery, DeliveryStatus
from refloop.referrals.models import Referral
from refloop.referrals.workflow import State
from tests.conftest import PASSWORD
from tests.directory.factories import practice, provider
from tests.e2e.conftest import TABLET, log_in
from tests.letters.conftest import ensure_letter_defaults, fax_gateway, run_worker  # noqa: F401 - fixture
from tests.letters.factories import letterhead, only_rules, seen_referral
from tests.referrals.factories import clinician

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_signed_report_reaches_the_office_and_its_status_link(users, new_page, fax_gateway):  # noqa: F811
    ensure_letter_defaults()
    letterhead()
    only_rules()
    office = practice(name="Dublin Family Medicine")
    source = provider(first_name="Imogen", last_name="Castellanos", report_channel="fax", fax="(614) 555-0143")
    affiliation_set(provider=source, practice=office, is_primary=True)
    doctor = clinician(user=users["clinician"])
    item = seen_referral(
        by=users["coordinator"],
        source=source,
        doctor=doctor,
        patient_data={"first_name": "Mira", "last_name": "Quayle", "birth_date": dt.date(1961, 4, 9)},
    )

    page = new_page(viewport=TABLET)
    log_in(page, "clinician", PASSWORD)
    page.goto(f"/referrals/{item.pk}/")
    expect(page.locator("#report-clock")).to_contain_text("Report due in")
    page.click("a[data-action=write-report]")
    page.fill("#id_findings", "Medial joint line tenderness; McMurray positive.")
    page.fill("#id_assessment", "Degenerative tear of the medial meniscus.")
    page.fill("#id_plan", "Physical therapy twice a week for six weeks.")
    page.click("#report-form button[type=submit]")
    expect(page.locator("#report-status")).to_have_text("Draft")
    page.click("button[data-action=sign]")
    expect(page.locator("#report-status")).to_have_text("Signed")
    expect(page.locator("#report-signature")).to_contain_text("Ana Ortega, MD")
    page.click("button[data-action=send]")
    expect(page.locator("h1")).to_have_text("Mira Quayle")
    expect(page.locator("#referral-letters [data-delivery-status]")).to_have_text("Fax · Queued")

    run_worker()  # `refloop worker`: the page only queued the report
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert len(fax_gateway.received) == 1 and ConsultReport.objects.get().status == "sent"

    coordinator = new_page(viewport=TABLET)
    log_in(coordinator, "coordinator", PASSWORD)
    coordinator.goto(f"/referrals/{item.pk}/")
    expect(coordinator.locator("#referral-state")).to_have_text("Report sent")
    expect(coordinator.locator("#referral-letters [data-delivery-status]")).to_have_text("Fax · Delivered")
    expect(coordinator.locator("#report-clock")).to_contain_text("Report sent after 0 business days")
    assert Referral.objects.get(pk=item.pk).state == State.REPORT_SENT

    coordinator.goto("/letters/links/?q=dublin")
    coordinator.click(f"button[data-practice='{office.pk}']")
    status_url = coordinator.locator("#status-link-url").input_value()

    office_page = new_page()
    office_page.goto(status_url)
    row = office_page.locator(f"#status-rows tr[data-referral='{item.pk}']")
    expect(row.locator(".status")).to_have_text("Report sent")
    expect(row).to_contain_text("M.Q. (born 1961)")
    expect(office_page.locator("body")).not_to_contain_text("Quayle")
    report_link = row.locator("a[data-report]")
    expect(report_link).to_have_count(1)
    download = office_page.request.get(report_link.get_attribute("href"))
    assert download.ok and download.body().startswith(b"%PDF-")

    coordinator.goto("/letters/links/")
    coordinator.click("#status-links button[data-action=revoke]")
    expect(coordinator.locator("#status-links tr.inactive")).to_have_count(1)
    office_page.goto(status_url)
    expect(office_page.locator("h1")).to_have_text("This link is not available")
    expect(office_page.locator("body")).not_to_contain_text("M.Q.")
