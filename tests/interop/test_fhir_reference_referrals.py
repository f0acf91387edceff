"""Every real artefact of ../shared/reference/fhir that describes a referral becomes the referral it describes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Channel, Patient, Referral
from tests.interop.fhir_helpers import (
    HENRY_SEVEN_NPI,
    api_key,
    bser_message,
    bser_transaction,
    fielding_kathy,
    fsh_instance,
    henry_seven,
    post,
    us_core_contained,
    us_core_transaction,
)

pytestmark = pytest.mark.django_db

US_CORE = {
    "servicerequest-rehab.json": "Alcohol rehabilitation: Alcohol use disorder (disorder)",
    "servicerequest-foodpantry-referral.json": "Food Pantry Referral",
}
BSER = ["servicerequest-bser-referral-servicerequest-arthritis.fsh", "servicerequest-referral-servicerequest.fsh"]


def _amy_baxter(referral: Referral) -> None:
    """US Core's patient-example: her current (usual) name, not the old one; the address that is not old."""
    patient = referral.patient
    assert (patient.first_name, patient.last_name, patient.birth_date) == ("Amy V.", "Baxter", dt.date(1987, 2, 20))
    assert (patient.address_line1, patient.postal_code, patient.preferred_language) == (
        "183 MOUNTAIN VIEW ST", "74048", "Spanish")  # fmt: skip
    assert patient.sex == "U" and patient.phone == "555-555-5555" and patient.mrn == ""


def _us_core_dates(referral: Referral) -> None:
    assert "Written by the referring provider on 2021-11-12T10:59:38-08:00." in referral.notes
    assert "Requested for 2021-11-20." in referral.notes
    assert abs(referral.received_at - timezone.now()) < dt.timedelta(minutes=1)


@pytest.mark.parametrize("request_name", sorted(US_CORE))
def test_a_us_core_transaction_creates_the_referral_it_describes(client, reference_dir, request_name):
    kathy = fielding_kathy()
    response = post(client, "/fhir/Bundle", us_core_transaction(reference_dir, request_name), api_key("referrals.edit"))
    assert response.status_code == 200, response.content
    referral = Referral.objects.get()
    assert response.json()["type"] == "transaction-response"
    assert response.json()["entry"][0]["response"]["location"] == f"ServiceRequest/{referral.pk}"
    assert referral.referring_provider == kathy and referral.referring_provider.npi == "1245319599"
    assert referral.reason == US_CORE[request_name]
    assert referral.urgency == "routine" and referral.channel == Channel.FHIR and referral.state == "received"
    _amy_baxter(referral)
    _us_core_dates(referral)
    message = InterfaceMessage.objects.get()
    assert (message.protocol, message.direction, message.status) == ("fhir", "in", "accepted")
    assert message.referral == referral and message.sender == "ehr-referrals.edit"
    assert AuditEvent.objects.filter(action="referral.create", actor_label="ehr-referrals.edit").count() == 1


@pytest.mark.parametrize("request_name", sorted(US_CORE))
def test_a_us_core_service_request_with_contained_patient_and_requester_creates_the_referral(
    client, reference_dir, request_name
):
    kathy = fielding_kathy()
    response = post(client, "/fhir/ServiceRequest", us_core_contained(reference_dir, request_name),
                    api_key("referrals.edit"))  # fmt: skip
    assert response.status_code == 201, response.content
    referral = Referral.objects.get()
    assert response["Location"].endswith(f"/fhir/ServiceRequest/{referral.pk}")
    assert response.json()["resourceType"] == "ServiceRequest" and response.json()["id"] == str(referral.pk)
    assert referral.referring_provider == kathy and referral.reason == US_CORE[request_name]
    _amy_baxter(referral)
    _us_core_dates(referral)


@pytest.mark.parametrize("fsh", BSER)
def test_a_bser_service_request_creates_the_referral_with_its_placer_identifier_and_coverage(
    client, reference_dir, fsh
):
    henry = henry_seven()
    response = post(client, "/fhir/Bundle", bser_transaction(reference_dir, fsh), api_key("referrals.edit"))
    assert response.status_code == 200, response.content
    referral = Referral.objects.get()
    assert referral.referring_provider == henry and referral.referring_provider.npi == HENRY_SEVEN_NPI
    assert referral.reason == "Patient referral: Arthritis (disorder)"
    assert referral.external_id == "88888888"
    assert referral.idempotency_key.endswith("|88888888")
    assert "Written by the referring provider on 2020-02-14." in referral.notes
    assert "Requested for 2020-01-09." in referral.notes
    patient = referral.patient
    assert (patient.first_name, patient.last_name, patient.birth_date) == ("Eve", "Everywoman", dt.date(1955, 7, 23))
    assert (patient.payer, patient.plan, patient.member_id) == ("Blue Lake Health Plan", "Gold PPO", "AB12345")


def test_the_bser_message_bundle_creates_the_referral_and_answers_with_its_task(client, reference_dir):
    henry = henry_seven()
    response = post(client, "/fhir/Bundle", bser_message(reference_dir), api_key("referrals.edit"))
    assert response.status_code == 201, response.content
    referral = Referral.objects.get()
    body = response.json()
    assert body["type"] == "message"
    header = body["entry"][0]["resource"]
    assert header["response"] == {"identifier": "messageheader-bser-referral-messageheader", "code": "ok"}
    task = body["entry"][1]["resource"]
    assert task["id"] == str(referral.pk) and task["status"] == "requested"
    assert task["businessStatus"]["coding"][0]["code"] == "2.0"
    # The ServiceRequest's subject names an id the Bundle does not hold: a message is about its one Patient.
    assert referral.patient.last_name == "Everywoman" and referral.referring_provider == henry
    assert InterfaceMessage.objects.get().message_type == "Bundle/message"


def test_a_resent_request_returns_the_same_referral_and_creates_nothing(client, reference_dir):
    fielding_kathy()
    key = api_key("referrals.edit")
    first = post(client, "/fhir/ServiceRequest", us_core_contained(reference_dir, "servicerequest-rehab.json"), key)
    again = post(client, "/fhir/ServiceRequest", us_core_contained(reference_dir, "servicerequest-rehab.json"), key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first["Location"] == again["Location"] and first.json()["id"] == again.json()["id"]
    assert Referral.objects.count() == 1 and Patient.objects.count() == 1
    assert InterfaceMessage.objects.get().attempts == 1


def test_a_resent_bundle_from_another_key_finds_the_referral_by_its_placer_identifier(client, reference_dir):
    henry_seven()
    bundle = bser_transaction(reference_dir, BSER[0])
    first = post(client, "/fhir/Bundle", bundle, api_key("referrals.edit", name="hie"))
    bundle["entry"][0]["resource"]["id"] = "renamed-by-the-sender"
    again = post(client, "/fhir/Bundle", bundle, api_key("referrals.edit", name="ehr"))
    assert first.json()["entry"][0]["response"]["location"] == again.json()["entry"][0]["response"]["location"]
    assert (first.json()["entry"][0]["response"]["status"], again.json()["entry"][0]["response"]["status"]) == (
        "201 Created", "200 OK")  # fmt: skip
    assert Referral.objects.count() == 1 and InterfaceMessage.objects.count() == 2
    assert AuditEvent.objects.filter(action="fhir.referral.resend", actor_label="ehr").count() == 1


def test_a_us_core_document_reference_that_is_not_pdf_is_listed_and_a_pdf_is_attached(client, reference_dir):
    fielding_kathy()
    bundle = us_core_transaction(reference_dir, "servicerequest-rehab.json")
    ccd = json.loads((reference_dir / "fhir/us-core/documentreference-episode-summary.json").read_text())
    pdf = {"resourceType": "Binary", "id": "letter", "contentType": "application/pdf",
           "data": "JVBERi0xLjQKJSVFT0YK"}  # "%PDF-1.4\n%%EOF\n"  # fmt: skip
    for resource in (ccd, pdf):
        bundle["entry"].append({"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}})
    response = post(client, "/fhir/Bundle", bundle, api_key("referrals.edit"))
    assert response.status_code == 200, response.content
    referral = Referral.objects.get()
    assert [a.content_type for a in referral.attachments.all()] == ["application/pdf"]
    assert "Bundle.entry[4].resource.content[0].attachment: A application/xml document is not kept" in (
        InterfaceMessage.objects.get().detail
    )


def test_the_bser_and_sdoh_tasks_are_progress_not_referrals(client, reference_dir):
    key = api_key("referrals.edit")
    task = fsh_instance(reference_dir / "fhir/bser/task-bser-referraltask.fsh")
    sdoh = json.loads((reference_dir / "fhir/sdoh-cc/SDOHCC-Task-OrderFulfillment-Example-1.json").read_text())
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": t, "request": {"method": "POST", "url": "Task"}} for t in (task, sdoh)]}  # fmt: skip
    response = post(client, "/fhir/Bundle", bundle, key)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry"]
    assert post(client, "/fhir/Task", task, key).status_code == 405
    assert not Referral.objects.exists()
