"""Character sets (MSH-18), escape sequences and repeated fields are read as the sender meant them."""

from __future__ import annotations

import pytest

from refloop.interop.hl7.inbound import hl7_message_receive
from refloop.referrals.models import Referral
from tests.interop.hl7_messages import ONC_OMG, ack_fields, reference_text, set_field

pytestmark = pytest.mark.django_db


def omg(reference_dir, **fields) -> str:
    text = reference_text(reference_dir, ONC_OMG)
    for key, value in fields.items():
        segment, number = key.split("_")
        text = set_field(text, segment, int(number), value)
    return text


def test_latin_1_declared_in_msh_18_is_decoded(reference_dir):
    text = omg(reference_dir, MSH_18="8859/1", PID_5="Müller^Zoë^^^^^L", OBR_31="^Céphalée persistante^")

    answer = hl7_message_receive(raw=text.encode("iso8859-1"), via="test")

    assert answer.code == "AA", answer.ack
    referral = Referral.objects.get()
    assert (referral.patient.last_name, referral.patient.first_name) == ("Müller", "Zoë")
    assert referral.reason == "Céphalée persistante"
    assert ack_fields(answer.ack)["MSH"][18] == "8859/1"  # answered in the sender's character set


def test_utf_8_declared_in_msh_18_is_decoded(reference_dir):
    text = omg(reference_dir, MSH_18="UNICODE UTF-8", PID_5="Nguyễn^Thảo^^^^^L")

    assert hl7_message_receive(raw=text.encode("utf-8"), via="test").code == "AA"

    assert Referral.objects.get().patient.last_name == "Nguyễn"


def test_bytes_that_break_the_declared_character_set_are_rejected(reference_dir):
    text = omg(reference_dir, MSH_18="ASCII", PID_5="Müller^Zoë^^^^^L")

    answer = hl7_message_receive(raw=text.encode("iso8859-1"), via="test")

    assert answer.code == "AR"
    err = ack_fields(answer.ack)["ERR"]
    assert err[2] == "MSH^1^18^1" and "0xFC" in err[8]
    assert not Referral.objects.exists()


def test_escape_sequences_become_the_characters_they_stand_for(reference_dir):
    reason = r"^Headache \T\ dizziness\F\ rule out 50\E\50 \S\ see\X0A\notes\.br\line two^"
    text = omg(reference_dir, OBR_31=reason, PID_5=r"O\S\Brien^Peter^^^^^L")

    assert hl7_message_receive(raw=text.encode(), via="test").code == "AA"

    referral = Referral.objects.get()
    assert referral.reason == "Headache & dizziness| rule out 50\\50 ^ see\nnotes\nline two"
    assert referral.patient.last_name == "O^Brien"


def test_repeated_fields_are_each_read(reference_dir):
    text = omg(
        reference_dir,
        PID_5="Pack^Pete^^^^^A~Packton^Peter^^^^^L",  # an alias first, the legal name second
        PID_13="^NET^Internet^peter@example.org~^PRN^PH^^1^614^5550142",
        OBR_31="^Rule out headache^~^Visual aura^",
    )

    assert hl7_message_receive(raw=text.encode(), via="test").code == "AA"

    referral = Referral.objects.get()
    patient = referral.patient
    assert (patient.first_name, patient.last_name) == ("Peter", "Packton")
    assert patient.email == "peter@example.org"
    assert patient.phone == "(614) 555-0142"
    assert referral.reason == "Rule out headache; Visual aura"


def test_segments_ended_by_newlines_are_read_too(reference_dir):
    text = reference_text(reference_dir, ONC_OMG).replace("\r", "\r\n")

    assert hl7_message_receive(raw=text.encode(), via="test").code == "AA"
    assert Referral.objects.count() == 1
