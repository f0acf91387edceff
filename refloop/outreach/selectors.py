"""Reads that span outreach and the directory: who is due for a visit, a liaison's week, concerns by age."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, F, IntegerField, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from refloop.directory.models import PracticeLocation, ReferringPractice, ReferringProvider, StaffContact
from refloop.outreach.models import (
    IN_PERSON_KINDS,
    STOP_KINDS,
    Activity,
    ActivityStatus,
    Concern,
    Origin,
    OutreachSettings,
    OutreachTask,
)
from refloop.outreach.routing import Stop, route_order
from refloop.practice.models import Practice

# Cadence


@dataclass(frozen=True)
class DueItem:
    """A source whose last in-person visit or lunch is older than its cadence (or that was never visited)."""

    kind: str  # "provider" or "practice"
    entry: ReferringProvider | ReferringPractice
    cadence_days: int
    last_visit: dt.date | None
    due_on: dt.date
    days_overdue: int

    @property
    def name(self) -> str:
        return self.entry.display_name if self.kind == "provider" else self.entry.name


def _last_provider_visit() -> Subquery:
    through = Activity.providers.through
    return Subquery(
        through.objects.filter(
            referringprovider_id=OuterRef("pk"),
            activity__status=ActivityStatus.DONE,
            activity__kind__in=IN_PERSON_KINDS,
        )
        .order_by("-activity__date")
        .values("activity__date")[:1]
    )


def _last_practice_visit() -> Subquery:
    return Subquery(
        Activity.objects.filter(practice_id=OuterRef("pk"), status=ActivityStatus.DONE, kind__in=IN_PERSON_KINDS)
        .order_by("-date")
        .values("date")[:1]
    )


def _first_referral(field: str) -> Subquery:
    """The first referral's time per source: one index lookup per row (referrals are indexed by source and
    time), rather than grouping every referral the practice ever received."""
    from refloop.referrals.models import Referral

    return Subquery(
        Referral.objects.filter(**{field: OuterRef("pk")}).order_by("received_at").values("received_at")[:1]
    )


def _referral_count(field: str) -> Subquery:
    from refloop.referrals.models import Referral

    return Subquery(
        Referral.objects.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")[:1],
        output_field=IntegerField(),
    )


def last_visit_on(entry) -> dt.date | None:
    """The date of the latest in-person visit or lunch with a provider (they attended) or at a practice."""
    activities = Activity.objects.done().in_person()
    if isinstance(entry, ReferringProvider):
        activities = activities.filter(providers=entry)
    else:
        activities = activities.filter(practice=entry)
    return activities.aggregate(last=Max("date"))["last"]


def _providers(liaison) -> QuerySet[ReferringProvider]:
    qs = ReferringProvider.objects.current().filter(is_active=True).select_related("tier")
    return qs.filter(liaison=liaison) if liaison is not None else qs


def _practices(liaison) -> QuerySet[ReferringPractice]:
    qs = ReferringPractice.objects.current().filter(is_active=True).select_related("tier")
    return qs.filter(liaison=liaison) if liaison is not None else qs


def due_list(
    *, liaison=None, today: dt.date | None = None, kinds: tuple[str, ...] = ("provider", "practice")
) -> list[DueItem]:
    """Sources overdue for a visit, most overdue first. A provider's cadence is its own target, else its
    tier's; a practice's is its tier's. A source never visited counts from the day it entered the directory,
    except new sources (first referral within the setting's days), which `never_visited` lists instead."""
    today = today or timezone.localdate()
    new_since = _new_since(today)
    found: list[DueItem] = []
    sources = []
    if "provider" in kinds:
        providers = _providers(liaison).annotate(
            cadence=Coalesce("target_visit_days", "tier__target_visit_days", output_field=IntegerField()),
            last_visit=_last_provider_visit(),
        )
        sources.append(("provider", providers.filter(cadence__isnull=False)))
    if "practice" in kinds:
        practices = _practices(liaison).annotate(
            cadence=F("tier__target_visit_days"), last_visit=_last_practice_visit()
        )
        sources.append(("practice", practices.filter(cadence__isnull=False)))
    for kind, rows in sources:
        rows = rows.annotate(first_referral=_first_referral(f"referring_{kind}"))
        for entry in rows.iterator(chunk_size=2000):
            if entry.last_visit is None and entry.first_referral is not None and entry.first_referral >= new_since:
                continue
            since = entry.last_visit or timezone.localdate(entry.created_at)
            due_on = since + dt.timedelta(days=entry.cadence)
            if due_on < today:
                found.append(DueItem(kind, entry, entry.cadence, entry.last_visit, due_on, (today - due_on).days))
    found.sort(key=lambda item: (-item.days_overdue, item.name.lower(), item.entry.pk))
    return found


def _new_since(today: dt.date) -> dt.datetime:
    days = OutreachSettings.current().new_source_days
    start = today - dt.timedelta(days=days)
    return dt.datetime.combine(start, dt.time.min, tzinfo=timezone.get_current_timezone())


@dataclass(frozen=True)
class NewSource:
    kind: str
    entry: ReferringProvider | ReferringPractice
    first_referral: dt.datetime
    referrals: int

    @property
    def name(self) -> str:
        return self.entry.display_name if self.kind == "provider" else self.entry.name


def never_visited(*, liaison=None, today: dt.date | None = None) -> list[NewSource]:
    """New sources (first referral within the setting's days) that nobody has visited in person yet, the one
    waiting longest first: meeting a new referrer early is how a first referral becomes a habit."""
    today = today or timezone.localdate()
    new_since = _new_since(today)
    found: list[NewSource] = []
    for kind, rows in (
        ("provider", _providers(liaison).annotate(last_visit=_last_provider_visit())),
        ("practice", _practices(liaison).annotate(last_visit=_last_practice_visit())),
    ):
        field = f"referring_{kind}"
        rows = (
            rows.annotate(first_referral=_first_referral(field))
            .filter(first_referral__gte=new_since, last_visit__isnull=True)
            .annotate(referral_count=_referral_count(field))
        )
        found += [NewSource(kind, e, e.first_referral, e.referral_count) for e in rows]
    found.sort(key=lambda item: (item.first_referral, item.name.lower()))
    return found


# The week


@dataclass(frozen=True)
class StaffOccasion:
    on: dt.date
    contact: StaffContact
    kind: str  # "birthday" or "work anniversary"
    years: int | None
    attended: int  # activities this contact took part in

    @property
    def label(self) -> str:
        if self.kind == "birthday":
            return "Birthday"
        return f"{self.years} year{'s' if self.years != 1 else ''} at the office"


def _on_or_after(month: int, day: int, start: dt.date) -> dt.date:
    """The next date with this month and day on or after `start`; 29 February falls on the 28th otherwise."""
    for year in (start.year, start.year + 1):
        last = calendar.monthrange(year, month)[1]
        candidate = dt.date(year, month, min(day, last))
        if candidate >= start:
            return candidate
    raise AssertionError("unreachable: a month and day recur within two years")


def staff_occasions(*, liaison=None, start: dt.date, days: int = 21) -> list[StaffOccasion]:
    """Birthdays and work anniversaries of office staff at the liaison's practices from `start` for `days`,
    with how often each contact has taken part in an activity."""
    end = start + dt.timedelta(days=days)
    contacts = (
        StaffContact.objects.filter(is_active=True, practice__merged_into__isnull=True)
        .filter(Q(birthday_month__isnull=False) | Q(work_anniversary__isnull=False))
        .select_related("practice")
        .annotate(attended=Count("outreach_activities", filter=Q(outreach_activities__status=ActivityStatus.DONE)))
    )
    if liaison is not None:
        contacts = contacts.filter(practice__liaison=liaison)
    found: list[StaffOccasion] = []
    for contact in contacts.iterator(chunk_size=2000):
        if contact.birthday_month and contact.birthday_day:
            on = _on_or_after(contact.birthday_month, contact.birthday_day, start)
            if on < end:
                found.append(StaffOccasion(on, contact, "birthday", None, contact.attended))
        started = contact.work_anniversary
        if started is not None:
            on = _on_or_after(started.month, started.day, max(start, started + dt.timedelta(days=1)))
            if on < end:
                found.append(StaffOccasion(on, contact, "work anniversary", on.year - started.year, contact.attended))
    found.sort(key=lambda o: (o.on, o.contact.practice.name, str(o.contact)))
    return found


def open_follow_ups(*, owner=None, until: dt.date) -> QuerySet[OutreachTask]:
    tasks = OutreachTask.objects.open().filter(due_on__lte=until).select_related("practice", "provider", "activity")
    return tasks.filter(owner=owner) if owner is not None else tasks


def open_concerns(*, liaison=None) -> QuerySet[Concern]:
    concerns = Concern.objects.open().select_related("practice", "provider", "owner")
    if liaison is not None:
        concerns = concerns.filter(Q(owner=liaison) | Q(practice__liaison=liaison))
    return concerns.order_by("raised_on", "pk")


def planned_activities(*, liaison=None, start: dt.date, end: dt.date, stops_only: bool = False) -> QuerySet[Activity]:
    locations = Prefetch("practice__locations", queryset=PracticeLocation.objects.order_by("-is_primary", "pk"))
    activities = (
        Activity.objects.planned()
        .filter(date__gte=start, date__lt=end)
        .select_related("practice", "location", "liaison")
        .prefetch_related(locations, "providers", "staff")
        .order_by("date", "start_time", "pk")
    )
    if stops_only:
        activities = activities.filter(kind__in=STOP_KINDS)
    return activities.filter(liaison=liaison) if liaison is not None else activities


def stop_for(activity: Activity) -> Stop:
    location = activity.location or (activity.practice.primary_location if activity.practice else None)
    return Stop(
        key=activity.pk,
        name=activity.practice.name if activity.practice else str(activity),
        address=location.one_line_address if location else "",
        postal_code=location.postal_code if location else "",
        start_time=activity.start_time,
    )


def day_route(activities: list[Activity], day: dt.date) -> list[tuple[Stop, Activity]]:
    """The day's planned in-person activities in route order from the practice's own address."""
    todays = {a.pk: a for a in activities if a.date == day and a.kind in STOP_KINDS}
    home = Practice.current()
    ordered = route_order([stop_for(a) for a in todays.values()], start_zip=home.postal_code if home else "")
    return [(stop, todays[stop.key]) for stop in ordered]


@dataclass
class Week:
    liaison: object
    start: dt.date
    end: dt.date
    route_day: dt.date
    planned: list[Activity] = field(default_factory=list)
    follow_ups: list[OutreachTask] = field(default_factory=list)
    occasions: list[StaffOccasion] = field(default_factory=list)
    concerns: list[Concern] = field(default_factory=list)
    route: list[tuple[Stop, Activity]] = field(default_factory=list)


def week_for(*, liaison, start: dt.date, route_day: dt.date | None = None, occasion_days: int = 21) -> Week:
    """A liaison's week: what is planned, what they owe, whom to congratulate, what to close, and the order
    to drive the day's visits in."""
    end = start + dt.timedelta(days=7)
    route_day = route_day or start
    # Thank-you notes queued by referrals are on the list as follow-up tasks already.
    planned = list(planned_activities(liaison=liaison, start=start, end=end).exclude(origin=Origin.AUTO))
    route_source = (
        planned
        if start <= route_day < end
        else list(planned_activities(liaison=liaison, start=route_day, end=route_day + dt.timedelta(days=1)))
    )
    return Week(
        liaison=liaison,
        start=start,
        end=end,
        route_day=route_day,
        planned=planned,
        follow_ups=list(open_follow_ups(owner=liaison, until=end - dt.timedelta(days=1))),
        occasions=staff_occasions(liaison=liaison, start=start, days=occasion_days),
        concerns=list(open_concerns(liaison=liaison)),
        route=day_route(route_source, route_day),
    )


# Concerns by age

AGE_BUCKETS: tuple[tuple[int, int | None, str], ...] = (
    (0, 7, "Up to a week"),
    (8, 30, "8 to 30 days"),
    (31, 60, "31 to 60 days"),
    (61, None, "Over 60 days"),
)


@dataclass(frozen=True)
class AgeBucket:
    label: str
    concerns: list[Concern]

    @property
    def count(self) -> int:
        return len(self.concerns)


def concerns_by_age(concerns, *, today: dt.date | None = None) -> list[AgeBucket]:
    """Open concerns grouped by days outstanding: what a manager reads to see which offices wait too long."""
    today = today or timezone.localdate()
    buckets = []
    for low, high, label in AGE_BUCKETS:
        inside = [
            c
            for c in concerns
            if c.days_outstanding(today) >= low and (high is None or c.days_outstanding(today) <= high)
        ]
        buckets.append(AgeBucket(label, inside))
    return buckets
