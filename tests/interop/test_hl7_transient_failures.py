"""A transaction that meets a deadlock is run again; a message that fails inside refloop is answered AE 207 and
kept for review without its MSH-10, so the sender's resend is processed again instead of answered alike."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from refloop.interop.hl7 import inbound
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral
from tests.interop.hl7_messages import ONC_OMG, ack_fields, reference_text

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


def test_a_failure_inside_refloop_is_ae_207_and_the_resend_is_taken(monkeypatch, reference_dir):
    raw = reference_text(reference_dir, ONC_OMG).encode()
    failing_first(monkeypatch, RuntimeError("a bug"))

    failed = inbound.hl7_message_receive(raw=raw, via="test")
    resent = inbound.hl7_message_receive(raw=raw, via="test")

    err = ack_fields(failed.ack)["ERR"]
    assert (failed.code, err[3].split("^")[0]) == ("AE", "207")
    assert "again later" in err[8]
    assert resent.code == "AA" and not resent.duplicate
    assert Referral.objects.count() == 1
    kept = InterfaceMessage.objects.get(status="error")
    assert kept.control_id == "" and kept.payload.startswith("MSH|")
