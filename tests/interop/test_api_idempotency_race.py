"""The same referral sent twice at the same moment with one Idempotency-Key: one referral, both answered."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Patient, Referral
from tests.interop.api_support import key_client, world


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the in-memory SQLite test database refuses a second writer (table is locked) instead of queueing it",
)
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_requests_with_one_key_make_one_referral():
    seeded = world()
    client = key_client("referrals.edit", name="Retrying sender")
    body = {
        "patient": {"first_name": "Ines", "last_name": "Okafor", "birth_date": "1975-02-03"},
        "referring_provider_id": seeded.office.physicians[0].pk,
        "reason": "Chest pain on exertion",
    }
    start, answers = threading.Barrier(2), []

    def send():
        try:
            start.wait()
            response = client.post("/api/referrals", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="r-1")
            answers.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(code for code, _ in answers) == [200, 201]
    assert len({referral_id for _, referral_id in answers}) == 1
    assert Referral.objects.filter(reason="Chest pain on exertion").count() == 1
    assert Patient.objects.filter(last_name="Okafor").count() == 1
    assert InterfaceMessage.objects.filter(control_id="r-1").count() == 1
