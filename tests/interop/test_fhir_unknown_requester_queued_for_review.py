"""A requester the directory does not hold by NPI is queued for review: nothing is created until a person has
added the referring provider; then a resend (or staff retrying the message) makes the referral."""

from __future__ import annotations

import pytest

from refloop.accounts.models import AuditEvent
from refloop.interop.fhir.intake import fhir_review_retry
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Patient, Referral
from tests.interop.fhir_helpers import (
    HENRY_SEVEN_NPI,
    api_key,
    bser_message,
    fielding_kathy,
    henry_seven,
    post,
    us_core_contained,
    us_core_transaction,
)

pytestmark = pytest.mark.django_db


def test_an_unknown_npi_is_queued_and_creates_nothing(client, reference_dir):
    response = post(client, "/fhir/Bundle", bser_message(reference_dir), api_key("referrals.edit"))
    assert response.status_code == 202
    issue = response.json()["issue"][0]
    assert issue["severity"] == "information" and HENRY_SEVEN_NPI in issue["diagnostics"]
    assert not Referral.objects.exists() and not Patient.objects.exists()
    message = InterfaceMessage.objects.get()
    assert message.status == "review" and message.referral is None
    assert f"no referring provider with NPI {HENRY_SEVEN_NPI}" in message.detail
    assert AuditEvent.objects.filter(action="fhir.intake.review", target_id=str(message.pk)).exists()


def test_a_resend_after_the_provider_was_added_creates_the_referral(client, reference_dir):
    key = api_key("referrals.edit")
    assert post(client, "/fhir/Bundle", bser_message(reference_dir), key).status_code == 202
    assert post(client, "/fhir/Bundle", bser_message(reference_dir), key).status_code == 202
    henry = henry_seven()
    response = post(client, "/fhir/Bundle", bser_message(reference_dir), key)
    assert response.status_code == 201
    message = InterfaceMessage.objects.get()
    assert message.status == "accepted" and message.attempts == 3
    assert message.referral == Referral.objects.get() and message.referral.referring_provider == henry


def test_staff_retry_a_queued_message_once_the_provider_is_in_the_directory(client, reference_dir, users):
    post(client, "/fhir/ServiceRequest", us_core_contained(reference_dir, "servicerequest-rehab.json"),
         api_key("referrals.edit"))  # fmt: skip
    message = InterfaceMessage.objects.get(status="review")
    kathy = fielding_kathy()
    answer = fhir_review_retry(message=message, by=users["coordinator"])
    assert answer.status == 201
    message.refresh_from_db()
    assert message.status == "accepted" and message.referral.referring_provider == kathy
    assert AuditEvent.objects.filter(action="referral.create", actor=users["coordinator"]).count() == 1


def test_a_requester_that_was_not_sent_is_queued(client, reference_dir):
    fielding_kathy()
    bundle = us_core_transaction(reference_dir, "servicerequest-rehab.json")
    del bundle["entry"][2]  # the Practitioner the ServiceRequest names
    response = post(client, "/fhir/Bundle", bundle, api_key("referrals.edit"))
    assert response.status_code == 202
    assert "'Practitioner/practitioner-2' was not sent" in InterfaceMessage.objects.get().detail
    assert not Referral.objects.exists()


def test_an_organization_as_requester_is_queued(client, reference_dir):
    bundle = us_core_transaction(reference_dir, "servicerequest-rehab.json")
    bundle["entry"][0]["resource"]["requester"]["reference"] = "Organization/holy-healthcare"
    response = post(client, "/fhir/Bundle", bundle, api_key("referrals.edit"))
    assert response.status_code == 202
    assert "the requester is an organization" in InterfaceMessage.objects.get().detail
