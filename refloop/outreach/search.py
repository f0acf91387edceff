"""Outreach's part of every source's timeline: activities with the provider or at the practice, and concerns."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from refloop import timeline
from refloop.directory.models import ReferringProvider
from refloop.outreach.models import Activity, ActivityStatus, Concern


def _moment(day: dt.date, time: dt.time | None = None) -> dt.datetime:
    return dt.datetime.combine(day, time or dt.time(12), tzinfo=timezone.get_current_timezone())


@timeline.register("outreach.view")
def outreach_activities(user, entry, limit: int) -> list[timeline.TimelineItem]:
    activities = Activity.objects.exclude(status=ActivityStatus.CANCELLED).select_related("liaison")
    if isinstance(entry, ReferringProvider):
        activities = activities.filter(providers=entry)
    else:
        activities = activities.filter(practice=entry)
    items = []
    for activity in activities.order_by("-date", "-pk")[:limit]:
        status = " (planned)" if activity.is_planned else ""
        detail = " · ".join(x for x in [activity.purpose, f"by {activity.liaison}" if activity.liaison else ""] if x)
        items.append(
            timeline.TimelineItem(
                _moment(activity.date, activity.start_time),
                activity.get_kind_display(),
                f"{activity.get_kind_display()}{status}",
                detail,
                reverse("outreach:activity", args=[activity.pk]),
            )
        )
    return items


@timeline.register("outreach.view")
def outreach_concerns(user, entry, limit: int) -> list[timeline.TimelineItem]:
    concerns = Concern.objects.for_entry(entry).order_by("-raised_on", "-pk")[:limit]
    items = []
    for concern in concerns:
        state = concern.get_status_display().lower()
        items.append(
            timeline.TimelineItem(
                _moment(concern.raised_on),
                "Concern",
                f"{concern.get_category_display()}: {concern.summary}",
                f"{concern.get_severity_display()} · {state} · {concern.days_outstanding()} days outstanding"
                if concern.is_open
                else f"{state} {concern.resolved_on:%b %d, %Y}"
                if concern.resolved_on
                else state,
                reverse("outreach:concern", args=[concern.pk]),
            )
        )
    return items
