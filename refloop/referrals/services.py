"""Writes to patients and referrals. The intake page, the queues, the importer, the API, FHIR and HL7 all
come through these functions, so the loop's rules hold whichever door a referral comes in by."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from refloop.accounts.audit import audit_deferred, audit_flush, audit_record
from refloop.directory.models import OtherSource, ReferringPractice, ReferringProvider
from refloop.insights.rollups import rollups_deferred
from refloop.lib.icd10 import parse_icd10_list
from refloop.lib.plain_sql import row_where, rows_where
from refloop.practice.models import Clinician, Location, ServiceLevels
from refloop.referrals import sla
from refloop.referrals.models import Channel, Patient, Referral, ReferralEvent, Urgency
from refloop.referrals.signals import referral_event_committed
from refloop.referrals.workflow import TRANSITIONS, LostReason, State, TransitionRefused, transition_problem

PATIENT_FIELDS = (
    "first_name",
    "last_name",
    "birth_date",
    "sex",
    "phone",
    "email",
    "mrn",
    "payer",
    "plan",
    "member_id",
    "preferred_language",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
)


class StaleEdit(Exception):
    """Someone else changed this referral after it was opened; saving would overwrite their change."""


@dataclass(frozen=True)
class PatientMatch:
    patient: Patient
    reason: str


def patient_candidates(
    *, first_name: str, last_name: str, birth_date: dt.date | None, mrn: str = ""
) -> list[PatientMatch]:
    """Existing patients who may be this one: same MRN, or same name and date of birth."""
    matches: list[PatientMatch] = []
    # Plain SQL (lib/plain_sql.py): every intake asks.
    if mrn:
        matches += [PatientMatch(p, "same MRN") for p in rows_where(Patient, mrn=mrn.strip())]
    if birth_date and first_name and last_name:
        key = Patient.make_name_key(first_name, last_name)
        for patient in rows_where(Patient, name_key=key, birth_date=birth_date):
            if all(m.patient.pk != patient.pk for m in matches):
                matches.append(PatientMatch(patient, "same name and date of birth"))
    return matches


def patient_resolve(*, data: dict[str, Any], patient: Patient | None = None, by=None) -> tuple[Patient, bool]:
    """The patient a referral is for: the one chosen, else the unambiguous match, else a new record.

    Matching never merges: an existing patient is used only when the MRN is the same, or the name and date of
    birth are the same and the MRNs do not conflict; anything less certain creates a new record.
    """
    if patient is not None:
        return patient, False
    candidates = patient_candidates(
        first_name=data.get("first_name", ""),
        last_name=data.get("last_name", ""),
        birth_date=data.get("birth_date"),
        mrn=data.get("mrn", ""),
    )
    incoming_mrn = (data.get("mrn") or "").strip()
    for match in candidates:
        if match.reason == "same MRN":
            return match.patient, False
    exact = [m.patient for m in candidates if not incoming_mrn or not m.patient.mrn]
    if len(exact) == 1:
        found = exact[0]
        if incoming_mrn and not found.mrn:
            found.mrn = incoming_mrn
            found.version += 1
            found.save(update_fields=["mrn", "version", "updated_at"])
        return found, False
    created = Patient(**{k: v for k, v in data.items() if k in PATIENT_FIELDS and v is not None})
    # The one constraint, a unique MRN, was just checked by patient_candidates (a same-MRN patient is returned
    # above); it is checked again only when the MRN stored is not the stripped one looked up. Skipping it saves
    # a query and a savepoint per intake (issue 8); the unique index still holds against a racing writer.
    created.full_clean(validate_constraints=created.mrn != incoming_mrn)
    created.save()
    audit_record(actor=by, action="patient.create", target=created)
    return created, True


@dataclass(frozen=True)
class Received:
    referral: Referral
    created: bool  # False when the idempotency key matched a referral that had already arrived


def _practice_of(provider: ReferringProvider | None) -> ReferringPractice | None:
    return provider.primary_practice() if provider is not None else None


def _clean_received_at(received_at: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    if received_at is None:
        return now
    if timezone.is_naive(received_at):
        received_at = timezone.make_aware(received_at)
    if received_at > now + dt.timedelta(minutes=5):
        raise ValidationError({"received_at": "The date received is in the future."})
    return received_at


def referral_receive(
    *,
    patient: Patient | None = None,
    patient_data: dict[str, Any] | None = None,
    referring_provider: ReferringProvider | None = None,
    other_source: OtherSource | None = None,
    secondary_source: OtherSource | None = None,
    location: Location | None = None,
    clinician: Clinician | None = None,
    reason: str,
    diagnosis_codes: str | list[str] = (),
    urgency: str = Urgency.ROUTINE,
    received_at: dt.datetime | None = None,
    channel: str = Channel.FAX,
    authorization_number: str = "",
    visits_approved: int | None = None,
    notes: str = "",
    idempotency_key: str | None = None,
    external_id: str = "",
    coordinator=None,
    by=None,
    by_label: str = "",
) -> Received:
    """Log a referral that has arrived, by any channel; the same idempotency key twice gives the first one."""
    if idempotency_key:
        existing = _by_idempotency_key(idempotency_key)
        if existing is not None:
            return Received(existing, False)
    errors: dict[str, str] = {}
    if (referring_provider is None) == (other_source is None):
        errors["referring_provider"] = "Give exactly one primary source: a referring provider or another source."
    if not (reason or "").strip():
        errors["reason"] = "Give the reason for the referral."
    if urgency not in Urgency.values:
        errors["urgency"] = f"Urgency must be one of {', '.join(Urgency.values)}."
    if channel not in Channel.values:
        errors["channel"] = f"Channel must be one of {', '.join(Channel.values)}."
    try:
        codes = parse_icd10_list(diagnosis_codes or [])
    except ValueError as exc:
        errors["diagnosis_codes"] = str(exc)
    if patient is None and not patient_data:
        errors["patient"] = "Give the patient."
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    received_at = _clean_received_at(received_at, now)
    levels = ServiceLevels.recent()
    try:
        # The rollups' queue row, then the audit events, are written last (accounts/audit.py, lock order):
        # concurrent intakes wait for each other over the events and the commit only, not over the whole
        # transaction (issue 8).
        with transaction.atomic(), audit_deferred(), rollups_deferred(before_writes=audit_flush):
            patient, _ = patient_resolve(data=patient_data or {}, patient=patient, by=by)
            referral = Referral(
                patient=patient,
                referring_provider=referring_provider,
                other_source=other_source,
                referring_practice=_practice_of(referring_provider),
                secondary_source=secondary_source,
                location=location,
                clinician=clinician,
                reason=reason.strip(),
                diagnosis_codes=codes,
                urgency=urgency,
                received_at=received_at,
                channel=channel,
                authorization_number=authorization_number,
                visits_approved=visits_approved,
                notes=notes,
                idempotency_key=idempotency_key or None,
                external_id=external_id,
                state=State.RECEIVED,
                last_event_at=received_at,
            )
            if coordinator is None and by is not None and getattr(by, "role", "") == "coordinator":
                coordinator = by
            referral.coordinator = coordinator or sla.owner_for(referral, levels=levels)
            referral.owner = referral.coordinator
            referral.due_at = sla.due_at(referral, now=now, levels=levels)
            referral.save()
            event = _record(
                referral,
                action="receive",
                from_state="",
                by=by,
                by_label=by_label,
                at=received_at,
                note="",
                data={"channel": channel},
            )
            _touch_source(referral)
            audit_record(
                actor=by, actor_label=by_label, action="referral.create", target=referral, detail={"channel": channel}
            )
    except IntegrityError:
        if idempotency_key:  # the same referral arrived twice at the same moment: the first one wins
            existing = _by_idempotency_key(idempotency_key)
            if existing is not None:
                return Received(existing, False)
        raise
    _announce(event, referral)
    return Received(referral, True)


def _by_idempotency_key(key: str) -> Referral | None:
    return row_where(Referral, idempotency_key=key)  # every intake asks: plain SQL (lib/plain_sql.py)


def _touch_source(referral: Referral) -> None:
    """Keep each source's last-referral date current (the directory's dormant filter reads it)."""
    day = timezone.localdate(referral.received_at)
    for model, pk, source in (
        (ReferringProvider, referral.referring_provider_id, referral.referring_provider),
        (ReferringPractice, referral.referring_practice_id, referral.referring_practice),
    ):
        # The source was read in this request: a date already this recent means the UPDATE would match no row,
        # so it is not sent (a busy source gets many referrals a day; one round trip less each, issue 8).
        if source is not None and source.last_referral_on is not None and source.last_referral_on >= day:
            continue
        if pk:
            model.objects.filter(pk=pk).filter(Q(last_referral_on__isnull=True) | Q(last_referral_on__lt=day)).update(
                last_referral_on=day
            )


def _record(referral, *, action, from_state, by, by_label, at, note, data) -> ReferralEvent:
    label = by_label or (by.get_username() if getattr(by, "pk", None) else "system")
    return ReferralEvent.objects.create(
        referral=referral,
        at=at,
        by=by if getattr(by, "pk", None) else None,
        by_label=label,
        action=action,
        from_state=from_state,
        to_state=referral.state,
        note=note,
        data=data,
    )


def _announce(event: ReferralEvent, referral: Referral) -> None:
    transaction.on_commit(lambda: referral_event_committed.send(sender=Referral, event=event, referral=referral))


def _locked(referral: Referral, expected_version: int | None) -> Referral:
    # of=("self",): PostgreSQL cannot lock the nullable side of the outer joins select_related adds.
    locked = Referral.objects.select_for_update(of=("self",))
    current = locked.select_related("clinician__user", "coordinator").get(pk=referral.pk)
    if expected_version is not None and current.version != expected_version:
        raise StaleEdit("This referral was changed by someone else after you opened it.")
    return current


def _required(name: str, data: dict[str, Any]) -> None:
    labels = {
        "appointment_at": "the appointment date and time",
        "location": "the location",
        "clinician": "the clinician",
        "reason": "a reason",
        "follow_up": "the follow-up instructions",
        "lost_reason": "why the referral was lost",
    }
    missing = [labels.get(f, f) for f in TRANSITIONS[name].required if data.get(f) in (None, "")]
    if missing:
        raise TransitionRefused(f"“{TRANSITIONS[name].label}” needs {', '.join(missing)}.")


def referral_transition(
    *,
    referral: Referral,
    name: str,
    by=None,
    by_label: str = "",
    role: str | None = None,
    data: dict[str, Any] | None = None,
    note: str = "",
    at: dt.datetime | None = None,
    expected_version: int | None = None,
) -> Referral:
    """Move a referral one step along the loop (workflow.TRANSITIONS), or refuse with the reason.

    `by_label` names a caller that is not a person (an API key, an interface) in the history and audit trail."""
    data = dict(data or {})
    role = role or getattr(by, "role", None)
    now = timezone.now()
    at = at or now
    with transaction.atomic(), audit_deferred(), rollups_deferred(before_writes=audit_flush):  # as in an intake
        current = _locked(referral, expected_version)
        problem = transition_problem(name, current.state, role)
        if problem:
            raise TransitionRefused(problem)
        _required(name, data)
        from_state = current.state
        _apply(current, name, data, at)
        current.state = TRANSITIONS[name].target
        levels = ServiceLevels.recent()
        current.owner = sla.owner_for(current, levels=levels)
        current.due_at = sla.due_at(current, now=at, levels=levels)
        current.last_event_at = at
        current.version = F("version") + 1
        current.save()
        current.refresh_from_db()
        reason_note = note or str(data.get("reason", "") or data.get("follow_up", "") or "")
        event = _record(
            current,
            action=name,
            from_state=from_state,
            by=by,
            by_label=by_label,
            at=at,
            note=reason_note,
            data=_event_data(data),
        )
        audit_record(
            actor=by,
            actor_label=by_label,
            action=f"referral.{name}",
            target=current,
            detail={"from": from_state, "to": current.state},
        )
    _announce(event, current)
    return current


def _event_data(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("reason", "follow_up"):
            continue
        out[key] = value.isoformat() if isinstance(value, dt.datetime) else getattr(value, "pk", value)
    return out


def _apply(referral: Referral, name: str, data: dict[str, Any], at: dt.datetime) -> None:
    if name in ("schedule", "reschedule"):
        appointment_at = data["appointment_at"]
        if timezone.is_naive(appointment_at):
            appointment_at = timezone.make_aware(appointment_at)
        if appointment_at < referral.received_at:
            raise TransitionRefused("The appointment cannot be before the referral was received.")
        referral.appointment_at = appointment_at
        referral.location = data["location"]
        referral.clinician = data["clinician"]
        referral.first_contact_at = referral.first_contact_at or at
    elif name == "mark_seen":
        referral.seen_at = at
        referral.first_contact_at = referral.first_contact_at or at
    elif name == "send_report":
        referral.report_sent_at = at
    elif name == "send_back":
        referral.follow_up = data["follow_up"]
        referral.closed_at = at
    elif name == "decline":
        referral.decline_reason = str(data["reason"])[:300]
        referral.closed_at = at
    elif name == "mark_lost":
        if data["lost_reason"] not in LostReason.values:
            raise TransitionRefused(f"“{data['lost_reason']}” is not a reason a referral is lost.")
        referral.lost_reason = data["lost_reason"]
        referral.closed_at = at
    elif name == "return_to_referrer":
        referral.closed_at = at
    elif name == "reopen":
        referral.closed_at = None
        referral.lost_reason = ""
        referral.decline_reason = ""


def referral_log_contact(*, referral: Referral, by, note: str, at: dt.datetime | None = None) -> Referral:
    """A call, message or voicemail to the patient: the first one stops the first-contact clock."""
    at = at or timezone.now()
    with transaction.atomic():
        current = _locked(referral, None)
        if not current.is_open:
            raise TransitionRefused("This referral is finished; contacts are logged on open referrals only.")
        current.first_contact_at = current.first_contact_at or at
        current.due_at = sla.due_at(current, now=at)
        current.last_event_at = at
        current.version = F("version") + 1
        current.save()
        current.refresh_from_db()
        event = _record(
            current, action="contact", from_state=current.state, by=by, by_label="", at=at, note=note, data={}
        )
    _announce(event, current)
    return current


def referral_assign(*, referral: Referral, coordinator, by) -> Referral:
    """Give the referral to another coordinator; the due time does not change."""
    with transaction.atomic():
        current = _locked(referral, None)
        current.coordinator = coordinator
        current.owner = sla.owner_for(current)
        current.version = F("version") + 1
        current.save()
        current.refresh_from_db()
        _record(
            current,
            action="assign",
            from_state=current.state,
            by=by,
            by_label="",
            at=timezone.now(),
            note=f"Assigned to {coordinator}",
            data={"coordinator": coordinator.pk},
        )
    return current


def referral_assign_many(*, referrals, coordinator, by) -> list[Referral]:
    """Give several referrals to one coordinator from a work queue: all of them or, on any error, none."""
    with transaction.atomic():
        ordered = sorted(referrals, key=lambda r: r.pk)  # one lock order, so two bulk assigns cannot deadlock
        return [referral_assign(referral=r, coordinator=coordinator, by=by) for r in ordered]


def attachment_add(*, referral: Referral, upload, by):
    """Keep a document that came with a referral (faxed pages, a scan, a PDF from the EHR).

    The content decides what it is (PDF, PNG, JPEG or TIFF only, see referrals.uploads), its SHA-256 is kept
    to show it is unchanged, and the same document attached twice to one referral is refused.
    """
    import os

    from refloop.referrals.models import Attachment
    from refloop.referrals.uploads import check_upload

    checked = check_upload(upload)
    name = os.path.basename((upload.name or "attachment").replace("\\", "/"))[:200] or "attachment"
    with transaction.atomic():
        current = Referral.objects.select_for_update().get(pk=referral.pk)
        same = current.attachments.filter(sha256=checked.sha256).first()
        if same is not None:
            raise ValidationError(f"{name} is already attached to this referral (as {same.original_name}).")
        attachment = Attachment(
            referral=current,
            original_name=name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            uploaded_by=by if getattr(by, "pk", None) else None,
        )
        attachment.file.save(name, upload, save=False)
        try:
            attachment.save()
            _record(
                current,
                action="attach",
                from_state=current.state,
                by=by,
                by_label="",
                at=timezone.now(),
                note=f"Attached {name}",
                data={"attachment": attachment.pk},
            )
            audit_record(
                actor=by,
                action="referral.attachment.add",
                target=current,
                detail={"attachment": attachment.pk, "content_type": checked.content_type, "size": checked.size},
            )
        except Exception:
            attachment.file.delete(save=False)
            raise
    return attachment
