"""The CapabilityStatement tells the truth: each interaction and search parameter it lists is served, and the
ones it does not list are refused."""

from __future__ import annotations

import pytest

from tests.interop.fhir_helpers import api_key, get, post
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db

# (resource type, interaction) -> how to call it
CALLS = {
    ("ServiceRequest", "create"): ("POST", "/fhir/ServiceRequest"),
    ("ServiceRequest", "read"): ("GET", "/fhir/ServiceRequest/{r}"),
    ("ServiceRequest", "search-type"): ("GET", "/fhir/ServiceRequest"),
    ("ServiceRequest", "update"): ("PUT", "/fhir/ServiceRequest/{r}"),
    ("Bundle", "create"): ("POST", "/fhir/Bundle"),
    ("Bundle", "read"): ("GET", "/fhir/Bundle/1"),
    ("Task", "read"): ("GET", "/fhir/Task/{r}"),
    ("Task", "search-type"): ("GET", "/fhir/Task"),
    ("Task", "create"): ("POST", "/fhir/Task"),
    ("Task", "update"): ("PUT", "/fhir/Task/{r}"),
    ("Task", "delete"): ("DELETE", "/fhir/Task/{r}"),
    ("DocumentReference", "read"): ("GET", "/fhir/DocumentReference/{r}"),
    ("DocumentReference", "search-type"): ("GET", "/fhir/DocumentReference"),
    ("Patient", "read"): ("GET", "/fhir/Patient/1"),
    ("Practitioner", "read"): ("GET", "/fhir/Practitioner/1"),
}


@pytest.fixture
def statement(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    return response.json()


def listed(statement) -> set[tuple[str, str]]:
    return {(r["type"], i["code"]) for r in statement["rest"][0]["resource"] for i in r["interaction"]}


def test_it_is_an_r4_json_server_statement(statement):
    assert statement["resourceType"] == "CapabilityStatement"
    rest = statement["rest"][0]
    assert (statement["fhirVersion"], statement["kind"], rest["mode"]) == ("4.0.1", "instance", "server")
    assert "application/fhir+json" in statement["format"] and "xml" not in statement["format"]
    assert statement["implementation"]["url"] == "http://testserver/fhir"


def test_every_listed_interaction_is_served_and_no_other(client, users, statement):
    key = api_key("referrals.view", "referrals.edit", "letters.view")
    item = referral(by=users["coordinator"])
    assert listed(statement) <= set(CALLS)
    for (kind, interaction), (method, path) in CALLS.items():
        path = path.replace("{r}", str(item.pk))
        if method == "POST":
            response = post(client, path, {"resourceType": kind}, key)
        else:
            response = client.generic(method, path, HTTP_AUTHORIZATION=f"Bearer {key}")
        served = response.status_code not in (404, 405) or (
            response.status_code == 404 and "There is no" in response.json()["issue"][0]["diagnostics"]
        )
        assert served == ((kind, interaction) in listed(statement)), (kind, interaction, response.status_code)


def test_the_listed_task_search_parameters_work_and_others_are_refused(client, users, statement):
    key = api_key("referrals.view")
    task = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Task")
    names = {p["name"] for p in task["searchParam"]}
    assert names == {"focus", "status", "_lastUpdated"}
    samples = {"focus": "ServiceRequest/1", "status": "requested", "_lastUpdated": "ge2020-01-01"}
    for name in names:
        assert get(client, "/fhir/Task", key, **{name: samples[name]}).status_code == 200
    for name in ("patient", "owner", "_sort", "code"):
        assert get(client, "/fhir/Task", key, **{name: "x"}).status_code == 400


def test_the_transaction_interaction_is_served_at_the_base(client, statement):
    assert {"code": "transaction", "documentation": "POST a transaction Bundle to the base."} in (
        statement["rest"][0]["interaction"]
    )
    response = post(client, "/fhir/", {"resourceType": "Bundle", "type": "transaction"}, api_key("referrals.edit"))
    assert response.status_code == 422 and response.json()["issue"][0]["expression"] == ["Bundle.entry"]
