"""The OpenAPI document and its docs page: served without a login and without the internet."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_docs_page_loads_swagger_from_this_server_not_a_cdn():
    page = Client().get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert Client().get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_the_document_describes_every_operation_with_its_security_and_errors():
    document = Client().get("/api/openapi.json").json()
    assert document["info"]["title"] == "refloop API"
    assert set(document["components"]["securitySchemes"]) == {"KeyAuth", "SessionAuth"}
    create = document["paths"]["/api/referrals"]["post"]
    assert {"Idempotency-Key"} <= {p["name"] for p in create["parameters"]}
    assert {"200", "201", "409", "422"} <= set(create["responses"])
    step = document["paths"]["/api/referrals/{referral_id}/transitions/{name}"]["post"]
    assert {"412", "428"} <= set(step["responses"])
    assert "If-Match" in {p["name"] for p in step["parameters"]}
    assert step["x-refloop-action"] == "referrals.edit"
    assert "`referrals.edit`" in step["description"]
    for methods in document["paths"].values():
        for spec in methods.values():
            assert spec["x-refloop-action"], spec["operationId"]
