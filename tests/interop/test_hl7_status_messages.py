"""Each step of the loop writes its HL7 status message: RRI^I12 or OSU^O51 on accept and decline, SIU^S12 on
scheduling, SIU^S26 on a no-show; with no destination configured they wait, queued, and nothing fails."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from refloop.interop.hl7.inbound import hl7_message_receive
from refloop.interop.models import InterfaceMessage
from refloop.referrals.services import referral_transition
from tests.interop.hl7_messages import HAPI_REF, ONC_OMG, reference_text, segments
from tests.referrals.factories import clinician, location, referral

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_destination(settings):
    settings.HL7_DESTINATION = ""


def outbound():
    return InterfaceMessage.objects.filter(direction="out", protocol="hl7v2").order_by("pk")


def fields(text: str, segment_id: str) -> list[str]:
    for seg in segments(text):
        if seg.startswith(segment_id + "|"):
            parts = seg.split("|")
            return ["MSH", "|", *parts[1:]] if segment_id == "MSH" else parts
    raise AssertionError(f"no {segment_id} in {text!r}")


def strictly_valid(text: str) -> None:
    """hl7apy's strict validation of the v2.5.1 structure: an independent check of what refloop writes."""
    parse_message(text, find_groups=True, validation_level=VALIDATION_LEVEL.STRICT).validate()


def from_hl7(reference_dir, name):
    return hl7_message_receive(raw=reference_text(reference_dir, name).encode(), via="test").referral


def test_accepting_a_360x_referral_writes_an_osu_o51(users, reference_dir):
    ref = from_hl7(reference_dir, ONC_OMG)

    referral_transition(referral=ref, name="accept", by=users["coordinator"])

    message = outbound().get()
    assert (message.message_type, message.status, message.referral) == ("OSU^O51", "queued", ref)
    assert "no destination" in message.detail
    orc = fields(message.payload, "ORC")
    assert orc[1] == "OK"
    assert orc[2] == "889342^^1.3.6.1.4.1.21367.2016.10.1.21.15^ISO"  # the sender's placer order number
    msh = fields(message.payload, "MSH")
    assert msh[10] == message.control_id
    assert msh[6] == "^1.3.6.1.4.1.21367.2016.10.1.21^ISO"  # addressed to the system that sent the referral
    assert fields(message.payload, "PID")[5] == "Packton^Peter^^^^^L"


def test_declining_a_360x_referral_says_why(users, reference_dir):
    ref = from_hl7(reference_dir, ONC_OMG)

    referral_transition(referral=ref, name="decline", by=users["coordinator"], data={"reason": "Not our specialty"})

    orc = fields(outbound().get().payload, "ORC")
    assert (orc[1], orc[5], orc[16]) == ("UA", "CA", "^Not our specialty")


def test_accepting_a_ref_i12_referral_writes_an_rri_i12(users, reference_dir):
    ref = from_hl7(reference_dir, HAPI_REF)

    referral_transition(referral=ref, name="accept", by=users["coordinator"])

    message = outbound().get()
    assert message.message_type == "RRI^I12"
    rf1 = fields(message.payload, "RF1")
    assert rf1[1] == "A^Accepted^HL70283"
    assert rf1[6] == "15"  # RF1-6: the sender's referral id
    assert fields(message.payload, "PRD")[1] == "RP^Referring Provider^HL70286"
    strictly_valid(message.payload)


def test_a_referral_that_came_by_fax_is_declined_with_an_rri_i12(users):
    ref = referral(by=users["coordinator"], urgency="urgent")

    referral_transition(referral=ref, name="decline", by=users["coordinator"], data={"reason": "Needs an MRI first"})

    message = outbound().get()
    rf1 = fields(message.payload, "RF1")
    assert (rf1[1], rf1[2]) == ("R^Rejected^HL70283", "A^^HL70280")
    assert rf1[11] == f"{ref.pk}^REFLOOP"
    assert "Needs an MRI first" in fields(message.payload, "NTE")[3]
    assert fields(message.payload, "PRD")[7] == f"{ref.referring_provider.npi}^NPI"
    strictly_valid(message.payload)


def test_scheduling_and_a_no_show_write_siu_s12_and_s26(users):
    ref = referral(by=users["coordinator"])
    referral_transition(referral=ref, name="accept", by=users["coordinator"])
    when = timezone.now().replace(microsecond=0) + dt.timedelta(days=3)
    doctor = clinician()

    ref = referral_transition(
        referral=ref,
        name="schedule",
        by=users["coordinator"],
        data={"appointment_at": when, "location": location(), "clinician": doctor},
    )
    referral_transition(referral=ref, name="mark_no_show", by=users["coordinator"])

    accept, scheduled, no_show = outbound()
    assert [m.message_type for m in (accept, scheduled, no_show)] == ["RRI^I12", "SIU^S12", "SIU^S26"]
    start = timezone.localtime(when).strftime("%Y%m%d%H%M%S%z")
    assert fields(scheduled.payload, "TQ1")[7] == start
    assert fields(scheduled.payload, "SCH")[25] == "Booked^^HL70278"
    assert fields(scheduled.payload, "AIP")[3].startswith(f"{doctor.npi}^Ortega^Ana")
    assert fields(scheduled.payload, "AIL")[3] == "Main campus"
    assert fields(no_show.payload, "SCH")[25] == "Noshow^^HL70278"
    assert fields(no_show.payload, "MSH")[9] == "SIU^S26^SIU_S12"
    for message in (scheduled, no_show):
        strictly_valid(message.payload)
    assert len({m.control_id for m in outbound()}) == 3


def test_receiving_and_seeing_the_patient_write_no_hl7_message(users):
    referral(by=users["coordinator"])

    assert not outbound().exists()


def test_a_step_rolled_back_leaves_no_message(users):
    from django.db import transaction

    ref = referral(by=users["coordinator"])
    with pytest.raises(RuntimeError), transaction.atomic():
        referral_transition(referral=ref, name="accept", by=users["coordinator"])
        raise RuntimeError("the page failed after the step")

    assert not outbound().exists()
