"""Walk every operation of the JSON API for every role, for an anonymous caller, and for API keys with and
without the operation's scope; the answer must be what the permission matrix says.

An operation added without naming its action (auth.needs) fails the first test, so none escapes the matrix.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from refloop.accounts.roles import MATRIX, Role
from refloop.interop.api import api
from refloop.interop.api.auth import action_of
from refloop.interop.apikeys import apikey_revoke
from tests.interop.api_support import key_client, world

pytestmark = pytest.mark.django_db


def _operations():
    """(method, path template, action) for every operation of the API."""
    found = []
    for prefix, router in api._routers:
        for path, view in router.path_operations.items():
            for operation in view.operations:
                for method in operation.methods:
                    found.append((method, "/api" + prefix.rstrip("/") + "/" + path.lstrip("/"), operation))
    return found


def _url(template: str, ids: dict[str, int]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), "accept")), template)


@pytest.fixture
def ids(db):
    seeded = world()
    return {
        "referral_id": seeded.referral.pk,
        "patient_id": seeded.referral.patient_id,
        "provider_id": seeded.office.physicians[0].pk,
        "practice_id": seeded.office.practice.pk,
        "contact_id": seeded.office.staff[0].pk,
        "concern_id": seeded.concern.pk,
        "activity_id": 1,
    }


def _call(client: Client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    return getattr(client, method.lower())(url, data="{}", content_type="application/json")


def test_every_operation_names_one_action_of_the_matrix():
    unnamed = [f"{method} {path}" for method, path, op in _operations() if action_of(op) not in MATRIX]
    assert unnamed == [], f"API operations with no action of the matrix (use auth=needs(...)): {unnamed}"
    assert len(_operations()) >= 25


def test_every_operation_declares_the_auth_errors_in_the_document():
    paths = api.get_openapi_schema(path_prefix="/api/")["paths"]
    for path, methods in paths.items():
        for method, spec in methods.items():
            assert {"401", "403", "422"} <= {str(code) for code in spec["responses"]}, f"{method} {path}"
            assert spec["security"], f"{method} {path} declares no security"


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_each_role_gets_exactly_what_the_matrix_allows(role, client_as, ids):
    client = client_as(role)
    for method, template, operation in _operations():
        action = action_of(operation)
        status = _call(client, method, _url(template, ids)).status_code
        if role in MATRIX[action]:
            assert status not in (401, 403, 500), f"{role} was refused {method} {template} ({action}): {status}"
        else:
            assert status == 403, f"{role} reached {method} {template} ({action}): {status}"


def test_an_anonymous_caller_is_refused_every_operation_with_401(ids):
    client = Client()
    for method, template, _ in _operations():
        response = _call(client, method, _url(template, ids))
        assert response.status_code == 401, f"{method} {template}"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_key_may_do_exactly_the_operations_its_scopes_name(ids):
    for method, template, operation in _operations():
        action = action_of(operation)
        other = next(a for a in MATRIX if a != action)
        allowed = _call(key_client(action, name=f"with {action} {method} {template}"), method, _url(template, ids))
        refused = _call(key_client(other, name=f"without {action} {method} {template}"), method, _url(template, ids))
        assert allowed.status_code not in (401, 403, 500), f"{method} {template} with {action}: {allowed.status_code}"
        assert refused.status_code == 403, f"{method} {template} without {action}: {refused.status_code}"
        assert action in refused.json()["message"]


def test_a_revoked_or_made_up_key_is_not_let_in(ids):
    client = key_client()
    assert client.get("/api/referrals").status_code == 200
    apikey_revoke(key=client.key)
    assert client.get("/api/referrals").status_code == 401
    forged = Client(HTTP_AUTHORIZATION="Bearer rfl_" + "x" * 40)
    assert forged.get("/api/referrals").status_code == 401


def test_a_session_must_send_the_csrf_token_to_change_anything(users, ids):
    from refloop.outreach.models import Concern

    client = Client(enforce_csrf_checks=True)
    client.force_login(users["liaison"])
    assert client.get("/api/concerns").status_code == 200
    body = {"practice_id": ids["practice_id"], "summary": "Fax line busy all week"}
    refused = client.post("/api/concerns", data=body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]
    assert not Concern.objects.filter(summary=body["summary"]).exists()

    client.get("/outreach/")  # any page of the app hands the browser its CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/concerns", data=body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    assert Concern.objects.get(summary=body["summary"]).created_by == users["liaison"]
