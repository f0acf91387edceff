"""Reads of the directory that pages, exports and the API share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from refloop.directory.models import ReferringPractice, ReferringProvider

# A source that has referred before but not for this long is dormant.
DORMANT_AFTER_DAYS = 180


class Status:
    ACTIVE = "active"
    INACTIVE = "inactive"
    DORMANT = "dormant"
    NEVER = "never"
    CHOICES = [(ACTIVE, "Active"), (DORMANT, "Dormant"), (NEVER, "Never referred"), (INACTIVE, "Inactive")]


@dataclass
class DirectoryFilters:
    q: str = ""
    specialty: str = ""
    tier: str = ""
    territory: int | None = None
    liaison: int | None = None
    place: str = ""  # city or ZIP prefix
    status: str = ""


def _status_filter(qs: QuerySet, status: str, today: dt.date) -> QuerySet:
    cutoff = today - dt.timedelta(days=DORMANT_AFTER_DAYS)
    if status == Status.ACTIVE:
        return qs.filter(is_active=True)
    if status == Status.INACTIVE:
        return qs.filter(is_active=False)
    if status == Status.DORMANT:
        return qs.filter(is_active=True, last_referral_on__lt=cutoff)
    if status == Status.NEVER:
        return qs.filter(last_referral_on__isnull=True)
    return qs


def _shared_filters(qs: QuerySet, filters: DirectoryFilters) -> QuerySet:
    """The filters providers and practices share: search text, tier, territory, liaison."""
    qs = qs.select_related("tier", "territory", "liaison")
    if filters.q:
        qs = qs.search(filters.q)
    if filters.tier:
        qs = qs.filter(tier__code=filters.tier)
    if filters.territory:
        qs = qs.filter(territory_id=filters.territory)
    if filters.liaison:
        qs = qs.filter(liaison_id=filters.liaison)
    return qs


def provider_list(filters: DirectoryFilters, *, today: dt.date | None = None) -> QuerySet[ReferringProvider]:
    qs = _shared_filters(ReferringProvider.objects.current(), filters)
    if filters.specialty:
        qs = qs.filter(Q(specialty__icontains=filters.specialty) | Q(taxonomy_code=filters.specialty.upper()))
    if filters.place:
        place = filters.place.strip()
        qs = (
            qs.filter(postal_code__startswith=place) if place[:1].isdigit() else qs.filter(city__iexact=place)
        )
    qs = _status_filter(qs, filters.status, today or timezone.localdate())
    return qs.order_by("last_name", "first_name", "pk")


def practice_list(filters: DirectoryFilters, *, today: dt.date | None = None) -> QuerySet[ReferringPractice]:
    qs = _shared_filters(ReferringPractice.objects.current(), filters)
    if filters.place:
        place = filters.place.strip()
        field = "locations__postal_code__startswith" if place[:1].isdigit() else "locations__city__iexact"
        qs = qs.filter(pk__in=ReferringPractice.objects.filter(**{field: place}).values("pk"))
    qs = _status_filter(qs, filters.status, today or timezone.localdate())
    return qs.order_by("name", "pk")
