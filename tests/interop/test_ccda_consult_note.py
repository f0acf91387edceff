"""The signed consult report as a C-CDA R2.1 Consultation Note whose inFulfillmentOf names the referral, shaped
like the HL7 example "Close Referral with a Document" (shared/reference/ccda), downloadable from the report page."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from refloop.accounts.models import AuditEvent
from refloop.interop.ccda import NotADocument, consult_note
from refloop.interop.hl7.inbound import hl7_message_receive
from refloop.letters import services
from refloop.letters.models import ConsultReport
from refloop.referrals.services import referral_transition
from tests.interop.hl7_messages import ONC_OMG, reference_text
from tests.letters.factories import letterhead, seen_referral
from tests.referrals.factories import clinician, location

pytestmark = pytest.mark.django_db
V3 = "{urn:hl7-org:v3}"
CLOSE_REFERRAL = "ccda/referrals-close-referral-with-a-document.xml"
REPORT = {
    "findings": "Medial joint line tenderness; McMurray positive.",
    "assessment": "Degenerative medial meniscus tear.",
    "plan": "Physical therapy for six weeks.",
    "recommendations": "Continue NSAIDs as tolerated.",
    "is_final": True,
}
# The order of the CDA R2 header (POCD_MT000040.ClinicalDocument in CDA.xsd).
CDA_HEADER_ORDER = [
    "realmCode", "typeId", "templateId", "id", "code", "title", "effectiveTime", "confidentialityCode",
    "languageCode", "setId", "versionNumber", "copyTime", "recordTarget", "author", "dataEnterer", "informant",
    "custodian", "informationRecipient", "legalAuthenticator", "authenticator", "participant", "inFulfillmentOf",
    "documentationOf", "relatedDocument", "authorization", "componentOf", "component",
]  # fmt: skip


@pytest.fixture
def doctor(users):
    return clinician(user=users["clinician"])


def signed(users, referral=None, doctor=None, **changes) -> ConsultReport:
    referral = referral or seen_referral(by=users["coordinator"], doctor=doctor)
    report = services.report_save(referral=referral, data=REPORT | changes, by=users["clinician"])
    return services.report_sign(report=report, by=users["clinician"])


def xml(data: bytes):
    return ET.fromstring(data)  # noqa: S314 - refloop's own document, or a reference file: trusted


def tags(element) -> list[str]:
    names = [child.tag.removeprefix(V3) for child in element if isinstance(child.tag, str)]
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


def test_the_note_is_a_consultation_note_that_fulfils_the_referral(users, doctor):
    report = signed(users, doctor=doctor)
    referral = report.referral

    doc = xml(consult_note(report))

    assert doc.tag == f"{V3}ClinicalDocument"
    assert doc.find(f"{V3}code").get("code") == "11488-4"
    assert doc.find(f"{V3}code/{V3}translation").get("code") == "371530004"  # CMS50's value set concept
    templates = {(t.get("root"), t.get("extension")) for t in doc.findall(f"{V3}templateId")}
    assert ("2.16.840.1.113883.10.20.22.1.4", "2015-08-01") in templates  # Consultation Note (V3)
    assert ("2.16.840.1.113883.10.20.22.1.1", "2015-08-01") in templates  # US Realm Header (V3)
    fulfils = doc.find(f"{V3}inFulfillmentOf")
    assert fulfils.get("typeCode") == "FLFS"
    order = fulfils.find(f"{V3}order")
    assert (order.get("classCode"), order.get("moodCode")) == ("ACT", "RQO")
    assert [i.get("extension") for i in order.findall(f"{V3}id")] == [str(referral.pk)]
    name = doc.find(f"{V3}recordTarget/{V3}patientRole/{V3}patient/{V3}name")
    assert (name.find(f"{V3}given").text, name.find(f"{V3}family").text) == (
        referral.patient.first_name,
        referral.patient.last_name,
    )
    assert doc.find(f"{V3}author/{V3}assignedAuthor/{V3}id").get("extension") == doctor.npi
    recipient = doc.find(f"{V3}informationRecipient/{V3}intendedRecipient/{V3}id")
    assert recipient.get("extension") == referral.referring_provider.npi
    assert doc.find(f"{V3}legalAuthenticator/{V3}signatureCode").get("code") == "S"
    text = ET.tostring(doc, encoding="unicode")
    for words in REPORT.values():
        if isinstance(words, str):
            assert words.replace("&", "&amp;") in text


def test_the_note_is_shaped_like_the_hl7_close_referral_example(users, doctor, reference_dir):
    example = xml((reference_dir / CLOSE_REFERRAL).read_bytes())
    ours = xml(consult_note(signed(users, doctor=doctor)))

    example_order = tags(example)
    assert example_order == [t for t in CDA_HEADER_ORDER if t in example_order]  # the order list itself is right
    ours_order = tags(ours)
    assert ours_order == [t for t in CDA_HEADER_ORDER if t in ours_order]  # the schema's sequence
    assert set(tags(example)) - {"dataEnterer", "informant", "authenticator"} <= set(ours_order) | {
        "legalAuthenticator"
    }
    for path in ("inFulfillmentOf", f"inFulfillmentOf/{V3}order"):
        theirs, mine = example.find(f"{V3}{path}"), ours.find(f"{V3}{path}")
        assert theirs.attrib == mine.attrib
        assert set(tags(theirs)) <= set(tags(mine))
    example_codes = {s.get("code") for s in example.iter(f"{V3}code") if s.get("codeSystem") == "2.16.840.1.113883.6.1"}
    our_sections = {s.find(f"{V3}code").get("code") for s in ours.iter(f"{V3}section")}
    assert {"51847-2", "10164-2"} <= our_sections & example_codes  # Assessment and Plan, HPI
    for section in ours.iter(f"{V3}section"):
        assert tags(section)[:4] == ["templateId", "code", "title", "text"]


def test_a_referral_that_came_by_360x_is_fulfilled_under_the_senders_id_too(users, doctor, reference_dir):
    letterhead()
    received = hl7_message_receive(raw=reference_text(reference_dir, ONC_OMG).encode(), via="test").referral
    coordinator = users["coordinator"]
    referral_transition(referral=received, name="accept", by=coordinator)
    data = {"appointment_at": received.received_at.replace(year=2026), "location": location(), "clinician": doctor}
    referral_transition(referral=received, name="schedule", by=coordinator, data=data)
    seen = referral_transition(referral=received, name="mark_seen", by=coordinator)

    doc = xml(consult_note(signed(users, referral=seen)))

    ids = [(i.get("root"), i.get("extension")) for i in doc.findall(f"{V3}inFulfillmentOf/{V3}order/{V3}id")]
    assert ids[1] == ("1.3.6.1.4.1.21367.2016.10.1.21.15", "889342")  # ORC-2 of the 360X request


def test_markup_and_control_characters_in_the_report_stay_text(users, doctor):
    report = signed(users, doctor=doctor, assessment="Tear <grade 2> & effusion\x0b; \"no\" 'surgery'")

    doc = xml(consult_note(report))

    paragraphs = [p.text for p in doc.iter(f"{V3}paragraph")]
    assert "Tear <grade 2> & effusion; \"no\" 'surgery'" in paragraphs


def test_a_draft_is_not_a_document(users, doctor, client_as):
    referral = seen_referral(by=users["coordinator"], doctor=doctor)
    draft = services.report_save(referral=referral, data=REPORT, by=users["clinician"])

    with pytest.raises(NotADocument):
        consult_note(draft)
    assert client_as("coordinator").get(f"/letters/reports/{draft.pk}/consult-note.xml").status_code == 404


def test_the_report_page_offers_the_download_which_is_audited(users, doctor, client_as):
    report = signed(users, doctor=doctor)
    client = client_as("coordinator")

    page = client.get(f"/letters/reports/{report.pk}/").content.decode()
    response = client.get(f"/letters/reports/{report.pk}/consult-note.xml")

    assert f"/letters/reports/{report.pk}/consult-note.xml" in page
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    assert "attachment" in response["Content-Disposition"]
    xml(response.content)
    event = AuditEvent.objects.filter(action="letters.report.download").latest("seq")
    assert event.actor == users["coordinator"] and event.detail == {"document": "ccda"}
    assert event.patient_id == str(report.referral.patient_id)


def test_a_role_without_letters_access_cannot_download(users, doctor, client_as):
    report = signed(users, doctor=doctor)

    assert client_as("liaison").get(f"/letters/reports/{report.pk}/consult-note.xml").status_code == 403
    assert not AuditEvent.objects.filter(action="letters.report.download").exists()
