"""Scorecards: what each liaison did and what came of it, and what each clinician received, saw and reported.

A liaison's card counts their done activities by kind in the period, their assigned sources and the share not
overdue for a visit (the outreach cadence rule, outreach.selectors.due_list, as of the period's last day), and
referrals from their sources against the same dates a year earlier. "Their sources" are the practices and
providers assigned to them directly or through a territory they hold, as assigned today: both years count
the same offices, so a reassignment does not read as growth.

A clinician's card counts referrals assigned to them that arrived in the period, patients seen in the period,
and consult-report turnaround (business days from the visit to the report sent, the letters app's rule) for
reports sent in the period: median, 90th percentile and share within the practice's target.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from refloop.accounts.roles import Role
from refloop.directory.models import ReferringPractice, ReferringProvider
from refloop.letters.selectors import business_days_to_report
from refloop.outreach.models import Activity, ActivityKind, ActivityStatus
from refloop.outreach.selectors import DueItem, due_list
from refloop.practice.models import Clinician, ServiceLevels
from refloop.referrals.models import Referral


@dataclass(frozen=True)
class Period:
    """Whole days, `start` to `end` inclusive, in the practice's time zone."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the period ends before it starts")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        return f"{self.start:%b} {self.start.day}, {self.start.year} – {self.end:%b} {self.end.day}, {self.end.year}"

    def year_before(self) -> Period:
        return Period(_year_back(self.start), _year_back(self.end))

    def received_filter(self, field: str = "received_at") -> Q:
        tz = timezone.get_current_timezone()
        since = dt.datetime.combine(self.start, dt.time.min, tzinfo=tz)
        until = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return Q(**{f"{field}__gte": since, f"{field}__lt": until})


def _year_back(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def default_period(today: dt.date | None = None) -> Period:
    today = today or timezone.localdate()
    return Period(today - dt.timedelta(days=89), today)


# Liaisons


@dataclass
class LiaisonScorecard:
    liaison: object
    period: Period
    activities: dict[str, int] = field(default_factory=dict)  # kind value -> done activities
    planned_not_done: int = 0  # planned for a day in the period that has passed and never marked done
    assigned_providers: int = 0
    assigned_practices: int = 0
    with_cadence: int = 0
    overdue: list[DueItem] = field(default_factory=list)
    referrals: int = 0
    referrals_last_year: int = 0

    @property
    def activities_total(self) -> int:
        return sum(self.activities.values())

    @property
    def activity_rows(self) -> list[tuple[str, int]]:
        return [(label, self.activities.get(kind, 0)) for kind, label in ActivityKind.choices]

    @property
    def on_cadence(self) -> int:
        return self.with_cadence - len(self.overdue)

    @property
    def on_cadence_share(self) -> float | None:
        return self.on_cadence / self.with_cadence if self.with_cadence else None

    @property
    def referral_change(self) -> float | None:
        if not self.referrals_last_year:
            return None
        return (self.referrals - self.referrals_last_year) / self.referrals_last_year


def liaisons():
    return get_user_model().objects.filter(role=Role.LIAISON, is_active=True).order_by("last_name", "first_name")


def liaison_scorecard(*, liaison, period: Period) -> LiaisonScorecard:
    card = LiaisonScorecard(liaison=liaison, period=period)
    done = Activity.objects.filter(
        liaison=liaison, status=ActivityStatus.DONE, date__gte=period.start, date__lte=period.end
    )
    card.activities = dict(done.values("kind").annotate(n=Count("pk")).values_list("kind", "n").order_by())
    today = timezone.localdate()
    card.planned_not_done = Activity.objects.filter(
        liaison=liaison, status=ActivityStatus.PLANNED, date__gte=period.start, date__lte=period.end, date__lt=today
    ).count()

    # Assigned sources and the cadence: the sources whose liaison is this person, as outreach's due_list reads.
    practices = ReferringPractice.objects.current().filter(is_active=True, liaison=liaison)
    providers = ReferringProvider.objects.current().filter(is_active=True, liaison=liaison)
    card.assigned_practices = practices.count()
    card.assigned_providers = providers.count()
    card.with_cadence = (
        providers.filter(Q(target_visit_days__isnull=False) | Q(tier__isnull=False)).count()
        + practices.filter(tier__isnull=False).count()
    )
    card.overdue = due_list(liaison=liaison, today=period.end)

    # The territory: those sources, and the ones in a territory this person holds.
    mine = Q(liaison=liaison) | Q(territory__liaison=liaison)
    referrals = Referral.objects.filter(
        Q(referring_practice__in=ReferringPractice.objects.filter(mine).values("pk"))
        | Q(referring_provider__in=ReferringProvider.objects.filter(mine).values("pk"))
    )
    card.referrals = referrals.filter(period.received_filter()).count()
    card.referrals_last_year = referrals.filter(period.year_before().received_filter()).count()
    return card


def liaison_scorecards(*, period: Period) -> list[LiaisonScorecard]:
    return [liaison_scorecard(liaison=person, period=period) for person in liaisons()]


# Clinicians


@dataclass(frozen=True)
class ClinicianScorecard:
    clinician: Clinician | None
    period: Period
    received: int
    seen: int
    reports: int
    median_days: float | None
    p90_days: int | None
    within_target: float | None
    target_days: int

    @property
    def name(self) -> str:
        return str(self.clinician) if self.clinician else "No clinician assigned"


def turnaround_figures(values: list[int], target: int) -> tuple[float | None, int | None, float | None]:
    """Median, 90th percentile (nearest rank, as letters.selectors counts it) and share within `target`."""
    if not values:
        return None, None, None
    values = sorted(values)
    p90 = values[max(0, math.ceil(0.9 * len(values)) - 1)]
    return statistics.median(values), p90, sum(1 for v in values if v <= target) / len(values)


def clinician_scorecards(*, period: Period, clinician: Clinician | None = None) -> list[ClinicianScorecard]:
    """One card per active clinician (and per inactive one who had referrals in the period)."""
    levels = ServiceLevels.current()
    calendar = levels.calendar()
    scope = Referral.objects.all() if clinician is None else Referral.objects.filter(clinician=clinician)
    received = Counter(
        dict(
            scope.filter(period.received_filter())
            .values("clinician_id")
            .annotate(n=Count("pk"))
            .values_list("clinician_id", "n")
            .order_by()
        )
    )
    seen = Counter(
        dict(
            scope.filter(period.received_filter("seen_at"))
            .values("clinician_id")
            .annotate(n=Count("pk"))
            .values_list("clinician_id", "n")
            .order_by()
        )
    )
    turnaround: dict[int | None, list[int]] = defaultdict(list)
    reported = scope.filter(period.received_filter("report_sent_at"), seen_at__isnull=False).only(
        "clinician_id", "seen_at", "report_sent_at"
    )
    for referral in reported.iterator(chunk_size=2000):
        turnaround[referral.clinician_id].append(business_days_to_report(referral, calendar))

    if clinician is not None:
        people = [clinician]
    else:
        ids = set(received) | set(seen) | set(turnaround)
        people = list(Clinician.objects.filter(Q(is_active=True) | Q(pk__in=[i for i in ids if i])))
        people.sort(key=lambda c: (c.last_name.lower(), c.first_name.lower(), c.pk))
    cards = []
    keys: list[int | None] = [c.pk for c in people]
    if clinician is None and (None in received or None in seen or None in turnaround):
        keys.append(None)
    by_pk = {c.pk: c for c in people}
    for key in keys:
        median, p90, within = turnaround_figures(turnaround.get(key, []), levels.report_days)
        cards.append(
            ClinicianScorecard(
                clinician=by_pk.get(key),
                period=period,
                received=received.get(key, 0),
                seen=seen.get(key, 0),
                reports=len(turnaround.get(key, [])),
                median_days=median,
                p90_days=p90,
                within_target=within,
                target_days=levels.report_days,
            )
        )
    return cards


def clinician_scorecard(*, clinician: Clinician, period: Period) -> ClinicianScorecard:
    return clinician_scorecards(period=period, clinician=clinician)[0]
