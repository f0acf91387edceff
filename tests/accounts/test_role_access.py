"""Walk every URL for every role and check the answer against the permission matrix in accounts.roles.

A new URL must either name its action with @require_action or be listed below as public or as open to any
logged-in user; otherwise this test fails, so no page escapes the matrix.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from refloop.accounts.roles import MATRIX, NAVIGATION, Role

PUBLIC = {
    "login",
    "healthz",
    "letters_public:status",
    "letters_public:status_document",
    "letters_public:letter",
    "letters_public:letter_document",
    "letters_public:refer",
    "letters_public:refer_office",
    "accounts:password_reset",
    "accounts:password_reset_sent",
    "accounts:password_reset_confirm",
    "accounts:password_reset_done",
}
# A person's own account pages, and the second login step that every role may have to pass.
ANY_LOGGED_IN = {
    "home",
    "logout",
    "accounts:account",
    "accounts:two_factor",
    "accounts:two_factor_enrol",
    "accounts:session",
    "accounts:password_change",
    "accounts:password_changed",
}
# Machine interfaces answer API keys as well as sessions; their own walks live in tests/interop/.
MACHINE_PREFIXES = ("/api/", "/fhir/")

pytestmark = pytest.mark.django_db


def _walk(patterns, namespace: str | None = None, prefix: str = ""):
    for entry in patterns:
        route = prefix + str(entry.pattern).lstrip("^")
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, entry.namespace or namespace, route)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield name, entry, route


def _routes():
    routes = []
    for name, entry, route in _walk(get_resolver().url_patterns):
        if ("/" + route).startswith(MACHINE_PREFIXES):
            continue  # checked before reversing: a catch-all machine route may have no reversible form
        kwargs = {key: 1 for key in entry.pattern.converters}
        if reverse(name, kwargs=kwargs).startswith(MACHINE_PREFIXES):
            continue
        routes.append((name, reverse(name, kwargs=kwargs), getattr(entry.callback, "refloop_action", None)))
    return routes


def _request(client: Client, url: str):
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url)
    return response


def test_every_url_is_in_the_matrix():
    unlisted = [
        name for name, _, action in _routes() if action is None and name not in PUBLIC | ANY_LOGGED_IN
    ]
    assert unlisted == [], f"URLs with no @require_action and not listed as public: {unlisted}"
    for name, _, action in _routes():
        assert action is None or action in MATRIX, name


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_each_role_gets_exactly_what_the_matrix_allows(role, client_as):
    client = client_as(role)
    for name, url, action in _routes():
        if action is None:
            continue
        status = _request(client, url).status_code
        if role in MATRIX[action]:
            assert status != 403, f"{role} was refused {name} ({action})"
        else:
            assert status == 403, f"{role} reached {name} ({action}): {status}"


def test_an_anonymous_visitor_reaches_only_the_public_urls():
    client = Client()
    for name, url, _ in _routes():
        response = _request(client, url)
        if name in PUBLIC:
            assert response.status_code != 302 or "/login/" not in response.get("Location", "")
        else:
            assert response.status_code == 302, name
            assert response["Location"].startswith("/login/?next="), name


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_the_navigation_shows_only_the_sections_a_role_may_open(role, client_as):
    client = client_as(role)
    page = client.get("/search/?q=zz").content.decode()
    for label, url_name, action in NAVIGATION:
        link = f'href="{reverse(url_name)}"'
        assert (link in page) == (role in MATRIX[action]), f"{role}: {label}"


def test_a_liaison_posting_to_a_manager_url_is_refused_and_nothing_changes(client_as):
    from refloop.practice.models import Location

    response = client_as("liaison").post(
        "/settings/locations/new/",
        {
            "name": "Sneaky",
            "address_line1": "1 Main St",
            "city": "Columbus",
            "state": "OH",
            "postal_code": "43215",
        },
    )
    assert response.status_code == 403
    assert not Location.objects.filter(name="Sneaky").exists()


def test_a_coordinator_cannot_open_manager_pages(client_as):
    client = client_as("coordinator")
    assert client.get("/insights/").status_code == 403
    assert client.get("/settings/").status_code == 403
