"""What a letter template may use: plain values, never model objects.

A template gets dictionaries of strings and dates built here, so it can print exactly the fields listed beside
the editor and nothing else: no `{{ referral.referring_provider.referrals.all }}` reaching another patient's
record, no method a template could call. `FIELDS` is that list; `sample_context()` fills every field with a
made-up patient so a template is checked (and previewed) against all of them when it is saved.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from refloop.practice.models import Practice
from refloop.referrals.workflow import State

FIELDS: dict[str, list[tuple[str, str]]] = {
    "The practice (letterhead)": [
        ("practice.name", "practice name"),
        ("practice.address", "street, city, state, ZIP on one line"),
        ("practice.phone", "phone"),
        ("practice.fax", "fax"),
        ("practice.npi", "organization NPI"),
        ("practice.website", "website"),
        ("today", 'the letter\'s date (use |date:"F j, Y")'),
    ],
    "The recipient": [
        ("recipient.name", "name as addressed"),
        ("recipient.salutation", '"Dr. Castellanos" or "Ms. Quayle"'),
    ],
    "The referring provider": [
        ("provider.name", "full name with credentials"),
        ("provider.last_name", "last name"),
        ("provider.practice", "their office"),
        ("provider.phone", "phone"),
        ("provider.fax", "fax"),
    ],
    "The patient": [
        ("patient.name", "full name"),
        ("patient.first_name", "first name"),
        ("patient.last_name", "last name"),
        ("patient.initials", "initials"),
        ("patient.birth_date", "date of birth (a date)"),
    ],
    "The referral": [
        ("referral.number", "the practice's referral number"),
        ("referral.received_on", "date received (a date)"),
        ("referral.reason", "reason for referral"),
        ("referral.urgency", "Routine, Urgent or Stat"),
        ("referral.appointment", "appointment date and time (a datetime)"),
        ("referral.location", "location name"),
        ("referral.location_address", "location address"),
        ("referral.location_phone", "location phone"),
        ("referral.clinician", "the specialist, with credentials"),
        ("referral.decline_reason", "why it was declined"),
        ("referral.follow_up", "follow-up instructions for the referring provider"),
        ("referral.state", "where it stands: Scheduled, No-show, Cancelled, Seen..."),
        ("referral.was_seen", "true once the patient was seen"),
        ("referral.seen_on", "visit date (a date)"),
        ("event.note", "the note typed at this step (reason for a cancellation...)"),
    ],
    "The consult report": [
        ("report.findings", "findings"),
        ("report.assessment", "assessment"),
        ("report.plan", "plan"),
        ("report.recommendations", "recommendations"),
        ("report.is_final", "true for the final report, false for a progress report"),
        ("report.has_ehr_pdf", "true when the EHR's PDF goes with it"),
        ("report.signature", '"Electronically signed by ... on ..."'),
    ],
    "Added when sending": [
        ("letter.text", "what the sender typed (a free letter's words, instructions, suggested alternatives)"),
    ],
    "Thank-you summary": [
        ("summary.count", "how many patients"),
        ("summary.period", '"from July 1 to September 30, 2026"'),
        ("summary.patients", "list; each has initials, received_on, status"),
    ],
}


@dataclass(frozen=True)
class LetterContext:
    """The recipient's address block and the values the template sees."""

    recipient_name: str
    recipient_address: str
    values: dict[str, Any]


def _address(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


def practice_values() -> dict[str, str]:
    practice = Practice.recent()
    if practice is None:
        return {key: "" for key in ("name", "address", "phone", "fax", "npi", "website")}
    return {
        "name": practice.name,
        "address": practice.one_line_address,
        "phone": practice.phone,
        "fax": practice.fax,
        "npi": practice.npi,
        "website": practice.website,
    }


def provider_values(provider, practice=None) -> dict[str, str]:
    if provider is None:
        return {"name": "", "last_name": "", "practice": "", "phone": "", "fax": ""}
    return {
        "name": provider.display_name,
        "last_name": provider.last_name,
        "practice": practice.name if practice is not None else "",
        "phone": provider.phone,
        "fax": provider.report_fax or provider.fax,
    }


def patient_values(patient) -> dict[str, Any]:
    if patient is None:
        return {"name": "", "first_name": "", "last_name": "", "initials": "", "birth_date": None}
    return {
        "name": f"{patient.first_name} {patient.last_name}",
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "initials": initials(patient.first_name, patient.last_name),
        "birth_date": patient.birth_date,
    }


def initials(first: str, last: str) -> str:
    return "".join(f"{part.strip()[:1].upper()}." for part in (first, last) if part.strip())


def referral_values(referral) -> dict[str, Any]:
    if referral is None:
        return {}
    location = referral.location
    local = timezone.localtime
    return {
        "number": f"R-{referral.pk}",
        "received_on": local(referral.received_at).date(),
        "reason": referral.reason,
        "urgency": referral.get_urgency_display(),
        "appointment": local(referral.appointment_at) if referral.appointment_at else None,
        "location": location.name if location else "",
        "location_address": location.one_line_address if location else "",
        "location_phone": location.phone if location else "",
        "clinician": referral.clinician.display_name if referral.clinician_id else "",
        "decline_reason": referral.decline_reason,
        "follow_up": referral.follow_up,
        "was_seen": referral.seen_at is not None,
        "seen_on": local(referral.seen_at).date() if referral.seen_at else None,
        "state": State(referral.state).label,
    }


def report_values(report) -> dict[str, Any]:
    if report is None:
        return {}
    return {
        "findings": report.findings,
        "assessment": report.assessment,
        "plan": report.plan,
        "recommendations": report.recommendations,
        "is_final": report.is_final,
        "has_ehr_pdf": bool(report.ehr_pdf_sha256),
        "signature": signature_line(report),
    }


def signature_line(report) -> str:
    if not report.signed_at:
        return ""
    when = timezone.localtime(report.signed_at)
    return f"Electronically signed by {report.signature} on {when:%B} {when.day}, {when:%Y} at {when:%I:%M %p}"


def salutation_for_provider(provider) -> str:
    if provider is None:
        return ""
    doctor = any(c in (provider.credentials or "").upper() for c in ("MD", "DO", "DDS", "DMD", "DPM", "OD"))
    return f"Dr. {provider.last_name}" if doctor else f"{provider.first_name} {provider.last_name}".strip()


def build(
    *,
    referral=None,
    recipient: str,
    provider=None,
    practice=None,
    patient=None,
    event=None,
    report=None,
    text: str = "",
    summary: dict[str, Any] | None = None,
) -> LetterContext:
    """The context of one letter; `recipient` is "referring_provider" or "patient"."""
    from refloop.letters.models import Recipient

    if recipient == Recipient.PATIENT:
        name = f"{patient.first_name} {patient.last_name}"
        address = _address(patient.address_line1, patient.address_line2, _city_line(patient))
        salutation = name
    else:
        name = provider.display_name if provider else ""
        office = practice.primary_location if practice is not None else None
        if provider is not None and provider.address_line1:
            address = _address(
                practice.name if practice else "", provider.address_line1, provider.address_line2, _city_line(provider)
            )
        elif office is not None:
            address = _address(practice.name, office.address_line1, office.address_line2, _city_line(office))
        else:
            address = practice.name if practice else ""
        salutation = salutation_for_provider(provider)
    values = {
        "practice": practice_values(),
        "today": timezone.localdate(),
        "recipient": {"name": name, "salutation": salutation},
        "provider": provider_values(provider, practice),
        "patient": patient_values(patient),
        "referral": referral_values(referral),
        "event": {"note": event.note if event is not None else ""},
        "report": report_values(report),
        "letter": {"text": text},
        "summary": summary or {"count": 0, "period": "", "patients": []},
    }
    return LetterContext(recipient_name=name, recipient_address=address, values=values)


def _city_line(entry) -> str:
    city = f"{entry.city}, " if entry.city else ""
    return f"{city}{entry.state} {entry.postal_code}".strip().rstrip(",")


def sample_context() -> dict[str, Any]:
    """Every field filled with made-up values: what templates are checked and previewed against."""
    now = timezone.localtime()
    return {
        "practice": practice_values() | {"name": practice_values()["name"] or "Riverside Orthopaedics"},
        "today": now.date(),
        "recipient": {"name": "Imogen Castellanos, MD", "salutation": "Dr. Castellanos"},
        "provider": {
            "name": "Imogen Castellanos, MD",
            "last_name": "Castellanos",
            "practice": "Dublin Family Medicine",
            "phone": "(614) 555-0142",
            "fax": "(614) 555-0143",
        },
        "patient": {
            "name": "Jordan Sample",
            "first_name": "Jordan",
            "last_name": "Sample",
            "initials": "J.S.",
            "birth_date": dt.date(1961, 4, 9),
        },
        "referral": {
            "number": "R-1042",
            "received_on": now.date() - dt.timedelta(days=9),
            "reason": "Right knee pain; MRI shows a medial meniscus tear",
            "urgency": "Routine",
            "appointment": now + dt.timedelta(days=3),
            "location": "Main campus",
            "location_address": "4100 Riverside Dr, Columbus, OH 43220",
            "location_phone": "(614) 555-0100",
            "clinician": "Ana Ortega, MD",
            "decline_reason": "The procedure asked for is not one we perform",
            "follow_up": "Physical therapy twice a week for six weeks; see us again if pain persists.",
            "was_seen": True,
            "seen_on": now.date() - dt.timedelta(days=2),
            "state": "Seen",
        },
        "event": {"note": "Patient asked to reschedule"},
        "report": {
            "findings": "Tenderness along the medial joint line; McMurray positive.",
            "assessment": "Degenerative tear of the medial meniscus.",
            "plan": "Physical therapy; arthroscopy if no better in 8 weeks.",
            "recommendations": "Continue NSAIDs as tolerated.",
            "is_final": True,
            "has_ehr_pdf": False,
            "signature": f"Electronically signed by Ana Ortega, MD on {now:%B} {now.day}, {now:%Y}",
        },
        "letter": {"text": "Words the sender adds go here."},
        "summary": {
            "count": 2,
            "period": "from July 1 to September 30, 2026",
            "patients": [
                {"initials": "J.S.", "received_on": now.date() - dt.timedelta(days=30), "status": "Seen"},
                {"initials": "M.Q.", "received_on": now.date() - dt.timedelta(days=12), "status": "Scheduled"},
            ],
        },
    }
