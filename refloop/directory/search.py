"""The directory's part of the global search box and of every source's timeline."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from refloop import timeline
from refloop.directory.models import Merge, ReferringPractice, ReferringProvider
from refloop.directory.services import digits
from refloop.search import SearchHit, register


def _query_terms(query: str) -> str:
    """Phone numbers are typed with punctuation but stored as digits in the search text."""
    only_digits = digits(query)
    return (
        only_digits
        if len(only_digits) >= 7 and len(only_digits) >= len(query.replace(" ", "")) - 4
        else query
    )


@register("directory.view")
def find_providers(user, query: str, limit: int) -> list[SearchHit]:
    providers = (
        ReferringProvider.objects.current().search(_query_terms(query)).order_by("last_name", "first_name")
    )
    return [
        SearchHit(
            "Provider",
            p.display_name,
            " · ".join(x for x in [p.specialty, p.city, p.npi] if x),
            reverse("directory:provider", args=[p.pk]),
        )
        for p in providers[:limit]
    ]


@register("directory.view")
def find_practices(user, query: str, limit: int) -> list[SearchHit]:
    practices = ReferringPractice.objects.current().search(_query_terms(query)).order_by("name")
    return [
        SearchHit("Practice", p.name, p.phone, reverse("directory:practice", args=[p.pk]))
        for p in practices[:limit]
    ]


@timeline.register("directory.view")
def directory_history(user, entry, limit: int) -> list[timeline.TimelineItem]:
    kind = Merge.Kind.PROVIDER if isinstance(entry, ReferringProvider) else Merge.Kind.PRACTICE
    items = [
        timeline.TimelineItem(entry.created_at, "Directory", f"Added ({entry.get_source_display().lower()})")
    ]
    merges = Merge.objects.filter(kind=kind, kept_id=entry.pk).select_related("merged_by")[:limit]
    for merge in merges:
        items.append(
            timeline.TimelineItem(
                merge.merged_at,
                "Directory",
                f"Duplicate record #{merge.removed_id} merged into this one",
                f"by {merge.merged_by or 'system'}" + (" · reversed" if merge.reversed_at else ""),
            )
        )
    if entry.deactivated_on:
        moment = dt.datetime.combine(entry.deactivated_on, dt.time(12), tzinfo=dt.UTC)
        items.append(timeline.TimelineItem(moment, "Directory", "NPI deactivated in NPPES"))
    return items
