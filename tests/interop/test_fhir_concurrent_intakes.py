"""Referrals posted at the same moment by several senders (issue 8's load): each is taken once, none waits for a
deadlock, the audit chain stays one unbroken chain and the rollups still equal a recount."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from refloop.accounts.audit import audit_verify
from refloop.accounts.models import AuditEvent
from refloop.insights import rollups
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral
from tests.directory.factories import provider
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.interop.fhir_helpers import NPI, api_key, post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers are PostgreSQL's case"),
]

SENDERS, EACH = 4, 5


def _service_request(serial: int, npi: str) -> dict:
    return {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5.1", "value": f"concurrent-{serial}"}],
        "status": "active",
        "intent": "order",
        "priority": "urgent" if serial % 3 == 0 else "routine",
        "code": {"text": "Orthopaedic consultation"},
        "reasonCode": [{"text": "Knee pain after a fall"}],
        "subject": {"reference": "#p"},
        "requester": {"identifier": {"system": NPI, "value": npi}},
        "authoredOn": "2026-11-27T10:00:00-05:00",
        "contained": [
            {
                "resourceType": "Patient",
                "id": "p",
                "name": [{"family": f"Concurrent{serial}", "given": ["Ana"]}],
                "birthDate": f"19{50 + serial}-03-14",
                "gender": "female",
            }
        ],
    }


def test_simultaneous_intakes_are_each_taken_once_and_audited_in_one_chain(monkeypatch):
    monkeypatch.setattr(rollups, "VACUUM_EVERY", 3)  # the sums' tables vacuumed after commits, amid the load
    npis = [provider(last_name=f"Referrer{n}").npi for n in range(2)]  # shared sources: the same rollup rows
    key = api_key("referrals.edit", name="ehr")
    start = threading.Barrier(SENDERS)
    answers: list[int] = []

    def send(sender: int) -> None:
        try:
            client = Client()
            start.wait(timeout=30)
            for n in range(EACH):
                serial = sender * EACH + n
                answers.append(
                    post(client, "/fhir/ServiceRequest", _service_request(serial, npis[serial % 2]), key).status_code
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(s,)) for s in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert answers == [201] * (SENDERS * EACH)
    assert Referral.objects.count() == SENDERS * EACH
    assert InterfaceMessage.objects.filter(status="accepted").count() == SENDERS * EACH
    created = AuditEvent.objects.filter(action="referral.create")
    assert sorted(int(pk) for pk in created.values_list("target_id", flat=True)) == sorted(
        Referral.objects.values_list("pk", flat=True)
    )
    assert AuditEvent.objects.filter(action="patient.create").count() == SENDERS * EACH
    assert audit_verify().ok
    assert_rollups_match_recount()
