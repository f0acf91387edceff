"""The worker's step: a batch that meets a deadlock is run again; a message answered AA whose referral then
fails lands "failed" with the reason (never lost), a resend gets the first answer, and once the cause is fixed
`refloop hl7 requeue-failed` and the next drain make the referral."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError

from refloop.accounts.audit import audit_verify
from refloop.accounts.models import AuditEvent
from refloop.interop.hl7 import inbound
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral
from tests.interop.hl7_messages import ONC_OMG, reference_text

pytestmark = pytest.mark.django_db


def failing_first(monkeypatch, error: Exception, times: int = 1):
    """refloop's referral step raises `error` the first `times` calls (as a deadlock victim would), then works."""
    real = inbound._receive
    calls = {"n": 0}

    def receive(request):
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return real(request)

    monkeypatch.setattr(inbound, "_receive", receive)
    return calls


def test_a_deadlock_is_retried_and_the_referral_made_once(monkeypatch, reference_dir):
    calls = failing_first(monkeypatch, OperationalError("deadlock detected"))

    answer = inbound.hl7_message_receive(raw=reference_text(reference_dir, ONC_OMG).encode(), via="test")

    assert answer.code == "AA" and calls["n"] == 2
    assert Referral.objects.count() == 1
    assert InterfaceMessage.objects.get().status == "accepted"


def test_a_failure_after_the_aa_is_kept_failed_with_its_reason_and_can_be_queued_again(monkeypatch, reference_dir):
    raw = reference_text(reference_dir, ONC_OMG).encode()
    failing_first(monkeypatch, RuntimeError("a bug"))

    first = inbound.hl7_message_receive(raw=raw, via="test")
    resent = inbound.hl7_message_receive(raw=raw, via="test")

    assert first.code == "AA" and resent.duplicate and resent.ack == first.ack
    kept = InterfaceMessage.objects.get()
    assert kept.status == "failed" and kept.control_id == "17882" and kept.payload.startswith("MSH|")
    assert "not made a referral" in kept.detail and "RuntimeError" in kept.detail
    assert not Referral.objects.exists()
    # the failed message's receipt was dropped with its savepoint; the chain holds together
    assert not AuditEvent.objects.filter(action="interop.hl7.receive").exists()
    assert audit_verify().ok

    out = StringIO()
    call_command("hl7", "requeue-failed", stdout=out)
    assert out.getvalue().startswith("1 inbound message")
    assert InterfaceMessage.objects.get().status == "queued"
    inbound.inbound_drain()  # the body of the worker's hl7_inbound_drain task

    kept.refresh_from_db()
    assert kept.status == "accepted" and kept.referral == Referral.objects.get()
    assert AuditEvent.objects.filter(action="interop.hl7.receive").count() == 1
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)  # the worker closes its connection, as it does in production
def test_a_message_left_queued_is_made_a_referral_when_the_worker_starts(reference_dir):
    """A listener stopped between its commit and queuing the drain: the worker's start queues it."""
    answer = inbound.hl7_message_accept(raw=reference_text(reference_dir, ONC_OMG).encode(), via="test")
    assert answer.code == "AA" and answer.message.status == "queued"

    call_command("worker", batch=True, interval=0, verbosity=0)

    message = InterfaceMessage.objects.get()
    assert message.status == "accepted" and message.referral == Referral.objects.get()
