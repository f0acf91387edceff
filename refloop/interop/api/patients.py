"""Patients: found by MRN or by name and date of birth, and read with the ids of their referrals.

Patients are created and matched by referral intake (referrals.services.patient_resolve), never here, so one
matching rule decides whether an arriving referral is for a patient already known.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Field as F
from ninja import Path, Query, Router, Schema

from refloop.interop.api import common
from refloop.interop.api.auth import needs
from refloop.interop.api.common import answers, audit
from refloop.interop.api.schemas import MAX_ID, Day, PatientOut, PatientPage
from refloop.referrals.models import Patient

router = Router(tags=["patients"])


def patient_out(patient: Patient, referral_ids: list[int]) -> dict:
    return {field: getattr(patient, field) for field in PatientOut.model_fields if field != "referral_ids"} | {
        "referral_ids": referral_ids
    }


class PatientFilters(Schema):
    mrn: str | None = F(None, max_length=40)
    last_name: str | None = F(None, max_length=100, description="Exact, any case.")
    first_name: str | None = F(None, max_length=100, description="Exact, any case.")
    birth_date: Day | None = None


@router.get(
    "/patients",
    response=answers({200: PatientPage}),
    auth=needs("referrals.view"),
    summary="Find patients by MRN, or by name and date of birth",
)
def patient_list(request, filters: Query[PatientFilters], paging: Query[common.PageParams]):
    found = Patient.objects.all()
    if filters.mrn:
        found = found.filter(mrn=filters.mrn.strip())
    if filters.last_name:
        found = found.filter(last_name__iexact=filters.last_name.strip())
    if filters.first_name:
        found = found.filter(first_name__iexact=filters.first_name.strip())
    if filters.birth_date:
        found = found.filter(birth_date=filters.birth_date)
    rows, figures = common.page(found.order_by("last_name", "first_name", "pk"), paging)
    ids = _referral_ids([p.pk for p in rows])
    # The search terms are PHI: the audit keeps which filters were used and what was found, not their values.
    used = sorted(name for name, value in filters.model_dump().items() if value)
    audit(request, "patient.list", filters=used, results=len(rows), ids=[p.pk for p in rows])
    return figures | {"items": [patient_out(p, ids.get(p.pk, [])) for p in rows]}


def _referral_ids(patient_ids: list[int]) -> dict[int, list[int]]:
    from refloop.referrals.models import Referral

    out: dict[int, list[int]] = {}
    pairs = Referral.objects.filter(patient_id__in=patient_ids).order_by("received_at", "pk")
    for patient_id, referral_id in pairs.values_list("patient_id", "pk"):
        out.setdefault(patient_id, []).append(referral_id)
    return out


@router.get(
    "/patients/{patient_id}",
    response=answers({200: PatientOut}, 404),
    auth=needs("referrals.view"),
    summary="Read a patient (the ETag is the record's version)",
)
def patient_read(request, response: HttpResponse, patient_id: int = Path(..., ge=1, le=MAX_ID)):
    patient = get_object_or_404(Patient, pk=patient_id)
    audit(request, "patient.read", patient)
    response["ETag"] = common.etag(patient)
    return patient_out(patient, _referral_ids([patient.pk]).get(patient.pk, []))
