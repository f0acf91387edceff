"""What a referral intake reads by a unique key (the API key, the requester's NPI, the message's control id, the
referral's idempotency key) it reads without an ORDER BY: at most one row can match, and compiling the ordering
that first() adds cost a third to a half of each lookup's CPU on every intake (issue 8)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from refloop.referrals.models import Referral
from tests.directory.factories import provider
from tests.interop.fhir_helpers import NPI, api_key, post

pytestmark = pytest.mark.django_db

UNIQUE_LOOKUPS = {
    "the API key": re.compile(r'FROM "interop_apikey"(?: \w+)? WHERE .*"prefix"'),
    "the requester by NPI": re.compile(r'FROM "directory_referringprovider"(?: \w+)? WHERE .*"npi"'),
    "the message by control id": re.compile(r'FROM "interop_interfacemessage"(?: \w+)? WHERE .*"control_id"'),
    "the referral by idempotency key": re.compile(r'FROM "referrals_referral"(?: \w+)? WHERE .*"idempotency_key"'),
}


def _service_request(npi: str) -> dict:
    return {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5.1", "value": "lookups-1"}],
        "status": "active",
        "intent": "order",
        "code": {"text": "Orthopaedic consultation"},
        "reasonCode": [{"text": "Knee pain after a fall"}],
        "subject": {"reference": "#p"},
        "requester": {"identifier": {"system": NPI, "value": npi}},
        "contained": [
            {"resourceType": "Patient", "id": "p", "name": [{"family": "Lookup", "given": ["Ana"]}],
             "birthDate": "1961-03-14", "gender": "female"}
        ],
    }  # fmt: skip


def test_it_reads_each_unique_key_without_ordering():
    key = api_key("referrals.edit", name="ehr")
    npi = provider(last_name="Referrer").npi
    with CaptureQueriesContext(connection) as captured:
        answer = post(Client(), "/fhir/ServiceRequest", _service_request(npi), key)
    assert answer.status_code == 201
    assert Referral.objects.count() == 1
    selects = [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    for what, pattern in UNIQUE_LOOKUPS.items():
        found = [sql for sql in selects if pattern.search(sql)]
        assert found, f"the intake no longer reads {what}; update this test"
        assert all("ORDER BY" not in sql.upper() for sql in found), f"{what} is read with an ORDER BY: {found}"
