"""Schemathesis against /api/openapi.json: generated requests for every operation, with a key holding every
scope and a seeded practice, must never meet a server error or a response the document does not describe.

The WSGI application is called in-process, so requests share the test's database transaction.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS

from refloop.accounts.roles import MATRIX
from refloop.interop.apikeys import apikey_create
from tests.interop.api_support import world

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@schema.hook
def filter_query(ctx, query):
    """A NUL character in a query string is refused by refloop.middleware.BadInputMiddleware before any view,
    with the site's HTML 400 page: that guard is tested with the pages (tests/test_malformed_inputs.py)."""
    return not any("\x00" in str(value) for value in (query or {}).values())


# Valid input may still be refused by the rules (an id that names no row, a step the state does not allow):
# those answers are declared errors, not failures. Everything else schemathesis checks is kept.
SKIPPED = {"positive_data_acceptance"}
EXCLUDED = [check for check in CHECKS.get_all() if check.__name__ in SKIPPED]


@pytest.fixture
def bearer(db):
    # Like Django's test client: a request must not close the connection holding the test's transaction
    # (PostgreSQL would lose it; schemathesis calls the WSGI handler, which sends these signals).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    world()
    _, raw = apikey_create(name="schemathesis", scopes=list(MATRIX))
    yield {"Authorization": f"Bearer {raw}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_answers_as_its_document_says(case, bearer):
    case.call_and_validate(headers=bearer, excluded_checks=EXCLUDED)
