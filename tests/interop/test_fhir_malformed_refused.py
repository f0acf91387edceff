"""Malformed variants of every real referral artefact are refused with the element named, and create nothing."""

from __future__ import annotations

import json

import pytest

from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Patient, Referral
from tests.interop.fhir_helpers import (
    NPI,
    api_key,
    bser_message,
    bser_transaction,
    fielding_kathy,
    henry_seven,
    post,
    us_core_contained,
    us_core_transaction,
)

pytestmark = pytest.mark.django_db


def _entry(i: int) -> str:
    return f"Bundle.entry[{i}].resource"


ARTHRITIS = "servicerequest-bser-referral-servicerequest-arthritis.fsh"

# name -> (endpoint, builder, where the ServiceRequest, the Patient and the requester's NPI identifier are)
ARTEFACTS = {
    "us-core rehab, contained": ("ServiceRequest", lambda d: us_core_contained(d, "servicerequest-rehab.json"),
                                 "ServiceRequest", "ServiceRequest.contained[0]", "ServiceRequest.contained[1]"),
    "us-core food pantry, contained": ("ServiceRequest",
                                       lambda d: us_core_contained(d, "servicerequest-foodpantry-referral.json"),
                                       "ServiceRequest", "ServiceRequest.contained[0]", "ServiceRequest.contained[1]"),
    "us-core rehab, transaction": ("Bundle", lambda d: us_core_transaction(d, "servicerequest-rehab.json"),
                                   _entry(0), _entry(1), _entry(2)),
    "bser arthritis": ("Bundle", lambda d: bser_transaction(d, ARTHRITIS),
                       _entry(0), _entry(1), f"{_entry(2)}.practitioner"),
    "bser referral": ("Bundle", lambda d: bser_transaction(d, "servicerequest-referral-servicerequest.fsh"),
                      _entry(0), _entry(1), f"{_entry(2)}.practitioner"),
    "bser message": ("Bundle", bser_message, _entry(1), _entry(2), f"{_entry(4)}.practitioner"),
}  # fmt: skip


def _at(body: dict, where: str) -> dict:
    """The object at a FHIRPath-like location such as Bundle.entry[2].resource.practitioner."""
    node = body
    for step in where.split(".")[1:]:
        name, _, index = step.partition("[")
        node = node[name]
        if index:
            node = node[int(index.rstrip("]"))]
    return node


def _identifier(body: dict, where: str) -> tuple[dict, str]:
    holder = _at(body, where)
    if isinstance(holder.get("identifier"), dict):  # a logical reference
        return holder["identifier"], f"{where}.identifier.value"
    i = next(n for n, ident in enumerate(holder["identifier"]) if ident["system"] == NPI)
    return holder["identifier"][i], f"{where}.identifier[{i}].value"


def _draft(body, sr, patient, who):
    _at(body, sr)["status"] = "draft"
    return 422, f"{sr}.status"


def _impossible_date(body, sr, patient, who):
    _at(body, sr)["authoredOn"] = "2021-02-30"
    return 400, f"{sr}.authoredOn"


def _no_birth_date(body, sr, patient, who):
    del _at(body, patient)["birthDate"]
    return 422, f"{patient}.birthDate"


def _partial_birth_date(body, sr, patient, who):
    _at(body, patient)["birthDate"] = "1987"
    return 422, f"{patient}.birthDate"


def _unknown_priority(body, sr, patient, who):
    _at(body, sr)["priority"] = "whenever"
    return 422, f"{sr}.priority"


def _unknown_element(body, sr, patient, who):
    _at(body, sr)["referralNote"] = "call first"
    return 400, f"{sr}.referralNote"


def _no_subject(body, sr, patient, who):
    del _at(body, sr)["subject"]
    return 400, f"{sr}.subject"


def _no_requester(body, sr, patient, who):
    del _at(body, sr)["requester"]
    return 422, f"{sr}.requester"


def _mistyped_npi(body, sr, patient, who):
    identifier, where = _identifier(body, who)
    identifier["value"] = identifier["value"][:-1] + str((int(identifier["value"][-1]) + 1) % 10)
    return 422, where


def _no_family_name(body, sr, patient, who):
    names = _at(body, patient)["name"]
    index = next((i for i, n in enumerate(names) if n.get("use") in ("official", "usual")), 0)
    del names[index]["family"]
    return 422, f"{patient}.name[{index}].family"


def _nothing_asked(body, sr, patient, who):
    request = _at(body, sr)
    for name in ("code", "reasonCode", "reasonReference"):
        request.pop(name, None)
    return 422, f"{sr}.reasonCode"


def _bad_icd10(body, sr, patient, who):
    _at(body, sr)["reasonCode"] = [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Q"}]}]
    return 422, f"{sr}.reasonCode[0].coding[0].code"


def _bad_email(body, sr, patient, who):
    _at(body, patient)["telecom"] = [{"system": "email", "value": "amy at example"}]
    return 422, f"{patient}.telecom"


MUTATIONS = [_draft, _impossible_date, _no_birth_date, _partial_birth_date, _unknown_priority, _unknown_element,
             _no_subject, _no_requester, _mistyped_npi, _no_family_name, _nothing_asked, _bad_icd10,
             _bad_email]  # fmt: skip


def _assert_refused_cleanly(response, status: int, expression: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/fhir+json"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert expression in [e for issue in outcome["issue"] for e in issue.get("expression", [])], outcome
    assert all(issue["diagnostics"] for issue in outcome["issue"])
    assert not Referral.objects.exists() and not Patient.objects.exists()
    message = InterfaceMessage.objects.get()
    assert message.status == "rejected" and expression in message.detail


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.__name__.strip("_"))
@pytest.mark.parametrize("artefact", sorted(ARTEFACTS))
def test_a_malformed_variant_is_refused_naming_the_element(client, reference_dir, artefact, mutation):
    fielding_kathy()
    henry_seven()
    endpoint, build, sr, patient, who = ARTEFACTS[artefact]
    body = build(reference_dir)
    status, expression = mutation(body, sr, patient, who)
    response = post(client, f"/fhir/{endpoint}", body, api_key("referrals.edit"))
    _assert_refused_cleanly(response, status, expression)


def test_us_core_practitioner_1_is_refused_because_its_npi_starts_with_9(client, reference_dir):
    body = us_core_contained(reference_dir, "servicerequest-rehab.json", "practitioner-1")
    response = post(client, "/fhir/ServiceRequest", body, api_key("referrals.edit"))
    _assert_refused_cleanly(response, 422, "ServiceRequest.contained[1].identifier[0].value")
    assert "starts with 1 (individual) or 2" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("endpoint", "body", "content_type", "status", "expression"),
    [
        ("ServiceRequest", "{not json", "application/fhir+json", 400, "ServiceRequest"),
        ("ServiceRequest", {"resourceType": "Patient"}, "application/fhir+json", 400, "ServiceRequest.resourceType"),
        ("ServiceRequest", {"resourceType": "Referral"}, "application/fhir+json", 400, "ServiceRequest.resourceType"),
        ("Bundle", {"resourceType": "Bundle", "type": "collection"}, "application/fhir+json", 422, "Bundle.type"),
        ("Bundle", {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {
            "resourceType": "Basic", "code": {"text": "x"}}}]}, "application/json", 422,
         "Bundle.entry[0].request.method"),
        ("Bundle", {"resourceType": "Bundle", "type": "message", "entry": [{"resource": {
            "resourceType": "Basic", "code": {"text": "x"}}}]}, "application/json", 422, "Bundle.entry[0].resource"),
    ],  # fmt: skip
)
def test_a_request_that_is_not_a_referral_is_refused(client, endpoint, body, content_type, status, expression):
    response = post(client, f"/fhir/{endpoint}", body, api_key("referrals.edit"), content_type)
    _assert_refused_cleanly(response, status, expression)


def test_xml_is_refused_with_415_and_not_logged_as_a_referral(client):
    response = post(client, "/fhir/ServiceRequest", "<ServiceRequest/>", api_key("referrals.edit"), "application/xml")
    assert response.status_code == 415
    assert response.json()["issue"][0]["code"] == "not-supported"
    assert not Referral.objects.exists()


def test_every_problem_of_a_request_is_listed_in_one_answer(client, reference_dir):
    body = us_core_contained(reference_dir, "servicerequest-rehab.json")
    body["status"], body["priority"] = "revoked", "whenever"
    del body["contained"][0]["birthDate"]
    response = post(client, "/fhir/ServiceRequest", body, api_key("referrals.edit"))
    expressions = [issue["expression"][0] for issue in response.json()["issue"]]
    assert expressions == ["ServiceRequest.status", "ServiceRequest.priority", "ServiceRequest.contained[0].birthDate"]
    assert json.loads(InterfaceMessage.objects.get().response) == response.json()
