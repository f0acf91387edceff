"""The signed consult report as a C-CDA R2.1 Consultation Note (LOINC 11488-4).

Its `inFulfillmentOf/order/id` is the referral's id (and the sender's own referral id, when the referral came
electronically), which is what the referring provider's EHR matches to close its loop for CMS50 ("Closing the
Referral Loop: Receipt of Specialist Report"); the SNOMED translation 371530004 is the concept that measure's
value set holds. The header follows the C-CDA example "Close Referral with a Document" (HL7 CDA-Examples),
elements in the order of the CDA R2 schema; the body has the Consultation Note's sections, as narrative.

Built with ElementTree so the document is always well-formed; text is stripped of the control characters XML
1.0 forbids. Only a signed report is a document: a draft is not.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from refloop.letters.models import ConsultReport
from refloop.practice.models import Practice

NS = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LOINC = "2.16.840.1.113883.6.1"
SNOMED = "2.16.840.1.113883.6.96"
NPI_ROOT = "2.16.840.1.113883.4.6"
US_REALM_HEADER = "2.16.840.1.113883.10.20.22.1.1"
CONSULTATION_NOTE = "2.16.840.1.113883.10.20.22.1.4"
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SEX = {"F": ("F", "Female"), "M": ("M", "Male")}

ET.register_namespace("", NS)
ET.register_namespace("xsi", XSI)


class NotADocument(Exception):
    """The report is not signed yet: there is no document to give."""


def oid_root() -> str:
    """The root of this installation's identifiers: REFLOOP_OID_ROOT, else an OID under 2.25 (UUID-based)
    derived from the practice's NPI or name, stable for the installation."""
    configured = getattr(settings, "INTEROP_OID_ROOT", "")
    if configured:
        if not re.fullmatch(r"[0-2](\.(0|[1-9]\d*))+", configured):
            raise ImproperlyConfigured(
                f"REFLOOP_OID_ROOT must be an OID such as 2.16.840.1.113883.3.1234; got {configured!r}"
            )
        return configured
    practice = Practice.current()
    seed = (practice.npi or practice.name) if practice else "refloop"
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:refloop:{seed}').int}"


def referral_ids(referral) -> list[tuple[str, str]]:
    """(root, extension) of the referral: refloop's own id, then the sender's (RF1-6 / ORC-2) when known."""
    ids = [(f"{oid_root()}.1", str(referral.pk))]
    if referral.external_id:
        parts = referral.external_id.split("^")
        universal = parts[2] if len(parts) > 2 and re.fullmatch(r"[0-2](\.\d+)+", parts[2] or "") else ""
        if universal:
            ids.append((universal, parts[0]))
    return ids


def _clean(text: object) -> str:
    return _FORBIDDEN.sub("", str(text or ""))


def _el(parent: ET.Element | None, tag: str, text: str = "", **attrs: str) -> ET.Element:
    attrs = {k.rstrip("_"): _clean(v) for k, v in attrs.items() if v not in (None, "")}
    element = ET.Element(f"{{{NS}}}{tag}", attrs) if parent is None else ET.SubElement(parent, f"{{{NS}}}{tag}", attrs)
    if text:
        element.text = _clean(text)
    return element


def _ts(moment) -> str:
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S%z") if moment else ""


def _addr(parent: ET.Element, thing, use: str) -> None:
    if thing is None or not (getattr(thing, "address_line1", "") or getattr(thing, "city", "")):
        _el(parent, "addr", nullFlavor="UNK")
        return
    addr = _el(parent, "addr", use=use)
    for line in (thing.address_line1, thing.address_line2):
        if line:
            _el(addr, "streetAddressLine", line)
    _el(addr, "city", thing.city)
    _el(addr, "state", thing.state)
    _el(addr, "postalCode", thing.postal_code)
    _el(addr, "country", "US")


def _telecom(parent: ET.Element, phone: str, use: str) -> None:
    digits = re.sub(r"[^\d+]", "", phone or "")
    if digits:
        _el(parent, "telecom", use=use, value=f"tel:{digits}")
    else:
        _el(parent, "telecom", nullFlavor="UNK")


def _name(parent: ET.Element, person, *, with_credentials: bool = True) -> None:
    name = _el(parent, "name")
    if getattr(person, "name_prefix", ""):
        _el(name, "prefix", person.name_prefix)
    if person.first_name:
        _el(name, "given", person.first_name)
    if getattr(person, "middle_name", ""):
        _el(name, "given", person.middle_name)
    _el(name, "family", person.last_name)
    if with_credentials and getattr(person, "credentials", ""):
        _el(name, "suffix", person.credentials, qualifier="AC")


def _section(body: ET.Element, template: tuple[str, str], code: str, display: str, title: str, paragraphs) -> None:
    section = _el(_el(body, "component"), "section")
    _el(section, "templateId", root=template[0], extension=template[1])
    if template[1]:
        _el(section, "templateId", root=template[0])
    _el(section, "code", code=code, codeSystem=LOINC, codeSystemName="LOINC", displayName=display)
    _el(section, "title", title)
    text = _el(section, "text")
    paragraphs = [p for p in paragraphs if p and str(p).strip()]
    for paragraph in paragraphs or ["No information."]:
        _el(text, "paragraph", str(paragraph).strip())


def consult_note(report: ConsultReport) -> bytes:
    """The C-CDA Consultation Note of a signed consult report, as UTF-8 XML."""
    if not report.is_signed or report.signed_at is None:
        raise NotADocument("Only a signed consult report can be given as a C-CDA document.")
    referral = report.referral
    patient = referral.patient
    clinician = report.clinician or referral.clinician
    practice = Practice.current()
    root = oid_root()

    doc = _el(None, "ClinicalDocument")
    doc.set(f"{{{XSI}}}schemaLocation", "urn:hl7-org:v3 CDA.xsd")
    _el(doc, "realmCode", code="US")
    _el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    _el(doc, "templateId", root=US_REALM_HEADER, extension="2015-08-01")
    _el(doc, "templateId", root=CONSULTATION_NOTE, extension="2015-08-01")
    _el(doc, "id", root=f"{root}.2", extension=f"{report.pk}.{report.version}")
    code = _el(doc, "code", code="11488-4", codeSystem=LOINC, codeSystemName="LOINC", displayName="Consult note")
    _el(
        code,
        "translation",
        code="371530004",
        codeSystem=SNOMED,
        codeSystemName="SNOMED CT",
        displayName="Clinical consultation report (record artifact)",
    )
    _el(doc, "title", "Consultation Note" if report.is_final else "Consultation Note (progress report)")
    _el(doc, "effectiveTime", value=_ts(report.signed_at))
    _el(doc, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25", displayName="normal")
    _el(doc, "languageCode", code="en-US")
    _el(doc, "setId", root=f"{root}.3", extension=str(report.pk))
    _el(doc, "versionNumber", value="1")

    # recordTarget: the patient
    role = _el(_el(doc, "recordTarget"), "patientRole")
    _el(role, "id", root=f"{root}.4", extension=str(patient.pk))
    if patient.mrn:
        _el(role, "id", root=f"{root}.5", extension=patient.mrn)
    _addr(role, patient, "HP")
    _telecom(role, patient.phone, "HP")
    person = _el(role, "patient")
    name = _el(person, "name", use="L")
    _el(name, "given", patient.first_name)
    _el(name, "family", patient.last_name)
    if patient.sex in SEX:
        sex, label = SEX[patient.sex]
        _el(person, "administrativeGenderCode", code=sex, codeSystem="2.16.840.1.113883.5.1", displayName=label)
    else:
        _el(person, "administrativeGenderCode", nullFlavor="UNK")
    _el(person, "birthTime", value=patient.birth_date.strftime("%Y%m%d"))
    _el(person, "raceCode", nullFlavor="UNK")
    _el(person, "ethnicGroupCode", nullFlavor="UNK")
    if patient.preferred_language:
        language = {"english": "en", "spanish": "es"}.get(patient.preferred_language.lower())
        if language:
            _el(_el(person, "languageCommunication"), "languageCode", code=language)

    # author: the signing clinician
    author = _el(doc, "author")
    _el(author, "time", value=_ts(report.signed_at))
    _assigned(author, "assignedAuthor", clinician, practice)

    # custodian: the practice
    custodian = _el(_el(_el(doc, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    if practice is not None and practice.npi:
        _el(custodian, "id", root=NPI_ROOT, extension=practice.npi)
    else:
        _el(custodian, "id", root=f"{root}.6", extension="practice")
    _el(custodian, "name", practice.name if practice else settings.HL7_APPLICATION)
    _telecom(custodian, practice.phone if practice else "", "WP")
    _addr(custodian, practice, "WP")

    # informationRecipient: the referring provider who asked
    provider = referral.referring_provider
    if provider is not None:
        intended = _el(_el(doc, "informationRecipient"), "intendedRecipient")
        if provider.npi:
            _el(intended, "id", root=NPI_ROOT, extension=provider.npi)
        _name(_el(intended, "informationRecipient"), provider)
        if referral.referring_practice is not None:
            _el(_el(intended, "receivedOrganization"), "name", referral.referring_practice.name)

    # legalAuthenticator: the signature
    authenticator = _el(doc, "legalAuthenticator")
    _el(authenticator, "time", value=_ts(report.signed_at))
    _el(authenticator, "signatureCode", code="S")
    _assigned(authenticator, "assignedEntity", clinician, practice)

    # inFulfillmentOf: the referral this document answers (what closes the loop)
    order = _el(_el(doc, "inFulfillmentOf", typeCode="FLFS"), "order", classCode="ACT", moodCode="RQO")
    for id_root, extension in referral_ids(referral):
        _el(order, "id", root=id_root, extension=extension)
    _el(
        order,
        "code",
        code="3457005",
        codeSystem=SNOMED,
        codeSystemName="SNOMED CT",
        displayName="Patient referral (procedure)",
    )

    # componentOf: the consultation visit
    encounter = _el(_el(doc, "componentOf"), "encompassingEncounter")
    _el(encounter, "id", root=f"{root}.7", extension=str(referral.pk))
    visit = referral.seen_at or referral.appointment_at or report.signed_at
    _el(encounter, "effectiveTime", value=_ts(visit))
    if clinician is not None:
        party = _el(_el(encounter, "responsibleParty"), "assignedEntity")
        _el(party, "id", root=NPI_ROOT, extension=clinician.npi)
        _name(_el(party, "assignedPerson"), clinician)
    if referral.location is not None:
        facility = _el(_el(encounter, "location"), "healthCareFacility")
        _el(facility, "id", root=f"{root}.8", extension=str(referral.location_id))
        place = _el(facility, "location")
        _el(place, "name", referral.location.name)
        _addr(place, referral.location, "WP")

    body = _el(_el(doc, "component"), "structuredBody")
    _section(
        body,
        ("2.16.840.1.113883.10.20.22.2.9", "2014-06-09"),
        "51847-2",
        "Assessment and plan",
        "Assessment and Plan",
        [
            report.assessment,
            report.plan,
            report.recommendations and f"Recommendations for the referring provider: {report.recommendations}",
        ],
    )
    _section(
        body,
        ("1.3.6.1.4.1.19376.1.5.3.1.3.1", "2014-06-09"),
        "42349-1",
        "Reason for referral",
        "Reason for Referral",
        [referral.reason],
    )
    _section(
        body,
        ("1.3.6.1.4.1.19376.1.5.3.1.3.4", ""),
        "10164-2",
        "History of present illness",
        "History of Present Illness",
        [report.findings],
    )
    if report.ehr_pdf_name:
        _section(
            body,
            ("2.16.840.1.113883.10.20.22.2.65", "2016-11-01"),
            "11488-4",
            "Consult note",
            "Consultation Notes",
            [f"The full report is the EHR document {report.ehr_pdf_name}."],
        )
    ET.indent(doc, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(doc, encoding="utf-8", xml_declaration=False)


def _assigned(parent: ET.Element, tag: str, clinician, practice) -> None:
    assigned = _el(parent, tag)
    if clinician is not None:
        _el(assigned, "id", root=NPI_ROOT, extension=clinician.npi)
    else:
        _el(assigned, "id", nullFlavor="UNK")
    _addr(assigned, practice, "WP")
    _telecom(assigned, practice.phone if practice else "", "WP")
    if clinician is not None:
        _name(_el(assigned, "assignedPerson"), clinician)
    if tag == "assignedAuthor" and practice is not None:
        organization = _el(assigned, "representedOrganization")
        if practice.npi:
            _el(organization, "id", root=NPI_ROOT, extension=practice.npi)
        _el(organization, "name", practice.name)
