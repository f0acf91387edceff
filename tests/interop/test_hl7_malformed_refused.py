"""Broken copies of each reference referral are refused with an ERR naming the element, and create nothing."""

from __future__ import annotations

import pytest

from refloop.directory.models import ReferringProvider
from refloop.interop.hl7.inbound import hl7_message_receive
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Patient, Referral
from tests.interop.hl7_messages import HAPI_REF, ONC_OMG, ack_fields, drop, reference_text, set_field

pytestmark = pytest.mark.django_db


def no_pid_name(t):
    return set_field(t, "PID", 5, "^aaa^^^^^L")


# (reference, how it is broken, expected MSA-1, ERR-2 location, ERR-3 code, words the error must hold)
CASES = [
    (HAPI_REF, lambda t: drop(t, "PID"), "AE", "PID^1", "100", "PID segment is missing"),
    (HAPI_REF, no_pid_name, "AE", "PID^1^5^1^1", "101", "family name"),
    (HAPI_REF, lambda t: set_field(t, "PID", 7, "19000231"), "AE", "PID^1^7^1", "102", "19000231"),
    (HAPI_REF, lambda t: set_field(t, "PID", 7, ""), "AE", "PID^1^7^1", "101", "date of birth"),
    (HAPI_REF, lambda t: set_field(t, "PID", 8, "Q"), "AE", "PID^1^8^1", "103", "'Q'"),
    # checked by the model's own validation, in the listener (before the AA), not when the worker saves it
    (HAPI_REF, lambda t: set_field(t, "PID", 13, "^NET^Internet^no-at-sign"), "AE", "PID^1^13^1^4", "102", "email"),
    (HAPI_REF, lambda t: set_field(t, "RF1", 2, "X"), "AE", "RF1^1^2^1", "103", "'X'"),
    (HAPI_REF, lambda t: drop(t, "RF1"), "AE", "RF1^1", "100", "RF1"),
    (HAPI_REF, lambda t: drop(t, "PRD", lambda s: s.startswith("PRD|RP")), "AE", "PRD^1^1^1", "101", "RP"),
    (HAPI_REF, lambda t: set_field(t, "PRD", 7, "1234567890^NPI"), "AE", "PRD^1^7^1^1", "102", "check digit"),
    (HAPI_REF, lambda t: drop(t, "NTE", lambda s: "REASON" in s), "AE", "RF1^1^10^1", "101", "reason"),
    (HAPI_REF, lambda t: set_field(t, "MSH", 9, "REF^I13^REF_I12"), "AR", "MSH^1^9^1^2", "201", "REF^I13"),
    (HAPI_REF, lambda t: set_field(t, "MSH", 9, "ADT^A01"), "AR", "MSH^1^9^1", "200", "ADT^A01"),
    (HAPI_REF, lambda t: set_field(t, "MSH", 7, "20991231120000"), "AE", "MSH^1^7^1", "102", "future"),
    (HAPI_REF, lambda t: set_field(t, "MSH", 12, "3.0"), "AR", "MSH^1^12^1", "203", "3.0"),
    (ONC_OMG, lambda t: set_field(t, "ORC", 1, "CA"), "AE", "ORC^1^1^1", "103", "CA"),
    (ONC_OMG, lambda t: set_field(set_field(t, "ORC", 12, ""), "OBR", 16, ""), "AE", "ORC^1^12^1", "101", "provider"),
    (ONC_OMG, lambda t: set_field(t, "OBR", 31, ""), "AE", "OBR^1^31^1", "101", "reason"),
    (ONC_OMG, lambda t: set_field(t, "TQ1", 9, "Z"), "AE", "TQ1^1^9^1", "103", "'Z'"),
    (ONC_OMG, lambda t: set_field(t, "TQ1", 8, "2016-10-18"), "AE", "TQ1^1^8^1", "102", "2016-10-18"),
    (ONC_OMG, lambda t: set_field(t, "PID", 7, "20991231"), "AE", "PID^1^7^1", "102", "future"),
    (
        ONC_OMG,
        lambda t: set_field(set_field(t, "ORC", 2, ""), "OBR", 2, ""),
        "AE",
        "ORC^1^2^1",
        "101",
        "placer order number",
    ),
    (
        ONC_OMG,
        lambda t: set_field(t, "ORC", 12, "1234567890^Allen^Anthony^^^^^^&2.16.840.1.113883.4.6&ISO"),
        "AE",
        "ORC^1^12^1^1",
        "102",
        "check digit",
    ),
    (ONC_OMG, lambda t: set_field(t, "MSH", 18, "KLINGON"), "AR", "MSH^1^18^1", "103", "KLINGON"),
    (ONC_OMG, lambda t: set_field(t, "MSH", 2, "^^^^"), "AR", "MSH^1^2^1", "102", "encoding characters"),
]


@pytest.mark.parametrize(
    ("reference", "breaks", "code", "location", "error", "words"),
    CASES,
    ids=[f"{c[0].split('/')[1][:8]}-{c[3]}-{c[4]}" for c in CASES],
)
def test_a_broken_referral_is_refused_precisely_and_creates_nothing(
    reference_dir, reference, breaks, code, location, error, words
):
    text = breaks(reference_text(reference_dir, reference))

    answer = hl7_message_receive(raw=text.encode("ascii"), via="test")

    ack = ack_fields(answer.ack)
    assert ack["MSA"][1] == code, answer.ack
    assert ack["ERR"][2] == location, answer.ack
    assert ack["ERR"][3].split("^")[0] == error, answer.ack
    assert words in ack["ERR"][8], answer.ack
    assert not Referral.objects.exists()
    assert not Patient.objects.exists()
    assert not ReferringProvider.objects.exists()
    message = InterfaceMessage.objects.get()
    assert message.status == InterfaceMessage.Status.REJECTED
    assert message.referral is None
    assert words in message.detail


def test_text_that_is_not_hl7_is_rejected(reference_dir):
    answer = hl7_message_receive(raw=b"GET / HTTP/1.1\r\nHost: refloop\r\n\r\n", via="test")

    assert answer.code == "AR"
    assert "MSH" in ack_fields(answer.ack)["ERR"][8]
    assert not Referral.objects.exists()


def test_a_bad_message_with_a_control_id_can_be_corrected_and_sent_again(reference_dir):
    """The refusal is kept under its MSH-10; the corrected message (new MSH-10, as HL7 requires) is taken."""
    good = reference_text(reference_dir, ONC_OMG)
    bad = set_field(good, "TQ1", 9, "Z")

    assert hl7_message_receive(raw=bad.encode(), via="test").code == "AE"
    corrected = set_field(good, "MSH", 10, "17883")
    assert hl7_message_receive(raw=corrected.encode(), via="test").code == "AA"

    assert Referral.objects.count() == 1


def test_acks_are_valid_hl7_acks(reference_dir):
    """hl7apy's strict v2.5.1 validation, an independent check of the ACK and its ERR segment."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    good = reference_text(reference_dir, ONC_OMG)
    bad = set_field(set_field(good, "MSH", 10, "17990"), "PID", 7, "19581317")

    answers = [hl7_message_receive(raw=text.encode(), via="test") for text in (good, bad)]

    assert [a.code for a in answers] == ["AA", "AE"]
    for answer in answers:
        parse_message(answer.ack, find_groups=True, validation_level=VALIDATION_LEVEL.STRICT).validate()
