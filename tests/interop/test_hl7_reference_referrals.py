"""Every real HL7 v2 referral in shared/reference creates the referral it describes, answered AA."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from refloop.directory.models import ReferringProvider, Source
from refloop.interop.hl7.inbound import hl7_message_receive
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Channel, Referral
from tests.directory.factories import next_npi, provider
from tests.interop.hl7_messages import HAPI_REF, ONC_OMG, REFERRAL_MESSAGES, ack_fields, reference_text, set_field

pytestmark = pytest.mark.django_db
NEW_YORK = ZoneInfo("America/New_York")


def receive(text: str):
    return hl7_message_receive(raw=text.encode("ascii"), via="test")


def test_the_hapi_ref_i12_creates_its_referral(reference_dir):
    answer = receive(reference_text(reference_dir, HAPI_REF))

    assert answer.code == "AA", answer.ack
    referral = Referral.objects.get()
    patient = referral.patient
    assert (patient.first_name, patient.last_name, patient.birth_date, patient.sex) == (
        "aaa",
        "aaa",
        dt.date(1900, 1, 1),
        "M",
    )
    assert referral.reason == "engine oil problem, and maybe needs new plugs"
    assert referral.urgency == "routine"  # RF1-2 is empty
    assert referral.channel == Channel.HL7
    assert referral.external_id == "15"  # RF1-6, the sender's referral id
    assert referral.received_at == dt.datetime(2010, 6, 4, 10, 45, 59, tzinfo=NEW_YORK)  # MSH-7, no offset: local
    assert "Referral effective: 2010-06-01" in referral.notes  # RF1-7
    assert "Allergies: scooters" in referral.notes  # the other NTEs, with their labels
    referring = referral.referring_provider
    assert (referring.first_name, referring.last_name, referring.name_prefix) == ("doctor", "foo", "DR")
    assert referring.npi == ""  # PRD-7 is a local id (999998), not an NPI
    assert "999998" in referring.notes
    assert referring.source == Source.REFERRAL
    assert ReferringProvider.objects.count() == 1  # the PRD with role RT (referred to) is not the referrer


def test_the_360x_omg_o19_creates_its_referral(reference_dir):
    answer = receive(reference_text(reference_dir, ONC_OMG))

    assert answer.code == "AA", answer.ack
    assert ack_fields(answer.ack)["MSA"][2] == "17882"
    referral = Referral.objects.get()
    patient = referral.patient
    assert (patient.first_name, patient.last_name, patient.birth_date, patient.sex) == (
        "Peter",
        "Packton",
        dt.date(1958, 8, 17),
        "M",
    )
    assert patient.mrn == ""  # T7190334 is the sender's MRN, not this practice's: kept in the notes only
    assert "T7190334" in referral.notes
    assert referral.reason == "Rule out headache"  # OBR-31
    assert referral.urgency == "routine"
    assert referral.external_id == "889342^^1.3.6.1.4.1.21367.2016.10.1.21.15^ISO"  # ORC-2, the placer order number
    assert referral.received_at == dt.datetime(2016, 9, 30, 15, 38, 34, tzinfo=dt.UTC)
    assert "Wanted by: 2016-10-18 19:59" in referral.notes  # TQ1-8, 23:59:59 UTC shown in New York time
    referring = referral.referring_provider
    assert (referring.first_name, referring.middle_name, referring.last_name) == ("Anthony", "M", "Allen")
    assert (referring.name_suffix, referring.name_prefix, referring.credentials) == ("III", "MD", "")
    assert referring.npi == ""  # 34225PC under the sender's own assigning authority
    message = InterfaceMessage.objects.get()
    assert (message.status, message.control_id, message.referral) == ("accepted", "17882", referral)
    assert message.sender == "1.3.6.1.4.1.21367.2016.10.1.21"


def test_a_referring_npi_in_the_directory_is_the_referrer(reference_dir):
    known = provider(first_name="Anthony", last_name="Allen", npi=next_npi())
    text = set_field(
        reference_text(reference_dir, ONC_OMG),
        "ORC",
        12,
        f"{known.npi}^Allen^Anthony^^^^MD^^&2.16.840.1.113883.4.6&ISO^L^^^NPI",
    )

    assert receive(text).code == "AA"

    assert Referral.objects.get().referring_provider == known
    assert ReferringProvider.objects.count() == 1


def test_an_unknown_referring_npi_is_added_to_the_directory(reference_dir):
    npi = next_npi()
    text = set_field(reference_text(reference_dir, HAPI_REF), "PRD", 7, f"{npi}^NPI")

    assert receive(text).code == "AA"

    referring = Referral.objects.get().referring_provider
    assert (referring.npi, referring.last_name, referring.source) == (npi, "foo", Source.REFERRAL)


def test_a_provider_without_npi_is_found_again_by_name(reference_dir):
    first = receive(reference_text(reference_dir, ONC_OMG))
    second = receive(set_field(set_field(reference_text(reference_dir, ONC_OMG), "MSH", 10, "17883"), "ORC", 2, "1"))

    assert (first.code, second.code) == ("AA", "AA")
    assert Referral.objects.count() == 2
    assert ReferringProvider.objects.count() == 1


def test_priority_dates_and_diagnoses_are_read(reference_dir):
    text = set_field(reference_text(reference_dir, HAPI_REF), "RF1", 2, "S^STAT^HL70280")
    text = set_field(text, "RF1", 8, "20100901")
    text = text + "DG1|1||M25.561^Pain in right knee^I10|\r"

    assert receive(text).code == "AA"

    referral = Referral.objects.get()
    assert referral.urgency == "stat"
    assert referral.diagnosis_codes == ["M25.561"]
    assert "Referral expires: 2010-09-01" in referral.notes


def test_every_hl7_file_in_the_reference_set_is_a_referral_taken_with_aa(reference_dir):
    files = sorted(f"hl7v2/{p.name}" for p in (reference_dir / "hl7v2").iterdir() if p.is_file())
    assert files == sorted(REFERRAL_MESSAGES), "a new reference message: add it to the tests above"

    answers = [receive(reference_text(reference_dir, name)) for name in files]

    assert [a.code for a in answers] == ["AA"] * len(files)
    assert Referral.objects.count() == len(files)
