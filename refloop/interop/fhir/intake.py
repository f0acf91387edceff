"""Referral intake over FHIR: one entry point for `POST /fhir/ServiceRequest` and `POST /fhir/Bundle`.

Every request is logged as an inbound InterfaceMessage (protocol fhir) with its raw payload and the answer
given. A request is all or nothing: it is refused whole (4xx, an OperationOutcome naming each element at
fault, nothing written but the log row), queued whole for review (202: a requester the directory does not
hold by NPI; the message waits with status "review" and is tried again when resent or retried by staff), or
taken whole (201, or 200 for a resend: the same identifier or the same content returns the same referral).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, OperationalError, transaction
from psycopg.errors import DeadlockDetected

from refloop.accounts.audit import audit_deferred, audit_flush, audit_record
from refloop.insights.rollups import rollups_deferred
from refloop.interop.fhir import resources
from refloop.interop.fhir.mapping_in import Planned, Planner, refuse_if
from refloop.interop.fhir.outcome import FhirError, Issue, information, operation_outcome
from refloop.interop.fhir.references import Found, Resolver, found_at
from refloop.interop.fhir.validation import validate_structure
from refloop.interop.models import InterfaceMessage
from refloop.lib.plain_sql import row_where
from refloop.referrals.models import Referral
from refloop.referrals.services import attachment_add, referral_receive

IN, FHIR = InterfaceMessage.Direction.INBOUND, InterfaceMessage.Protocol.FHIR
BUNDLE_TYPES = ("transaction", "message")
DOCUMENT_TYPES = ("DocumentReference", "Binary")
TRIES = 3  # a transaction PostgreSQL rolls back to break a deadlock is run this many times in all

# Service-side field names -> the FHIR element they came from (for the rare error only the service can see).
_FIELD_PATHS = {
    "first_name": "name.given", "last_name": "name.family", "birth_date": "birthDate", "sex": "gender",
    "phone": "telecom", "email": "telecom", "address_line1": "address.line", "address_line2": "address.line",
    "city": "address.city", "state": "address.state", "postal_code": "address.postalCode",
}  # fmt: skip


@dataclass
class Answer:
    status: int
    body: dict
    location: str = ""
    referrals: list[Referral] = field(default_factory=list)


def fhir_intake(
    *, raw: bytes | str, endpoint: str, sender: str, by=None, by_label: str = "", base: str = "urn:refloop:fhir"
) -> Answer:
    """Take a referral sent as a ServiceRequest or a Bundle; `sender` is the API key name or the username."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    message_type = endpoint
    try:
        payload = _parse(text, endpoint)
        if endpoint == "Bundle":
            message_type = f"Bundle/{payload.get('type')}"[:30]
        plans, control, bundle = _plan(payload, endpoint)
    except FhirError as exc:
        _log(message_type=message_type, sender=sender, status=InterfaceMessage.Status.REJECTED, payload=text,
             detail=str(exc), body=operation_outcome(exc.issues))  # fmt: skip
        return Answer(exc.status, operation_outcome(exc.issues))

    existing = _message(sender, control)
    if existing is not None and existing.status == InterfaceMessage.Status.ACCEPTED:
        return _resent(existing, plans, endpoint, by, by_label)

    review = [p for p in plans if p.review]
    if review:
        why = "; ".join(f"{p.where}.requester: {p.review}" for p in review)
        body = information(
            f"Queued for review by the practice: {why}. Nothing is created until a person has matched the "
            "referring provider; send it again or ask the practice.",
            "incomplete",
        )
        message = _log(message_type=message_type, sender=sender, status=InterfaceMessage.Status.REVIEW,
                       payload=text, detail=why, body=body, control_id=control, existing=existing)  # fmt: skip
        audit_record(actor=by, actor_label=by_label, action="fhir.intake.review", target=message)
        return Answer(202, body)

    try:
        for attempt in range(1, TRIES + 1):
            try:
                # The rollups' queue row and the audit events are written last, after the message row (see
                # referral_receive).
                with transaction.atomic(), audit_deferred(), rollups_deferred(before_writes=audit_flush):
                    taken = [(p, *_receive(p, by, by_label)) for p in plans]
                    received = [(p, r) for p, r, _ in taken]
                    referrals = [r for _, r in received]
                    created = {p.where for p, _, new in taken if new}
                    status, body, location = _response(endpoint, bundle, received, created, base)
                    warnings = [w for p in plans for w in p.warnings]
                    _log(message_type=message_type, sender=sender, status=InterfaceMessage.Status.ACCEPTED,
                         payload=text, detail="; ".join(f"{w.expression}: {w.diagnostics}" for w in warnings),
                         body=body, control_id=control, existing=existing, referral=referrals[0])  # fmt: skip
                break
            except OperationalError as exc:
                # PostgreSQL broke a deadlock with another writer (one that takes the same rows in another order)
                # by rolling this transaction back whole: it is run again.
                if attempt == TRIES or not isinstance(exc.__cause__, DeadlockDetected):
                    raise
                if existing is not None:
                    existing.attempts -= 1  # _log counted the attempt that was rolled back
    except FhirError as exc:
        _log(message_type=message_type, sender=sender, status=InterfaceMessage.Status.REJECTED, payload=text,
             detail=str(exc), body=operation_outcome(exc.issues))  # fmt: skip
        return Answer(exc.status, operation_outcome(exc.issues))
    except IntegrityError:  # the same sender sent the same request twice at the same moment: the first one won
        winner = _message(sender, control)
        if winner is None or winner.status != InterfaceMessage.Status.ACCEPTED:
            raise
        return _resent(winner, plans, endpoint, by, by_label)
    return Answer(status, body, location, referrals)


def fhir_review_retry(*, message: InterfaceMessage, by, base: str = "urn:refloop:fhir") -> Answer:
    """Try a message queued for review again (after the referring provider was added to the directory)."""
    if message.protocol != FHIR or message.status != InterfaceMessage.Status.REVIEW:
        raise ValidationError("Only a FHIR message waiting for review can be tried again.")
    endpoint = "Bundle" if message.message_type.startswith("Bundle") else "ServiceRequest"
    return fhir_intake(raw=message.payload, endpoint=endpoint, sender=message.sender, by=by, base=base)


@dataclass
class Waiting:
    """One referral of a message waiting for review, as a person needs it to resolve the wait."""

    patient: str  # "Last, First" as sent
    birth_date: str
    requester_npi: str
    requester: dict[str, str]  # first_name, last_name, fax, phone, direct_address: what the message gave
    why: str


def fhir_review_summary(message: InterfaceMessage) -> list[Waiting]:
    """What each referral in a message waiting for review says about its patient and its requester, and why it
    waits (read again from the stored payload; nothing is written). Empty when it no longer reads."""
    endpoint = "Bundle" if message.message_type.startswith("Bundle") else "ServiceRequest"
    try:
        payload = _parse(message.payload, endpoint)
        plans, _control, _bundle = _plan(payload, endpoint)
    except FhirError:
        return []
    waiting = []
    for plan in plans:
        if not plan.review:
            continue
        patient = plan.kwargs["patient_data"]
        waiting.append(Waiting(
            patient=", ".join(n for n in (patient.get("last_name", ""), patient.get("first_name", "")) if n),
            birth_date=str(patient.get("birth_date") or ""), requester_npi=plan.requester_npi,
            requester=plan.requester_sent, why=plan.review,
        ))  # fmt: skip
    return waiting


def _parse(text: str, endpoint: str) -> dict:
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise FhirError(400, [Issue(endpoint, f"The body is not JSON: {exc}.", "structure")]) from None
    validate_structure(payload, endpoint)
    return payload


def _plan(payload: dict, endpoint: str) -> tuple[list[Planned], str, dict | None]:
    if endpoint == "ServiceRequest":
        planner = Planner(Resolver())
        plan = planner.plan(found_at(payload, "ServiceRequest"))
        refuse_if(planner)
        assert plan is not None
        return [plan], _digest(plan.key), None
    kind = payload.get("type")
    if kind not in BUNDLE_TYPES:
        raise FhirError(422, [Issue("Bundle.type", f"A referral comes as a transaction or a message Bundle, not "
                                    f"{kind!r}.", "not-supported")])  # fmt: skip
    entries: list[tuple[str, Found]] = []
    issues: list[Issue] = []
    for i, entry in enumerate(payload.get("entry") or []):
        where = f"Bundle.entry[{i}]"
        if "resource" not in entry:
            issues.append(Issue(f"{where}.resource", "Each entry carries a resource.", "required"))
            continue
        if kind == "transaction":
            method = (entry.get("request") or {}).get("method")
            if method not in ("POST", "PUT"):
                text = f"A referral transaction creates resources (POST or PUT), not {method or 'nothing'}."
                issues.append(Issue(f"{where}.request.method", text, "value" if method else "required"))
        entries.append((entry.get("fullUrl") or "", found_at(entry["resource"], f"{where}.resource")))
    if kind == "message" and (not entries or entries[0][1].resource.get("resourceType") != "MessageHeader"):
        issues.append(Issue("Bundle.entry[0].resource", "A message Bundle starts with its MessageHeader.", "required"))
    if issues:
        raise FhirError(422, issues)
    resolver = Resolver(entries)
    requests = [f for _, f in entries if f.resource.get("resourceType") == "ServiceRequest"]
    if not requests:
        raise FhirError(422, [Issue("Bundle.entry", "The Bundle holds no ServiceRequest.", "required")])
    patients = resolver.of_type("Patient")
    documents = [f for _, f in entries if f.resource.get("resourceType") in DOCUMENT_TYPES]
    planner = Planner(
        resolver,
        single_patient=patients[0] if kind == "message" and len(patients) == 1 else None,
        bundle_documents=documents if len(requests) == 1 else (),
    )
    plans = [planner.plan(sr) for sr in requests]
    refuse_if(planner)
    plans = [p for p in plans if p is not None]
    identifier = payload.get("identifier") or {}
    if identifier.get("value"):
        control = _digest(f"bundle:{identifier.get('system', '')}|{identifier['value']}")
    else:
        control = _digest("bundle:" + "\x1f".join(p.key for p in plans))
    return plans, control, payload


def _message(sender: str, control: str) -> InterfaceMessage | None:
    """The message logged before with this control id (unique per sender); every intake asks: plain SQL."""
    return row_where(InterfaceMessage, direction=IN, protocol=FHIR, sender=sender, control_id=control)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()  # InterfaceMessage.control_id holds 64 characters


def _receive(plan: Planned, by, by_label: str) -> tuple[Referral, bool]:
    """The referral, and whether it was created now (False: it had arrived before, by any key or channel)."""
    try:
        received = referral_receive(**plan.kwargs, by=by, by_label=by_label)
    except ValidationError as exc:
        raise FhirError(422, _service_issues(exc, plan)) from None
    if received.created:
        for document in plan.documents:
            try:
                attachment_add(referral=received.referral, upload=ContentFile(document.content, document.name),
                               by=by)  # fmt: skip
            except ValidationError as exc:
                raise FhirError(422, [Issue(document.where, " ".join(exc.messages), "value")]) from None
    else:
        audit_record(actor=by, actor_label=by_label, action="fhir.referral.resend", target=received.referral)
    return received.referral, received.created


def _service_issues(exc: ValidationError, plan: Planned) -> list[Issue]:
    if not hasattr(exc, "error_dict"):
        return [Issue(plan.where, " ".join(exc.messages))]
    issues = []
    for name, errors in exc.message_dict.items():
        if name in _FIELD_PATHS and plan.patient_where:
            where = f"{plan.patient_where}.{_FIELD_PATHS[name]}"
        else:
            where = f"{plan.where}.{ {'reason': 'reasonCode', 'diagnosis_codes': 'reasonCode'}.get(name, name) }"
        issues += [Issue(where, message, "value") for message in errors]
    return issues


def _response(endpoint, bundle, received, created: set[str], base: str) -> tuple[int, dict, str]:
    status = 201 if created else 200
    if endpoint == "ServiceRequest":
        referral = received[0][1]
        return status, resources.service_request(referral), f"ServiceRequest/{referral.pk}"
    by_where = {plan.where: referral for plan, referral in received}
    if bundle["type"] == "message":
        return status, resources.message_response(bundle, [r for _, r in received], base), ""
    entries = []
    for i, entry in enumerate(bundle.get("entry") or []):
        referral = by_where.get(f"Bundle.entry[{i}].resource")
        if referral is not None:
            done = "201 Created" if f"Bundle.entry[{i}].resource" in created else "200 OK"
            response = {"status": done, "location": f"ServiceRequest/{referral.pk}",
                        "outcome": information(f"The referral's progress is Task/{referral.pk}.")}  # fmt: skip
        else:
            kind = entry["resource"].get("resourceType")
            response = {"status": "200 OK", "outcome": information(f"This {kind} was read into the referral; it is "
                                                                    "not kept as a resource of its own.")}  # fmt: skip
        entries.append({"response": response})
    return 200, {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}, ""


def _resent(message: InterfaceMessage, plans: list[Planned], endpoint: str, by, by_label: str) -> Answer:
    body = json.loads(message.response)
    referrals = list(Referral.objects.filter(idempotency_key__in=[p.key for p in plans]))
    for referral in referrals:
        audit_record(actor=by, actor_label=by_label, action="fhir.referral.resend", target=referral)
    location = f"ServiceRequest/{message.referral_id}" if endpoint == "ServiceRequest" and message.referral_id else ""
    return Answer(200, body, location, referrals)


def _log(*, message_type, sender, status, payload, detail, body, control_id="", existing=None, referral=None):
    if existing is None:
        existing = InterfaceMessage(direction=IN, protocol=FHIR, sender=sender[:200], control_id=control_id)
    existing.message_type = message_type[:30]
    existing.status = status
    existing.payload = payload
    existing.detail = detail[:4000]
    existing.response = json.dumps(body, separators=(",", ":"))
    existing.referral = referral
    existing.attempts += 1
    existing.save()
    return existing
