"""A message resent with the same MSH-10 gets the first ACK again and creates nothing."""

from __future__ import annotations

import pytest

from refloop.interop.hl7.inbound import hl7_message_receive
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Patient, Referral
from tests.interop.hl7_messages import HAPI_REF, ONC_OMG, ack_fields, reference_text, set_field

pytestmark = pytest.mark.django_db


def test_a_resent_referral_gets_the_original_ack_and_creates_nothing(reference_dir):
    raw = reference_text(reference_dir, ONC_OMG).encode()

    first = hl7_message_receive(raw=raw, via="test")
    again = hl7_message_receive(raw=raw, via="test")

    assert (first.code, again.code) == ("AA", "AA")
    assert again.duplicate and not first.duplicate
    assert again.ack == first.ack  # byte for byte: the same MSH-10 of the ACK, the same time
    assert Referral.objects.count() == 1 and Patient.objects.count() == 1
    message = InterfaceMessage.objects.get()
    assert message.attempts == 2


def test_a_resent_refusal_gets_the_same_refusal(reference_dir):
    raw = set_field(reference_text(reference_dir, ONC_OMG), "PID", 7, "").encode()

    first = hl7_message_receive(raw=raw, via="test")
    again = hl7_message_receive(raw=raw, via="test")

    assert (first.code, again.code) == ("AE", "AE")
    assert again.ack == first.ack
    assert not Referral.objects.exists()


def test_the_same_control_id_from_another_sender_is_another_message(reference_dir):
    text = reference_text(reference_dir, ONC_OMG)
    other = set_field(set_field(text, "MSH", 4, "^1.2.840.99999.1^ISO"), "ORC", 2, "5551212")

    assert hl7_message_receive(raw=text.encode(), via="test").code == "AA"
    assert hl7_message_receive(raw=other.encode(), via="test").code == "AA"

    assert Referral.objects.count() == 2
    assert InterfaceMessage.objects.filter(control_id="17882").count() == 2


def test_the_same_referral_under_a_new_control_id_is_recognised_by_its_referral_id(reference_dir):
    """The HAPI message has no MSH-10 at all: its RF1-6 (the sender's referral id) recognises the resend."""
    raw = reference_text(reference_dir, HAPI_REF).encode()

    first = hl7_message_receive(raw=raw, via="test")
    again = hl7_message_receive(raw=raw, via="test")

    assert (first.code, again.code) == ("AA", "AA")
    assert Referral.objects.count() == 1
    assert "already received" in ack_fields(again.ack)["MSA"][3]
    assert set(InterfaceMessage.objects.values_list("referral", flat=True)) == {Referral.objects.get().pk}
