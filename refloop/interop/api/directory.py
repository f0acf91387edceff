"""Referring providers, referring practices and their staff contacts.

Creates and edits go through directory.services, so an edit made here marks the fields it changed as a
person's (the NPPES import then leaves them alone), and an edit over someone else's newer change is refused.
"""

from __future__ import annotations

from enum import Enum

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Field as F
from ninja import Path, Query, Router, Schema, Status

from refloop.accounts.roles import Role
from refloop.directory import selectors, services
from refloop.directory.models import ReferringPractice, ReferringProvider, StaffContact, Territory, Tier
from refloop.interop.api import common
from refloop.interop.api.auth import needs
from refloop.interop.api.common import answers, error, related
from refloop.interop.api.schemas import (
    MAX_ID,
    LocationOut,
    PracticeIn,
    PracticeOut,
    PracticePage,
    PracticePatch,
    ProviderIn,
    ProviderOut,
    ProviderPage,
    ProviderPatch,
    StaffContactIn,
    StaffContactOut,
    StaffContactPage,
    StaffContactPatch,
)

router = Router(tags=["directory"])

RELATIONS = {"tier_id": Tier, "territory_id": Territory, "liaison_id": None}


def _liaisons():
    return get_user_model().objects.filter(role=Role.LIAISON, is_active=True)


def _resolve(fields: dict) -> dict:
    """Input fields with tier_id, territory_id and liaison_id checked to name existing rows."""
    out = dict(fields)
    for name, model in RELATIONS.items():
        if out.get(name) is not None:
            queryset = _liaisons() if model is None else model.objects.all()
            related(queryset.model, out[name], f"body.{name}", queryset)
    return out


def _fields(out_schema, record) -> dict:
    return {name: getattr(record, name) for name in out_schema.model_fields if hasattr(record, name)}


def provider_out(provider: ReferringProvider) -> dict:
    return _fields(ProviderOut, provider)


def practice_out(practice: ReferringPractice) -> dict:
    locations = [_fields(LocationOut, loc) for loc in practice.locations.all()]
    return _fields(PracticeOut, practice) | {"locations": locations}


StatusFilter = Enum("StatusFilter", {value: value for value, _ in selectors.Status.CHOICES}, type=str)


class DirectoryQuery(Schema):
    q: str = F("", max_length=100, description="Words of the name, NPI, city, ZIP or phone.")
    npi: str | None = F(None, max_length=10)
    specialty: str = F("", max_length=150)
    tier: str = F("", max_length=10, description="A tier code.")
    territory_id: int | None = F(None, ge=1, le=MAX_ID)
    liaison_id: int | None = F(None, ge=1, le=MAX_ID)
    place: str = F("", max_length=100, description="A city, or the start of a ZIP code.")
    status: StatusFilter | None = None


def _filters(query: DirectoryQuery) -> selectors.DirectoryFilters:
    return selectors.DirectoryFilters(
        q=query.q.strip(),
        specialty=query.specialty.strip(),
        tier=query.tier.strip(),
        territory=query.territory_id,
        liaison=query.liaison_id,
        place=query.place.strip(),
        status=query.status.value if query.status else "",
    )


def _stale(exc: Exception):
    return error(412, f"{exc} Read it again, then retry.", "header.If-Match")


# Providers


@router.get(
    "/providers",
    response=answers({200: ProviderPage}),
    auth=needs("directory.view"),
    summary="List referring providers, with the directory's filters",
)
def provider_list(request, query: Query[DirectoryQuery], paging: Query[common.PageParams]):
    providers = selectors.provider_list(_filters(query))
    if query.npi:
        providers = providers.filter(npi=query.npi.strip())
    rows, figures = common.page(providers, paging)
    return figures | {"items": [provider_out(p) for p in rows]}


@router.get(
    "/providers/{provider_id}",
    response=answers({200: ProviderOut}, 404),
    auth=needs("directory.view"),
    summary="Read a referring provider (the ETag is its version)",
)
def provider_read(request, response: HttpResponse, provider_id: int = Path(..., ge=1, le=MAX_ID)):
    provider = get_object_or_404(ReferringProvider.objects.current(), pk=provider_id)
    response["ETag"] = common.etag(provider)
    return provider_out(provider)


@router.post(
    "/providers",
    response=answers({201: ProviderOut}),
    auth=needs("directory.edit"),
    summary="Add a referring provider",
)
def provider_create(request, response: HttpResponse, data: ProviderIn):
    provider = services.provider_create(**_resolve(data.model_dump()))
    response["ETag"] = common.etag(provider)
    return Status(201, provider_out(provider))


@router.patch(
    "/providers/{provider_id}",
    response=answers({200: ProviderOut}, 404, 412, 428),
    auth=needs("directory.edit"),
    summary="Change a referring provider (send If-Match with its ETag)",
)
def provider_update(
    request,
    response: HttpResponse,
    data: ProviderPatch,
    provider_id: int = Path(..., ge=1, le=MAX_ID),
    if_match: str | None = common.if_match_header(),
):
    provider = get_object_or_404(ReferringProvider.objects.current(), pk=provider_id)
    version = common.expected_version(request, provider)
    try:
        provider = services.provider_update(
            provider=provider, changes=_resolve(data.model_dump(exclude_unset=True)), expected_version=version
        )
    except services.StaleEdit as exc:
        raise _stale(exc) from None
    response["ETag"] = common.etag(provider)
    return Status(200, provider_out(provider))


# Practices


@router.get(
    "/practices",
    response=answers({200: PracticePage}),
    auth=needs("directory.view"),
    summary="List referring practices, with the directory's filters",
)
def practice_list(request, query: Query[DirectoryQuery], paging: Query[common.PageParams]):
    practices = selectors.practice_list(_filters(query)).prefetch_related("locations")
    if query.npi:
        practices = practices.filter(npi=query.npi.strip())
    rows, figures = common.page(practices, paging)
    return figures | {"items": [practice_out(p) for p in rows]}


@router.get(
    "/practices/{practice_id}",
    response=answers({200: PracticeOut}, 404),
    auth=needs("directory.view"),
    summary="Read a referring practice with its locations (the ETag is its version)",
)
def practice_read(request, response: HttpResponse, practice_id: int = Path(..., ge=1, le=MAX_ID)):
    practice = get_object_or_404(ReferringPractice.objects.current(), pk=practice_id)
    response["ETag"] = common.etag(practice)
    return practice_out(practice)


@router.post(
    "/practices",
    response=answers({201: PracticeOut}),
    auth=needs("directory.edit"),
    summary="Add a referring practice, with its first location",
)
def practice_create(request, response: HttpResponse, data: PracticeIn):
    fields = _resolve(data.model_dump(exclude={"location"}))
    location = data.location.model_dump() if data.location is not None else None
    practice = services.practice_create(location=location, **fields)
    response["ETag"] = common.etag(practice)
    return Status(201, practice_out(practice))


@router.patch(
    "/practices/{practice_id}",
    response=answers({200: PracticeOut}, 404, 412, 428),
    auth=needs("directory.edit"),
    summary="Change a referring practice (send If-Match with its ETag)",
)
def practice_update(
    request,
    response: HttpResponse,
    data: PracticePatch,
    practice_id: int = Path(..., ge=1, le=MAX_ID),
    if_match: str | None = common.if_match_header(),
):
    practice = get_object_or_404(ReferringPractice.objects.current(), pk=practice_id)
    version = common.expected_version(request, practice)
    try:
        practice = services.practice_update(
            practice=practice, changes=_resolve(data.model_dump(exclude_unset=True)), expected_version=version
        )
    except services.StaleEdit as exc:
        raise _stale(exc) from None
    response["ETag"] = common.etag(practice)
    return Status(200, practice_out(practice))


# Staff contacts


class StaffQuery(Schema):
    practice_id: int | None = F(None, ge=1, le=MAX_ID)
    active: bool | None = None


@router.get(
    "/staff-contacts",
    response=answers({200: StaffContactPage}),
    auth=needs("directory.view"),
    summary="List the staff contacts of referring offices",
)
def staff_contact_list(request, query: Query[StaffQuery], paging: Query[common.PageParams]):
    contacts = StaffContact.objects.all()
    if query.practice_id:
        contacts = contacts.filter(practice_id=query.practice_id)
    if query.active is not None:
        contacts = contacts.filter(is_active=query.active)
    rows, figures = common.page(contacts.order_by("last_name", "first_name", "pk"), paging)
    return figures | {"items": [staff_out(c) for c in rows]}


def staff_out(contact: StaffContact) -> dict:
    return _fields(StaffContactOut, contact)


@router.get(
    "/staff-contacts/{contact_id}",
    response=answers({200: StaffContactOut}, 404),
    auth=needs("directory.view"),
    summary="Read a staff contact (the ETag changes with every save)",
)
def staff_contact_read(request, response: HttpResponse, contact_id: int = Path(..., ge=1, le=MAX_ID)):
    contact = get_object_or_404(StaffContact, pk=contact_id)
    response["ETag"] = common.etag(contact)
    return staff_out(contact)


@router.post(
    "/staff-contacts",
    response=answers({201: StaffContactOut}),
    auth=needs("directory.edit"),
    summary="Add a staff contact to a referring practice",
)
def staff_contact_create(request, response: HttpResponse, data: StaffContactIn):
    fields = data.model_dump(exclude={"practice_id"})
    practice = related(ReferringPractice, data.practice_id, "body.practice_id", ReferringPractice.objects.current())
    contact = services.staff_contact_save(contact=StaffContact(practice=practice, **fields))
    response["ETag"] = common.etag(contact)
    return Status(201, staff_out(contact))


@router.patch(
    "/staff-contacts/{contact_id}",
    response=answers({200: StaffContactOut}, 404, 412, 428),
    auth=needs("directory.edit"),
    summary="Change a staff contact (send If-Match with its ETag)",
)
def staff_contact_update(
    request: HttpRequest,
    response: HttpResponse,
    data: StaffContactPatch,
    contact_id: int = Path(..., ge=1, le=MAX_ID),
    if_match: str | None = common.if_match_header(),
):
    changes = data.model_dump(exclude_unset=True)
    with transaction.atomic():
        contact = get_object_or_404(StaffContact.objects.select_for_update(), pk=contact_id)
        common.if_match(request, contact)  # checked under the row lock: no save can slip in between
        for name, value in changes.items():
            setattr(contact, name, value)
        contact = services.staff_contact_save(contact=contact)
    response["ETag"] = common.etag(contact)
    return Status(200, staff_out(contact))
