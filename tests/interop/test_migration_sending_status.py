"""Migration interop 0002: an outbound message claimed the old way (still "queued", the claim at the start of
`detail`, the lease running from `updated_at`) becomes "sending" with its lease ending where it did."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("interop", "0001_initial")]
AFTER = [("interop", "0002_sending_status")]


@pytest.mark.django_db(transaction=True)
def test_claims_kept_in_detail_become_the_sending_status(settings):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps.get_model("interop", "InterfaceMessage")
        claimed_at = timezone.now() - dt.timedelta(seconds=5)
        fields = {"direction": "out", "protocol": "hl7v2", "message_type": "SIU^S12", "status": "queued"}
        claimed = old.objects.create(**fields, control_id="C1", detail="Sending: attempt 2 by host:41", attempts=2)
        waiting = old.objects.create(**fields, control_id="C2", detail="Waiting to retry (attempt 1 of 3): timeout")
        old.objects.filter(pk=claimed.pk).update(updated_at=claimed_at)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("interop", "InterfaceMessage")
    claimed, waiting = new.objects.get(control_id="C1"), new.objects.get(control_id="C2")
    assert (claimed.status, claimed.attempts) == ("sending", 2)
    assert claimed.lease_until == claimed_at + dt.timedelta(seconds=settings.HL7_LEASE_SECONDS)
    assert (waiting.status, waiting.lease_until) == ("queued", None)
