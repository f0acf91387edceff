"""The same referral sent twice at the same moment (a sender's retry racing its first try) makes one referral."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Patient, Referral
from tests.interop.fhir_helpers import api_key, fielding_kathy, post, us_core_contained

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's in-memory test database locks whole tables; "
                    "this race is run on PostgreSQL (make test-postgres)")
@pytest.mark.parametrize("same_key", [True, False], ids=["same key", "two keys"])
def test_two_simultaneous_copies_make_one_referral(reference_dir, same_key):
    fielding_kathy()
    keys = [api_key("referrals.edit", name="ehr")] * 2 if same_key else [
        api_key("referrals.edit", name="ehr"), api_key("referrals.edit", name="hie")]  # fmt: skip
    body = us_core_contained(reference_dir, "servicerequest-rehab.json")
    start = threading.Barrier(2)
    answers: list[int] = []

    def send(key: str) -> None:
        try:
            start.wait(timeout=10)
            answers.append(post(Client(), "/fhir/ServiceRequest", body, key).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [200, 201]
    assert Referral.objects.count() == 1 and Patient.objects.count() == 1
    assert InterfaceMessage.objects.filter(status="accepted").count() == (1 if same_key else 2)
