"""A coordinator resolves a FHIR referral that waits because its referring provider is not in the directory."""

import re

import pytest
from django.test import Client
from playwright.sync_api import expect

from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral
from tests.conftest import PASSWORD
from tests.e2e.conftest import TABLET, log_in
from tests.interop.fhir_helpers import HENRY_SEVEN_NPI, api_key, bser_message, post

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_coordinator_adds_the_unknown_provider_and_the_referral_is_made(users, new_page, reference_dir):
    assert post(Client(), "/fhir/Bundle", bser_message(reference_dir), api_key("referrals.edit")).status_code == 202
    page = new_page(viewport=TABLET)
    log_in(page, "coordinator", PASSWORD)
    page.goto("/referrals/")
    expect(page.locator("#waiting-messages")).to_contain_text("1 electronic referral waits for a person")
    page.click("#waiting-messages a")
    row = page.locator("#message-rows tr[data-message]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Patient Everywoman, Eve")
    expect(row).to_contain_text(f"no referring provider with NPI {HENRY_SEVEN_NPI} in the directory")

    page.click("text=Add this provider to the directory")
    expect(page.locator("#id_npi")).to_have_value(HENRY_SEVEN_NPI)
    expect(page.locator("#id_first_name")).to_have_value("Henry")
    expect(page.locator("#id_last_name")).to_have_value("Seven")
    page.fill("#id_fax", "(404) 555-0187")  # reports go by fax unless the office says otherwise
    page.click("button:has-text('Save')")
    expect(page.locator(".flash-success")).to_contain_text("Saved")
    expect(page).to_have_url(re.compile(r"/interfaces/$"))  # back to the message that waits

    page.click("#message-rows button:has-text('Try again')")
    referral = Referral.objects.get()
    expect(page).to_have_url(re.compile(rf"/referrals/{referral.pk}/$"))
    expect(page.locator(".flash-success")).to_contain_text(f"Referral {referral.pk} created")
    assert referral.referring_provider.npi == HENRY_SEVEN_NPI
    assert InterfaceMessage.objects.get().status == "accepted"
