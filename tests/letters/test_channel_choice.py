"""A letter goes by the recipient's preferred channel, or by the next one that has an address, saying why."""

from __future__ import annotations

import pytest

from refloop.directory.services import affiliation_set
from refloop.letters.channels import route_for_patient, route_for_provider
from refloop.letters.models import Delivery, DeliveryChannel, DeliveryStatus
from tests.directory.factories import practice, provider
from tests.letters.conftest import run_worker
from tests.letters.factories import only_rules
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def test_the_preferred_channel_is_used_when_its_address_is_on_file():
    route = route_for_provider(provider(report_channel="direct", direct_address="dr@direct.dublin-fm.example"))
    assert (route.channel, route.address, route.note) == ("direct", "dr@direct.dublin-fm.example", "")


def test_a_missing_direct_address_falls_back_to_fax_and_says_why():
    route = route_for_provider(provider(report_channel="direct", fax="(614) 555-0143"))
    assert (route.channel, route.address) == ("fax", "6145550143")
    assert route.note == "Prefers direct secure message; no direct secure message on file."


def test_a_provider_without_any_fax_falls_back_to_the_office_fax():
    office = practice(fax="614-555-0201")
    source = provider(report_channel="fax", fax="", phone="")
    affiliation_set(provider=source, practice=office, is_primary=True)
    route = route_for_provider(source, office)
    assert (route.channel, route.address) == ("fax", "6145550201")


def test_mail_goes_to_the_print_queue_and_a_patient_without_email_gets_mail():
    route = route_for_provider(
        provider(report_channel="mail", address_line1="1 Main St", city="Dublin", state="OH", postal_code="43017")
    )
    assert route.channel == "mail" and "1 Main St" in route.address
    from refloop.referrals.models import Patient

    patient = Patient(
        first_name="Mira",
        last_name="Quayle",
        address_line1="9 Elm St",
        city="Columbus",
        state="OH",
        postal_code="43215",
    )
    assert route_for_patient(patient).channel == "mail"


@pytest.mark.django_db(transaction=True)
def test_fax_without_a_gateway_fails_at_once_for_a_person_to_redirect(users, settings):
    settings.LETTERS_FAX_GATEWAY = ""
    only_rules("receive")
    referral(by=users["coordinator"], source=provider(report_channel="fax"))
    run_worker()
    delivery = Delivery.objects.get()
    assert delivery.channel == DeliveryChannel.FAX and delivery.status == DeliveryStatus.FAILED
    assert "REFLOOP_FAX_GATEWAY" in delivery.answer
