"""Liaison activities (with the compliance ledger's checks) and the concerns referring offices raise.

An activity logged here goes through outreach.services.activity_log like one logged on the phone form: an
item of value is split among those who received it and checked against each physician's yearly limit, and
an integration can never record the compliance override that only a manager may give.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Field as F
from ninja import Path, Query, Router, Schema, Status

from refloop.directory.models import PracticeLocation, ReferringPractice, ReferringProvider, StaffContact
from refloop.interop.api import common
from refloop.interop.api.auth import caller, needs
from refloop.interop.api.common import answers, error, related
from refloop.interop.api.schemas import (
    MAX_ID,
    ActivityIn,
    ActivityOut,
    ActivityPage,
    ConcernIn,
    ConcernOut,
    ConcernPage,
    ConcernPatch,
    Day,
)
from refloop.outreach import services
from refloop.outreach.models import Activity, ActivityKind, ActivityStatus, Concern, ConcernStatus

router = Router(tags=["outreach"])


def _many(model, ids: list[int], field: str, queryset=None) -> list:
    wanted = list(dict.fromkeys(ids))
    found = (queryset if queryset is not None else model.objects).in_bulk(wanted)
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise error(422, f"There is no {model._meta.verbose_name} with id {missing[0]}.", field)
    return [found[pk] for pk in wanted]


def activity_out(activity: Activity, warnings: list[str] = ()) -> dict:
    return {
        "id": activity.pk,
        "kind": activity.kind,
        "status": activity.status,
        "date": activity.date,
        "start_time": activity.start_time,
        "duration_minutes": activity.duration_minutes,
        "practice_id": activity.practice_id,
        "location_id": activity.location_id,
        "provider_ids": sorted(p.pk for p in activity.providers.all()),
        "staff_ids": sorted(s.pk for s in activity.staff.all()),
        "liaison_id": activity.liaison_id,
        "cost": activity.cost,
        "purpose": activity.purpose,
        "talking_points": activity.talking_points,
        "outcome": activity.outcome,
        "origin": activity.origin,
        "warnings": list(warnings),
    }


class ActivityQuery(Schema):
    practice_id: int | None = F(None, ge=1, le=MAX_ID)
    provider_id: int | None = F(None, ge=1, le=MAX_ID)
    liaison_id: int | None = F(None, ge=1, le=MAX_ID)
    kind: ActivityKind | None = None
    status: ActivityStatus | None = None
    date_from: Day | None = None
    date_to: Day | None = None


@router.get(
    "/activities",
    response=answers({200: ActivityPage}),
    auth=needs("outreach.view"),
    summary="List liaison activities, newest first",
)
def activity_list(request, query: Query[ActivityQuery], paging: Query[common.PageParams]):
    activities = Activity.objects.all()
    if query.practice_id:
        activities = activities.filter(practice_id=query.practice_id)
    if query.provider_id:
        activities = activities.filter(providers__id=query.provider_id)
    if query.liaison_id:
        activities = activities.filter(liaison_id=query.liaison_id)
    if query.kind:
        activities = activities.filter(kind=query.kind)
    if query.status:
        activities = activities.filter(status=query.status)
    if query.date_from:
        activities = activities.filter(date__gte=query.date_from)
    if query.date_to:
        activities = activities.filter(date__lte=query.date_to)
    ordered = activities.order_by("-date", "-pk").prefetch_related("providers", "staff")
    rows, figures = common.page(ordered, paging)
    return figures | {"items": [activity_out(a) for a in rows]}


@router.get(
    "/activities/{activity_id}",
    response=answers({200: ActivityOut}, 404),
    auth=needs("outreach.view"),
    summary="Read a liaison activity",
)
def activity_read(request, activity_id: int = Path(..., ge=1, le=MAX_ID)):
    return activity_out(get_object_or_404(Activity, pk=activity_id))


@router.post(
    "/activities",
    response=answers({201: ActivityOut}),
    auth=needs("outreach.edit"),
    summary="Log an activity (done, or planned for a later date)",
    description="An item of value that would take a physician over the year's limit is refused (422); "
    "only a manager's session may record an override with `override_reason`.",
)
def activity_create(request, data: ActivityIn):
    who = caller(request)
    practice = related(ReferringPractice, data.practice_id, "body.practice_id", ReferringPractice.objects.current())
    liaisons = get_user_model().objects.filter(is_active=True)
    logged = services.activity_log(
        data=services.ActivityInput(
            kind=data.kind,
            date=data.date,
            status=data.status,
            practice=practice,
            location=related(PracticeLocation, data.location_id, "body.location_id"),
            providers=_many(
                ReferringProvider, data.provider_ids, "body.provider_ids", ReferringProvider.objects.current()
            ),
            staff=_many(StaffContact, data.staff_ids, "body.staff_ids"),
            liaison=related(liaisons.model, data.liaison_id, "body.liaison_id", liaisons),
            start_time=data.start_time,
            duration_minutes=data.duration_minutes,
            cost=data.cost,
            given_as=data.given_as,
            purpose=data.purpose,
            talking_points=data.talking_points,
            outcome=data.outcome,
        ),
        by=who.by,
        override_reason=data.override_reason,
    )
    return Status(201, activity_out(logged.activity, [check.message for check in logged.warnings]))


# Concerns


def concern_out(concern: Concern) -> dict:
    return {name: getattr(concern, name) for name in ConcernOut.model_fields}


class ConcernQuery(Schema):
    practice_id: int | None = F(None, ge=1, le=MAX_ID)
    provider_id: int | None = F(None, ge=1, le=MAX_ID)
    owner_id: int | None = F(None, ge=1, le=MAX_ID)
    status: ConcernStatus | None = None
    open: bool | None = F(None, description="true: open or in progress; false: resolved.")


@router.get(
    "/concerns",
    response=answers({200: ConcernPage}),
    auth=needs("outreach.view"),
    summary="List the concerns referring offices raised, oldest first",
)
def concern_list(request, query: Query[ConcernQuery], paging: Query[common.PageParams]):
    concerns = Concern.objects.all()
    if query.practice_id:
        concerns = concerns.filter(practice_id=query.practice_id)
    if query.provider_id:
        concerns = concerns.filter(provider_id=query.provider_id)
    if query.owner_id:
        concerns = concerns.filter(owner_id=query.owner_id)
    if query.status:
        concerns = concerns.filter(status=query.status)
    if query.open is True:
        concerns = concerns.open()
    elif query.open is False:
        concerns = concerns.exclude(pk__in=Concern.objects.open().values("pk"))
    rows, figures = common.page(concerns.order_by("raised_on", "pk"), paging)
    return figures | {"items": [concern_out(c) for c in rows]}


@router.get(
    "/concerns/{concern_id}",
    response=answers({200: ConcernOut}, 404),
    auth=needs("outreach.view"),
    summary="Read a concern (the ETag changes with every save)",
)
def concern_read(request, response: HttpResponse, concern_id: int = Path(..., ge=1, le=MAX_ID)):
    concern = get_object_or_404(Concern, pk=concern_id)
    response["ETag"] = common.etag(concern)
    return concern_out(concern)


def _staff_users():
    return get_user_model().objects.filter(is_active=True)


@router.post(
    "/concerns",
    response=answers({201: ConcernOut}),
    auth=needs("outreach.edit"),
    summary="Log a concern a referring office raised",
)
def concern_create(request, response: HttpResponse, data: ConcernIn):
    practice = related(ReferringPractice, data.practice_id, "body.practice_id", ReferringPractice.objects.current())
    concern = services.concern_open(
        practice=practice,
        summary=data.summary,
        by=caller(request).by,
        category=data.category,
        severity=data.severity,
        what_happened=data.what_happened,
        owner=related(get_user_model(), data.owner_id, "body.owner_id", _staff_users()),
        due_on=data.due_on,
        provider=related(ReferringProvider, data.provider_id, "body.provider_id", ReferringProvider.objects.current()),
        raised_by=related(StaffContact, data.raised_by_id, "body.raised_by_id"),
        raised_on=data.raised_on,
    )
    response["ETag"] = common.etag(concern)
    return Status(201, concern_out(concern))


@router.patch(
    "/concerns/{concern_id}",
    response=answers({200: ConcernOut}, 404, 412, 428),
    auth=needs("outreach.edit"),
    summary="Work a concern: reassign, re-date, resolve or reopen it",
)
def concern_update(
    request: HttpRequest,
    response: HttpResponse,
    data: ConcernPatch,
    concern_id: int = Path(..., ge=1, le=MAX_ID),
    if_match: str | None = common.if_match_header(),
):
    changes = data.model_dump(exclude_unset=True)
    if "owner_id" in changes:
        changes["owner"] = related(get_user_model(), changes.pop("owner_id"), "body.owner_id", _staff_users())
    if "provider_id" in changes:
        changes["provider"] = related(
            ReferringProvider, changes.pop("provider_id"), "body.provider_id", ReferringProvider.objects.current()
        )
    with transaction.atomic():
        concern = get_object_or_404(Concern.objects.select_for_update(), pk=concern_id)
        common.if_match(request, concern)  # checked under the row lock: no save can slip in between
        concern = services.concern_update(concern=concern, changes=changes, by=caller(request).by)
    response["ETag"] = common.etag(concern)
    return Status(200, concern_out(concern))
