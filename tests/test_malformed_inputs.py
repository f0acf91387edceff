"""Hostile input at every page: each answered with a page or a clear 4xx, never a server error, never half-written.

The corpus walks every URL pattern (so a new page is covered the day it is added) on the demo practice, as an
administrator (who reaches every page): hostile query parameters on every GET, and every form posted back with
hostile values in each of its fields. A refused post must leave every table as it was. The file formats have
their own corpora next to their importers (NPPES, referral CSV/XLSX, FHIR, HL7 v2, uploads).
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from refloop import demo

pytestmark = pytest.mark.django_db

HOSTILE = [
    "'; DROP TABLE referrals_referral; --",
    "\x00",
    "9" * 40,
    "-1",
    "2026-13-45",
    "<script>alert(1)</script>",
    "%",
    "x" * 5000,
    "=HYPERLINK(\"http://evil.example\")",
    "\u202e\ufeff",
]
QUERY_PARAMETERS = [
    "q", "page", "queue", "scope", "location", "urgency", "state", "status", "tier", "territory", "liaison",
    "specialty", "clinician", "payer", "kind", "year", "month", "date_from", "date_to", "from", "to", "since",
    "until", "sort", "order", "format", "provider", "practice", "period", "next", "as_of",
]  # fmt: skip
SKIP = ("/api/", "/fhir/", "/logout/", "/static/")
# Tables a refused request may still write to: the audit trail and security bookkeeping.
MAY_CHANGE = {"accounts.auditevent", "sessions.session", "axes.accessattempt", "axes.accessfailurelog",
              "axes.accesslog", "letters.ratecounter"}  # fmt: skip


def _walk(patterns, namespace=None, prefix=""):
    for entry in patterns:
        route = prefix + str(entry.pattern).lstrip("^")
        if route.startswith(tuple(p.lstrip("/") for p in SKIP)):
            continue  # machine interfaces and static files have corpora of their own
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, entry.namespace or namespace, route)
        elif isinstance(entry, URLPattern) and entry.name:
            yield (f"{namespace}:{entry.name}" if namespace else entry.name), entry


def _real_ids() -> dict[str, int]:
    """A real primary key for each URL converter name, so detail pages are reached rather than 404."""
    ids = {}
    for model in apps.get_models():
        pk = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        if pk is not None and isinstance(pk, int):
            ids[f"{model._meta.model_name}_id"] = pk
    aliases = {"provider_id": "referringprovider_id", "practice_id": "referringpractice_id",
               "staff_id": "staffcontact_id", "contact_id": "staffcontact_id", "report_id": "consultreport_id",
               "task_id": "outreachtask_id", "source_id": "othersource_id"}  # fmt: skip
    for alias, name in aliases.items():
        if name in ids:
            ids.setdefault(alias, ids[name])
    return ids


def _urls() -> list[tuple[str, str]]:
    ids = _real_ids()
    urls = []
    for name, entry in _walk(get_resolver().url_patterns):
        kwargs = {}
        for key, converter in entry.pattern.converters.items():
            kwargs[key] = ids.get(key, 1) if converter.regex == "[0-9]+" else "x"
        url = reverse(name, kwargs=kwargs)
        if not url.startswith(SKIP):
            urls.append((name, url))
    return urls


def _admin() -> Client:
    """The demo's administrator, logged in with the second factor given (else every page is the 2FA step)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from refloop.accounts.models import User
    from tests.conftest import log_in_client

    admin = User.objects.filter(role="admin", is_active=True).order_by("pk").first()
    if not TOTPDevice.objects.filter(user=admin, confirmed=True).exists():
        TOTPDevice.objects.create(user=admin, name="Test authenticator", confirmed=True)
    client = log_in_client(admin)
    assert client.get("/settings/").status_code == 200
    return client


def _counts() -> dict[str, int]:
    return {
        model._meta.label_lower: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.label_lower not in MAY_CHANGE and not model._meta.proxy
    }


@pytest.fixture
def demo_practice():
    demo.load(seed=11, scale="tiny")


def test_no_page_fails_on_hostile_query_parameters(demo_practice):
    client = _admin()
    checked = 0
    answered = 0
    for name, url in _urls():
        answered += client.get(url).status_code == 200
        for i, value in enumerate(HOSTILE):
            params = {key: value for key in QUERY_PARAMETERS[i % 3 :: 3]}
            response = client.get(url, params)
            assert response.status_code < 500, f"{name} {url} {params}"
            checked += 1
    assert checked > 100 and answered > 60, (checked, answered)


def _form_fields(html: str) -> list[str]:
    names = re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', html)
    return [n for n in dict.fromkeys(names) if n not in {"csrfmiddlewaretoken", "q"}]


def test_no_form_fails_or_half_writes_on_hostile_values(demo_practice):
    client = _admin()
    posted = 0
    for name, url in _urls():
        page = client.get(url)
        if page.status_code != 200 or page.streaming or "<form" not in page.content.decode(errors="replace"):
            continue
        html = page.content.decode(errors="replace")
        forms = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', html, re.S | re.I)
        actions = re.findall(r'<form[^>]*method="post"[^>]*?(?:action="([^"]*)")?[^>]*>', html, re.I)
        for form_html, action in zip(forms, actions, strict=False):
            target = action or url
            if not target.startswith("/") or target.startswith(SKIP):
                continue
            fields = _form_fields(form_html)
            for value in HOSTILE[:4]:
                before = _counts()
                response = client.post(target, {field: value for field in fields})
                assert response.status_code < 500, f"{name}: POST {target} with {value!r}"
                refused = response.status_code >= 400 or (
                    response.status_code == 200 and not response.streaming and b"error" in response.content
                )
                if refused:
                    after = _counts()
                    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
                    assert not changed, f"{name}: refused POST {target} {value!r} still wrote {changed}"
                posted += 1
    assert posted > 20


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/referrals", "application/json"), ("/fhir/Task", "application/fhir+json"), ("/referrals/", "text/html")],
)
def test_a_nul_character_is_refused_in_the_callers_own_format(path, content_type, client_as):
    response = client_as("coordinator").get(path, {"q": "a\x00b"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith(content_type)
    assert b"NUL character" in response.content
