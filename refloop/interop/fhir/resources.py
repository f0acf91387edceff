"""Mapping out: a referral as a ServiceRequest and as a BSeR Task, a sent consult report as a DocumentReference.

Ids are our primary keys: ServiceRequest/{referral}, Task/{referral} (one Task follows one referral) and
DocumentReference/{consult report}. Only what the referring office needs is shown: the patient is a reference
(Patient/{id}), never a name or date of birth.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

from django.utils import timezone

from refloop.letters.models import ConsultReport, ReportStatus
from refloop.referrals.models import Referral, Urgency
from refloop.referrals.workflow import State

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
BSER_STATUS_SYSTEM = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"
LOINC = "http://loinc.org"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"

# state -> (Task.status, BSeR businessStatus code, its display). The table in DESIGN.md, with the BSeR codes for
# the states it leaves open: seen is 5.1.4 "event completed", lost is 6.0 "fulfillment cancelled".
TASK_STATUS: dict[str, tuple[str, str, str]] = {
    State.RECEIVED: ("requested", "2.0", "Service Request Created"),
    State.ACCEPTED: ("accepted", "3.0", "Service Request Accepted"),
    State.DECLINED: ("rejected", "4.0", "Service Request Declined"),
    State.SCHEDULED: ("in-progress", "5.1.1", "Service Request Event Scheduled"),
    State.NO_SHOW: ("in-progress", "5.1.2", "Scheduled Service Request Event Unattended"),
    State.CANCELLED: ("in-progress", "5.1.3", "Scheduled Service Request Event Cancelled"),
    State.SEEN: ("in-progress", "5.1.4", "Service Request Event Completed"),
    State.REPORT_SENT: ("completed", "7.0", "Service Request Fulfillment Completed"),
    State.CLOSED: ("completed", "7.0", "Service Request Fulfillment Completed"),
    State.LOST: ("cancelled", "6.0", "Service Request Fulfillment Cancelled"),
}
# Closed without being seen (returned to the referrer after a no-show or cancellation): nothing was fulfilled.
CLOSED_UNSEEN = ("cancelled", "6.0", "Service Request Fulfillment Cancelled")

PRIORITY_OUT = {Urgency.ROUTINE: "routine", Urgency.URGENT: "urgent", Urgency.STAT: "stat"}


def instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _requester(referral: Referral) -> dict:
    provider = referral.referring_provider
    if provider is None:
        return {"display": str(referral.other_source)}
    out: dict = {"type": "Practitioner", "display": provider.display_name}
    if provider.npi:
        out["identifier"] = {"system": NPI_SYSTEM, "value": provider.npi}
    return out


def _clinician(clinician) -> dict:
    out: dict = {"type": "Practitioner", "display": clinician.display_name}
    if clinician.npi:
        out["identifier"] = {"system": NPI_SYSTEM, "value": clinician.npi}
    return out


def task_status(referral: Referral) -> tuple[str, str, str]:
    if referral.state == State.CLOSED and referral.seen_at is None:
        return CLOSED_UNSEEN
    return TASK_STATUS[referral.state]


def sent_reports(referral: Referral) -> list[ConsultReport]:
    """The consult reports the referring office has been sent (drafts and unsent signed reports stay inside)."""
    return [r for r in referral.consult_reports.all() if r.status == ReportStatus.SENT]


def service_request(referral: Referral) -> dict:
    resource: dict = {
        "resourceType": "ServiceRequest",
        "id": str(referral.pk),
        "meta": {"lastUpdated": instant(referral.updated_at)},
        "status": "active" if referral.is_open else ("revoked" if referral.state != State.CLOSED else "completed"),
        "intent": "order",
        "code": {"text": "Referral"},
        "priority": PRIORITY_OUT.get(referral.urgency, "routine"),
        "subject": {"reference": f"Patient/{referral.patient_id}"},
        "authoredOn": instant(referral.received_at),
        "requester": _requester(referral),
        "reasonCode": [{"text": referral.reason[:1000]}],
    }
    if referral.external_id:
        resource["identifier"] = [{"type": _v2_0203("PLAC", "Placer Identifier"), "value": referral.external_id}]
    if referral.diagnosis_codes:
        resource["reasonCode"][0]["coding"] = [{"system": ICD10_CM, "code": c} for c in referral.diagnosis_codes]
    return resource


def _v2_0203(code: str, display: str) -> dict:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code, "display": display}]}


def task(referral: Referral) -> dict:
    status, code, display = task_status(referral)
    resource: dict = {
        "resourceType": "Task",
        "id": str(referral.pk),
        "meta": {"lastUpdated": instant(referral.updated_at)},
        "identifier": [{"type": _v2_0203("FILL", "Filler Identifier"), "value": str(referral.pk)}],
        "status": status,
        "businessStatus": {"coding": [{"system": BSER_STATUS_SYSTEM, "code": code, "display": display}],
                           "text": referral.get_state_display()},  # fmt: skip
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill",
                             "display": "Fulfill the focal request"}]},  # fmt: skip
        "focus": {"reference": f"ServiceRequest/{referral.pk}"},
        "for": {"reference": f"Patient/{referral.patient_id}"},
        "authoredOn": instant(referral.received_at),
        "lastModified": instant(referral.last_event_at),
        "requester": _requester(referral),
    }
    if referral.clinician_id:
        resource["owner"] = _clinician(referral.clinician)
    reason = referral.decline_reason or referral.get_lost_reason_display()
    if referral.state in (State.DECLINED, State.LOST) and reason:
        resource["statusReason"] = {"text": reason}
    if referral.appointment_at and referral.state in (State.SCHEDULED, State.SEEN):
        resource["executionPeriod"] = {"start": instant(referral.appointment_at)}
    outputs = [
        {
            "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}],
                     "text": "Consult report" if report.is_final else "Progress report"},  # fmt: skip
            "valueReference": {"reference": f"DocumentReference/{report.pk}"},
        }
        for report in sent_reports(referral)
    ]
    if outputs:
        resource["output"] = outputs
    return resource


def _attachment(content: bytes, title: str, created: dt.datetime | None) -> dict:
    out = {
        "contentType": "application/pdf",
        "data": base64.b64encode(content).decode("ascii"),
        "size": len(content),
        "hash": base64.b64encode(hashlib.sha1(content).digest()).decode("ascii"),  # noqa: S324 - FHIR's hash is SHA-1
        "title": title,
    }
    if created:
        out["creation"] = instant(created)
    return out


def document_reference(report: ConsultReport, letter_pdf: bytes, ehr_pdf: bytes | None) -> dict:
    title = "Consult report" if report.is_final else "Progress report"
    content = [{"attachment": _attachment(letter_pdf, f"{title} {report.letter.reference}", report.signed_at)}]
    if ehr_pdf:
        content.append({"attachment": _attachment(ehr_pdf, report.ehr_pdf_name or "EHR note", report.signed_at)})
    resource: dict = {
        "resourceType": "DocumentReference",
        "id": str(report.pk),
        "meta": {"lastUpdated": instant(report.updated_at)},
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}], "text": title},
        "subject": {"reference": f"Patient/{report.referral.patient_id}"},
        "date": instant(report.signed_at or report.updated_at),
        "description": title,
        "content": content,
        "context": {"related": [{"reference": f"ServiceRequest/{report.referral_id}"}]},
    }
    if report.clinician_id:
        resource["author"] = [_clinician(report.clinician)]
        resource["authenticator"] = _clinician(report.clinician)
    return resource


def searchset(resources: list[dict], total: int, base: str, self_url: str, next_url: str = "") -> dict:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def message_response(request: dict, referrals: list[Referral], base: str) -> dict:
    """The answer to a BSeR message: a MessageHeader that answers the sender's, and the Task of each referral."""
    header = request["entry"][0]["resource"]
    now = timezone.now()
    tasks = [task(r) for r in referrals]
    answer_header = {
        "resourceType": "MessageHeader",
        "id": hashlib.sha256(f"{header.get('id', '')}:{now.isoformat()}".encode()).hexdigest()[:32],
        "eventCoding": header.get("eventCoding") or {"code": "referral"},
        "source": {"name": "refloop", "endpoint": base},
        "response": {"identifier": header.get("id") or "unknown", "code": "ok"},
        "focus": [{"reference": f"Task/{t['id']}"} for t in tasks],
    }
    return {
        "resourceType": "Bundle",
        "type": "message",
        "timestamp": instant(now),
        "entry": [{"fullUrl": f"urn:uuid:{_uuid(answer_header['id'])}", "resource": answer_header}]
        + [{"fullUrl": f"{base}/Task/{t['id']}", "resource": t} for t in tasks],
    }


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"
