"""Referrals: intake (idempotent), reads, filtered lists, and every step of the loop.

Every answer here carries patient data, so every call that reads or writes one is written to the audit trail
with the user or the API key that made it.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field as F
from ninja import Header, Path, Query, Router, Schema, Status

from refloop.directory.models import OtherSource, ReferringProvider
from refloop.interop.api import common
from refloop.interop.api.auth import caller, needs
from refloop.interop.api.common import answers, audit, error, related
from refloop.interop.api.schemas import (
    MAX_ID,
    Day,
    ReferralDetailOut,
    ReferralIn,
    ReferralPage,
    TransitionIn,
)
from refloop.interop.models import InterfaceMessage
from refloop.practice.models import Clinician, Location
from refloop.referrals import services
from refloop.referrals.forms import active_clinicians, active_locations
from refloop.referrals.models import Patient, Referral, Urgency
from refloop.referrals.services import PATIENT_FIELDS
from refloop.referrals.workflow import TRANSITIONS, State, TransitionRefused, available, transition_problem

router = Router(tags=["referrals"])

RELATED = (
    "patient",
    "referring_provider",
    "referring_practice",
    "other_source",
    "location",
    "clinician",
    "owner",
    "coordinator",
)
Step = Enum("Step", {name: name for name in TRANSITIONS}, type=str)


def _user(user) -> dict | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.get_username(), "name": user.get_full_name() or user.get_username()}


def _ref(obj, name: str | None = None) -> dict | None:
    return None if obj is None else {"id": obj.pk, "name": name if name is not None else str(obj)}


def referral_out(referral: Referral, role: str, now: dt.datetime) -> dict:
    patient, provider = referral.patient, referral.referring_provider
    return {
        "id": referral.pk,
        "state": referral.state,
        "urgency": referral.urgency,
        "channel": referral.channel,
        "reason": referral.reason,
        "diagnosis_codes": list(referral.diagnosis_codes or []),
        "received_at": referral.received_at,
        "patient": {
            "id": patient.pk,
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "birth_date": patient.birth_date,
            "mrn": patient.mrn,
        },
        "referring_provider": None
        if provider is None
        else {"id": provider.pk, "npi": provider.npi, "name": provider.display_name},
        "referring_practice": _ref(referral.referring_practice),
        "other_source": _ref(referral.other_source),
        "location": _ref(referral.location),
        "clinician": _ref(referral.clinician),
        "coordinator": _user(referral.coordinator),
        "owner": _user(referral.owner),
        "due_at": referral.due_at,
        "overdue": referral.is_open and referral.due_at is not None and referral.due_at < now,
        "first_contact_at": referral.first_contact_at,
        "appointment_at": referral.appointment_at,
        "seen_at": referral.seen_at,
        "report_sent_at": referral.report_sent_at,
        "closed_at": referral.closed_at,
        "decline_reason": referral.decline_reason,
        "lost_reason": referral.lost_reason,
        "follow_up": referral.follow_up,
        "authorization_number": referral.authorization_number,
        "visits_approved": referral.visits_approved,
        "external_id": referral.external_id,
        "notes": referral.notes,
        "version": referral.version,
        "next_steps": [t.name for t in available(referral.state, role)],
    }


def _detail(request: HttpRequest, response: HttpResponse, referral_id: int) -> dict:
    referral = get_object_or_404(Referral.objects.select_related(*RELATED), pk=referral_id)
    out = referral_out(referral, caller(request).role, timezone.now())
    out["events"] = [
        {
            "at": event.at,
            "action": event.action,
            "from_state": event.from_state,
            "to_state": event.to_state,
            "by": event.by_label,
            "note": event.note,
        }
        for event in referral.events.order_by("at", "pk")
    ]
    response["ETag"] = common.etag(referral)
    return out


# Reading


class ReferralFilters(Schema):
    state: list[State] = F([], description="One or more states.")
    urgency: Urgency | None = None
    provider_npi: str | None = F(None, max_length=10, description="The referring provider's NPI.")
    patient_id: int | None = F(None, ge=1, le=MAX_ID)
    received_from: Day | None = F(None, description="Received on or after this day (practice time zone).")
    received_to: Day | None = F(None, description="Received on or before this day.")
    owner_id: int | None = F(None, ge=1, le=MAX_ID, description="Who must act next.")
    location_id: int | None = F(None, ge=1, le=MAX_ID)
    overdue: bool | None = F(None, description="true: open and past its due time; false: not overdue.")


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@router.get(
    "/referrals",
    response=answers({200: ReferralPage}),
    auth=needs("referrals.view"),
    summary="List referrals, newest first, with filters",
)
def referral_list(request, filters: Query[ReferralFilters], paging: Query[common.PageParams]):
    now = timezone.now()
    referrals = Referral.objects.all()
    if filters.state:
        referrals = referrals.filter(state__in=filters.state)
    if filters.urgency:
        referrals = referrals.filter(urgency=filters.urgency)
    if filters.provider_npi:
        referrals = referrals.filter(referring_provider__npi=filters.provider_npi)
    if filters.patient_id:
        referrals = referrals.filter(patient_id=filters.patient_id)
    if filters.received_from:
        referrals = referrals.filter(received_at__gte=_start_of(filters.received_from))
    if filters.received_to:
        referrals = referrals.filter(received_at__lt=_start_of(filters.received_to + dt.timedelta(days=1)))
    if filters.owner_id:
        referrals = referrals.filter(owner_id=filters.owner_id)
    if filters.location_id:
        referrals = referrals.filter(location_id=filters.location_id)
    if filters.overdue is True:
        referrals = referrals.overdue(now)
    elif filters.overdue is False:
        referrals = referrals.exclude(pk__in=Referral.objects.overdue(now).values("pk"))
    rows, figures = common.page(referrals.select_related(*RELATED).order_by("-received_at", "-pk"), paging)
    role = caller(request).role
    audit(request, "referral.list", results=len(rows), ids=[r.pk for r in rows])
    return figures | {"items": [referral_out(r, role, now) for r in rows]}


@router.get(
    "/referrals/{referral_id}",
    response=answers({200: ReferralDetailOut}, 404),
    auth=needs("referrals.view"),
    summary="Read a referral with its history (the ETag is its version)",
)
def referral_read(request, response: HttpResponse, referral_id: int = Path(..., ge=1, le=MAX_ID)):
    out = _detail(request, response, referral_id)
    audit(request, "referral.read", Referral(pk=referral_id))
    return out


# Intake


def _source_of(data: ReferralIn) -> ReferringProvider | None:
    if data.referring_provider_id is not None and data.referring_provider_npi:
        raise error(
            422, "Give referring_provider_id or referring_provider_npi, not both.", "body.referring_provider_id"
        )
    if data.referring_provider_npi:
        found = ReferringProvider.objects.current().filter(npi=data.referring_provider_npi).first()
        if found is None:
            raise error(
                422,
                f"No referring provider has NPI {data.referring_provider_npi}; add the provider first.",
                "body.referring_provider_npi",
            )
        return found
    return related(
        ReferringProvider, data.referring_provider_id, "body.referring_provider_id", ReferringProvider.objects.current()
    )


def _receive(request: HttpRequest, data: ReferralIn, idempotency_key: str | None) -> services.Received:
    who = caller(request)
    if data.patient_id is not None and data.patient is not None:
        raise error(422, "Give patient_id or patient, not both.", "body.patient_id")
    try:
        return services.referral_receive(
            patient=related(Patient, data.patient_id, "body.patient_id"),
            patient_data=data.patient.model_dump() if data.patient is not None else None,
            referring_provider=_source_of(data),
            other_source=related(OtherSource, data.other_source_id, "body.other_source_id"),
            secondary_source=related(OtherSource, data.secondary_source_id, "body.secondary_source_id"),
            location=related(Location, data.location_id, "body.location_id"),
            clinician=related(Clinician, data.clinician_id, "body.clinician_id"),
            reason=data.reason,
            diagnosis_codes=data.diagnosis_codes,
            urgency=data.urgency,
            received_at=data.received_at,
            channel=data.channel,
            authorization_number=data.authorization_number,
            visits_approved=data.visits_approved,
            notes=data.notes,
            idempotency_key=idempotency_key,
            external_id=data.external_id,
            by=who.by,
            by_label=who.label,
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):  # the patient's own fields are checked by the patient service
            renamed = {
                (f"patient.{k}" if k in PATIENT_FIELDS and k not in ReferralIn.model_fields else k): v
                for k, v in exc.error_dict.items()
            }
            raise ValidationError(renamed) from None
        raise


def _sender(request: HttpRequest) -> str:
    who = caller(request)
    return f"key:{who.key.pk}" if who.key is not None else f"user:{who.user.pk}"


@router.post(
    "/referrals",
    response=answers({200: ReferralDetailOut, 201: ReferralDetailOut}, 409),
    auth=needs("referrals.edit"),
    summary="Log a referral that has arrived (Idempotency-Key makes a retry safe)",
    description=(
        "With an `Idempotency-Key` header, sending the same body again answers 200 with the referral the first "
        "request created, and no second referral is made; the same key with a different body is refused (409)."
    ),
)
def referral_create(
    request,
    response: HttpResponse,
    data: ReferralIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", min_length=1, max_length=100),
):
    if idempotency_key is None:
        referral_id, status = _receive(request, data, None).referral.pk, 201
    else:
        referral_id, status = _receive_once(request, data, idempotency_key)
    out = _detail(request, response, referral_id)
    audit(request, "referral.create" if status == 201 else "referral.replay", Referral(pk=referral_id))
    return Status(status, out)


def _receive_once(request: HttpRequest, data: ReferralIn, key: str) -> tuple[int, int]:
    """Receive under an idempotency key, logged in the interface message log with the body it came with."""
    body = json.dumps(data.model_dump(mode="json"), sort_keys=True)
    sender = _sender(request)
    lookup = {
        "direction": InterfaceMessage.Direction.INBOUND,
        "protocol": InterfaceMessage.Protocol.API,
        "sender": sender,
        "control_id": key,
    }
    message = InterfaceMessage.objects.filter(**lookup).first()
    if message is None:
        try:
            with transaction.atomic():
                received = _receive(request, data, f"api:{sender}:{key}")
                InterfaceMessage.objects.create(
                    **lookup,
                    message_type="referral.create",
                    referral=received.referral,
                    status=InterfaceMessage.Status.ACCEPTED,
                    payload=body,
                )
            return received.referral.pk, 201 if received.created else 200
        except IntegrityError:  # the same request, sent twice at the same moment: the first one wins
            message = InterfaceMessage.objects.filter(**lookup).first()
            if message is None:
                raise
    if message.payload != body:
        raise error(
            409,
            "This Idempotency-Key was already used with a different body; use a new key for a new referral.",
            "header.Idempotency-Key",
        )
    if message.referral_id is None:
        raise error(409, "The referral this Idempotency-Key created no longer exists.", "header.Idempotency-Key")
    return message.referral_id, 200


# The loop


@router.post(
    "/referrals/{referral_id}/transitions/{name}",
    response=answers({200: ReferralDetailOut}, 404, 409, 412, 428),
    auth=needs("referrals.edit"),
    summary="Move a referral one step along the loop (send If-Match with its ETag)",
    description=(
        "The steps and what each needs are the workflow's: accept; decline (reason); schedule and reschedule "
        "(appointment_at, location_id, clinician_id); mark_seen; mark_no_show; cancel (reason); send_report; "
        "send_back (follow_up); return_to_referrer (reason); mark_lost (lost_reason); reopen (reason, managers "
        "only). A step the referral's state does not allow answers 409 with the workflow's reason; a step "
        "missing what it needs answers 422."
    ),
)
def referral_transition(
    request,
    response: HttpResponse,
    data: TransitionIn,
    name: Step,
    referral_id: int = Path(..., ge=1, le=MAX_ID),
    if_match: str | None = common.if_match_header(),
):
    referral = get_object_or_404(Referral, pk=referral_id)
    version = common.expected_version(request, referral)
    who = caller(request)
    given = {
        "appointment_at": data.appointment_at,
        "location": related(Location, data.location_id, "body.location_id", active_locations()),
        "clinician": related(Clinician, data.clinician_id, "body.clinician_id", active_clinicians()),
        "reason": data.reason.strip(),
        "follow_up": data.follow_up.strip(),
        "lost_reason": data.lost_reason,
    }
    step = TRANSITIONS[name.value]
    try:
        services.referral_transition(
            referral=referral,
            name=step.name,
            by=who.by,
            by_label=who.label,
            role=who.role,
            data={field: given[field] for field in step.required if given.get(field) not in (None, "")},
            note=data.note.strip(),
            expected_version=version,
        )
    except services.StaleEdit as exc:
        raise error(412, f"{exc} Read it again, then retry.", "header.If-Match") from None
    except TransitionRefused as exc:
        # The workflow said no; its message goes back as it is. Only the status says which kind of no it was.
        if who.role not in step.roles:
            raise error(403, str(exc), "path.name") from None
        refused_by_loop = transition_problem(step.name, referral.state, who.role) is not None
        raise error(409 if refused_by_loop else 422, str(exc), "path.name" if refused_by_loop else "body") from None
    out = _detail(request, response, referral.pk)
    audit(request, f"referral.{step.name}", Referral(pk=referral.pk), version=out["version"])
    return Status(200, out)
