"""Every FHIR interaction for every role, for anonymous callers, and for API keys with and without the scope.

The role walk in tests/accounts skips /fhir/; this is its FHIR half. The table below must name every URL of
refloop.interop.fhir.urls (checked), each with the matrix action it needs.
"""

from __future__ import annotations

import pytest
from django.test import Client

from refloop.accounts.models import AuditEvent
from refloop.accounts.roles import MATRIX, Role
from refloop.interop.apikeys import apikey_create, apikey_revoke
from refloop.interop.fhir import urls as fhir_urls
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral
from tests.interop.fhir_helpers import get, post
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db

SERVICE_REQUEST = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                   "subject": {"reference": "#p"}, "requester": {"identifier": {
                       "system": "http://hl7.org/fhir/sid/us-npi", "value": "1245319599"}},
                   "code": {"text": "Knee pain"}, "contained": [{"resourceType": "Patient", "id": "p",
                   "name": [{"family": "Doe", "given": ["Pat"]}], "birthDate": "1970-01-01"}]}  # fmt: skip
ENTRY = {"resource": SERVICE_REQUEST, "request": {"method": "POST", "url": "ServiceRequest"}}
BUNDLE = {"resourceType": "Bundle", "type": "transaction", "entry": [ENTRY]}

# url name -> (method, path, body, action or None for public). "{r}" is a referral's id.
INTERACTIONS = {
    "metadata": ("GET", "/fhir/metadata", None, None),
    "servicerequest-create": ("POST", "/fhir/ServiceRequest", SERVICE_REQUEST, "referrals.edit"),
    "bundle-create": ("POST", "/fhir/Bundle", BUNDLE, "referrals.edit"),
    "base": ("POST", "/fhir/", BUNDLE, "referrals.edit"),
    "servicerequest-read": ("GET", "/fhir/ServiceRequest/{r}", None, "referrals.view"),
    "task-read": ("GET", "/fhir/Task/{r}", None, "referrals.view"),
    "task-search": ("GET", "/fhir/Task", None, "referrals.view"),
    "documentreference-read": ("GET", "/fhir/DocumentReference/0", None, "letters.view"),
}
ROLES = [role.value for role in Role]


def test_the_table_names_every_fhir_url():
    names = {p.name for p in fhir_urls.urlpatterns} - {"not-found"}
    assert names == set(INTERACTIONS)


def call(client, name, item, key=None):
    method, path, body, _ = INTERACTIONS[name]
    path = path.replace("{r}", str(item.pk))
    if method == "POST":
        return post(client, path, body, key)
    return get(client, path, key)


def _reached(response) -> bool:
    """Past authentication and the matrix: an answer about the request itself (200, 201, 202, 404, 422...)."""
    return response.status_code not in (401, 403)


@pytest.mark.parametrize("name", sorted(INTERACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_the_interactions_the_matrix_gives_it(client_as, users, name, role):
    item = referral(by=users["coordinator"])
    action = INTERACTIONS[name][3]
    messages = InterfaceMessage.objects.count()
    response = call(client_as(role), name, item)
    allowed = action is None or Role(role) in MATRIX[action]
    assert _reached(response) == allowed, (role, name, response.status_code)
    assert response["Content-Type"] == "application/fhir+json"
    if not allowed:
        assert response.status_code == 403 and response.json()["issue"][0]["code"] == "forbidden"
        assert InterfaceMessage.objects.count() == messages
    elif INTERACTIONS[name][0] == "POST":
        assert InterfaceMessage.objects.filter(sender=role).count() == 1


@pytest.mark.parametrize("name", sorted(INTERACTIONS))
def test_anonymous_callers_get_401_except_for_the_capability_statement(client, users, name):
    item = referral(by=users["coordinator"])
    response = call(client, name, item)
    if name == "metadata":
        assert response.status_code == 200
        return
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["issue"][0]["code"] == "login"
    assert not InterfaceMessage.objects.exists() and Referral.objects.count() == 1
    assert not AuditEvent.objects.filter(action__startswith="fhir.").exists()


@pytest.mark.parametrize("name", sorted(n for n in INTERACTIONS if INTERACTIONS[n][3]))
def test_a_key_needs_the_scope_of_the_interaction(client, users, name):
    item = referral(by=users["coordinator"])
    action = INTERACTIONS[name][3]
    _, scoped = apikey_create(name="with", scopes=[action])
    others = [a for a in ("referrals.view", "referrals.edit", "letters.view") if a != action]
    _, unscoped = apikey_create(name="without", scopes=others)
    refused = call(client, name, item, unscoped)
    assert refused.status_code == 403 and action in refused.json()["issue"][0]["diagnostics"]
    assert not InterfaceMessage.objects.exists()
    assert _reached(call(client, name, item, scoped))
    if INTERACTIONS[name][0] == "GET" and "{r}" in INTERACTIONS[name][1]:
        assert AuditEvent.objects.filter(actor_label="with", target_id=str(item.pk)).exists()


def test_an_unknown_or_revoked_key_gets_401(client, users):
    item = referral(by=users["coordinator"])
    key, raw = apikey_create(name="old", scopes=["referrals.view"])
    assert call(client, "task-read", item, raw).status_code == 200
    apikey_revoke(key=key)
    assert call(client, "task-read", item, raw).status_code == 401
    assert call(client, "task-read", item, "rfl_not-a-key-at-all").status_code == 401


def test_a_session_write_needs_the_csrf_token(users):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(users["coordinator"])
    response = post(strict, "/fhir/ServiceRequest", SERVICE_REQUEST)
    assert response.status_code == 403 and response.json()["issue"][0]["code"] == "security"
    assert not InterfaceMessage.objects.exists()


def test_a_deactivated_user_is_anonymous(client_as, users):
    item = referral(by=users["coordinator"])
    assert call(client_as("outsider"), "task-read", item).status_code == 401


def test_other_paths_and_methods_answer_with_an_operation_outcome(client_as):
    coordinator = client_as("coordinator")
    missing = coordinator.get("/fhir/Patient/1")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    wrong = coordinator.delete("/fhir/Task/1")
    assert wrong.status_code == 405 and wrong["Allow"] == "GET"
