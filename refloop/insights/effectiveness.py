"""Do visits and lunches bring referrals? A difference-in-differences estimate, with an interval, or "too thin".

For each done visit or lunch at a referring practice (the event), count the practice's referrals in the 90
days before and the 90 days after (the event day itself in neither). Referrals rise and fall for reasons no
liaison controls (season, a new competitor, a holiday month), so the same counts are taken, around the same
day, for comparable practices that had no visit or lunch at all in the 180 days around it: same tier, same
specialty (the commonest specialty of the practice's providers), same volume band (referrals in the 90 days
before). The event's lift is (after - before) at the visited practice minus the mean (after - before) of its
controls; the estimate is the mean lift over events, in referrals per practice per 90 days.

An event counts only when its 90 days after are over (before `as_of`, usually today), and when its practice
had no other visit or lunch in the 90 days before (else the "before" carries an earlier visit's effect). A
stratum needs
MIN_CONTROLS controls; with fewer, specialty and then tier are dropped (the match level is kept per event);
an event with no comparable practice at all is left out and counted.

The same comparison one window earlier (the 90 days before against the 90 before those) is the pre-trend
check: visited offices should not already have been changing differently from their controls. Liaisons often
visit offices because they are slipping or growing; when the pre-trend's interval excludes zero, the page says
so next to the lift, which then carries that bias.

The interval is a 95% percentile bootstrap that resamples practices, not events: visits to the same office
are not independent evidence. Below MIN_EVENTS events, MIN_SOURCES practices or MIN_REFERRALS referrals at
the visited practices, no number is given: the page says the data is too thin to conclude.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from refloop.directory.models import ProviderPractice, ReferringPractice
from refloop.outreach.models import IN_PERSON_KINDS, Activity, ActivityKind, ActivityStatus, LedgerEntry

WINDOW_DAYS = 90
MIN_EVENTS = 10
MIN_SOURCES = 3
MIN_REFERRALS = 20
MIN_CONTROLS = 3
BOOTSTRAP_SAMPLES = 2000
# Lower bounds of the volume bands: referrals in the 90 days before (0, 1-2, 3-5, 6-10, 11-20, 21+).
VOLUME_BANDS = np.array([0, 1, 3, 6, 11, 21])
MATCH_LEVELS = ("tier, specialty and volume", "tier and volume", "volume only")


@dataclass(frozen=True)
class EventLift:
    activity_id: int
    practice_id: int
    liaison_id: int | None
    kind: str
    date: dt.date
    before: int
    after: int
    control_before: float  # mean over the controls
    control_after: float
    controls: int
    match_level: int  # index into MATCH_LEVELS
    earlier: int = 0  # referrals in the 90 days before `before` (days -180 to -91)
    control_earlier: float = 0.0

    @property
    def lift(self) -> float:
        return (self.after - self.before) - (self.control_after - self.control_before)

    @property
    def pretrend(self) -> float:
        """The same difference in differences one window earlier: ~0 when the controls are comparable."""
        return (self.before - self.earlier) - (self.control_before - self.control_earlier)


@dataclass(frozen=True)
class Estimate:
    """The lift of one group of events (all, one kind, one liaison), or the reason there is no number."""

    label: str
    events: int
    sources: int
    referrals: int  # at the visited practices, before and after together
    lift: float | None = None
    low: float | None = None
    high: float | None = None
    before_mean: float | None = None
    after_mean: float | None = None
    control_change: float | None = None
    pretrend: float | None = None
    pretrend_low: float | None = None
    pretrend_high: float | None = None
    thin_reason: str = ""
    key: str = ""

    @property
    def pretrend_warning(self) -> bool:
        """The visited offices were already changing differently from their controls before the visits."""
        return self.pretrend_low is not None and (self.pretrend_low > 0 or self.pretrend_high < 0)

    @property
    def thin(self) -> bool:
        return bool(self.thin_reason)

    @property
    def verdict(self) -> str:
        if self.thin:
            return "Too thin to conclude"
        if self.low is not None and self.low > 0:
            return "More referrals after"
        if self.high is not None and self.high < 0:
            return "Fewer referrals after"
        return "No clear change"


@dataclass
class Effectiveness:
    start: dt.date
    end: dt.date
    as_of: dt.date
    events: list[EventLift]
    skipped: dict[str, int]
    overall: Estimate
    by_kind: list[Estimate] = field(default_factory=list)
    by_liaison: list[Estimate] = field(default_factory=list)


def effectiveness(
    *, start: dt.date, end: dt.date, as_of: dt.date | None = None, liaisons: dict | None = None, seed: int = 7
) -> Effectiveness:
    """The estimate overall, per activity kind and per liaison, for events dated `start`..`end` inclusive.
    `liaisons` maps user ids to names for the labels (looked up when not given)."""
    as_of = as_of or timezone.localdate()
    events, skipped = event_lifts(start=start, end=end, as_of=as_of)
    rng = np.random.default_rng(seed)
    kinds = dict(ActivityKind.choices)
    by_kind = [
        estimate([e for e in events if e.kind == kind], label=kinds[kind], key=str(kind), rng=rng)
        for kind in IN_PERSON_KINDS
    ]
    groups: dict[int | None, list[EventLift]] = defaultdict(list)
    for event in events:
        groups[event.liaison_id].append(event)
    if liaisons is None:
        from django.contrib.auth import get_user_model

        users = get_user_model().objects.in_bulk([pk for pk in groups if pk is not None])
        liaisons = {pk: (u.get_full_name() or u.get_username()) for pk, u in users.items()}
    by_liaison = [
        estimate(group, label=liaisons.get(pk, "No liaison") if pk else "No liaison", key=str(pk or ""), rng=rng)
        for pk, group in groups.items()
    ]
    by_liaison.sort(key=lambda e: (e.thin, e.label.lower()))
    return Effectiveness(
        start,
        end,
        as_of,
        events,
        skipped,
        estimate(events, label="All visits and lunches", rng=rng),
        by_kind,
        by_liaison,
    )


def estimate(
    events: list[EventLift],
    *,
    label: str,
    key: str = "",
    rng: np.random.Generator | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
) -> Estimate:
    sources = len({e.practice_id for e in events})
    referrals = sum(e.before + e.after for e in events)
    base = Estimate(label=label, events=len(events), sources=sources, referrals=referrals, key=key)
    reasons = []
    if len(events) < MIN_EVENTS:
        reasons.append(f"{len(events)} event{'s' if len(events) != 1 else ''} (at least {MIN_EVENTS} needed)")
    if sources < MIN_SOURCES:
        reasons.append(f"{sources} practice{'s' if sources != 1 else ''} (at least {MIN_SOURCES} needed)")
    if referrals < MIN_REFERRALS:
        reasons.append(f"{referrals} referrals at the visited practices (at least {MIN_REFERRALS} needed)")
    if reasons:
        return _replace(base, thin_reason="; ".join(reasons))
    lifts = np.array([e.lift for e in events], dtype=float)
    rng = rng or np.random.default_rng(7)
    low, high = _cluster_interval(events, "lift", rng, samples)
    pre_low, pre_high = _cluster_interval(events, "pretrend", rng, samples)
    return _replace(
        base,
        lift=float(lifts.mean()),
        low=low,
        high=high,
        before_mean=float(np.mean([e.before for e in events])),
        after_mean=float(np.mean([e.after for e in events])),
        control_change=float(np.mean([e.control_after - e.control_before for e in events])),
        pretrend=float(np.mean([e.pretrend for e in events])),
        pretrend_low=pre_low,
        pretrend_high=pre_high,
    )


def _replace(estimate_: Estimate, **changes) -> Estimate:
    from dataclasses import replace

    return replace(estimate_, **changes)


def _cluster_interval(
    events: list[EventLift], measure: str, rng: np.random.Generator, samples: int
) -> tuple[float, float]:
    """95% percentile interval of the mean `measure` (lift or pretrend), resampling practices (all of a
    practice's events together)."""
    sums: dict[int, float] = defaultdict(float)
    counts: Counter[int] = Counter()
    for event in events:
        sums[event.practice_id] += getattr(event, measure)
        counts[event.practice_id] += 1
    keys = list(sums)
    cluster_sums = np.array([sums[k] for k in keys])
    cluster_counts = np.array([counts[k] for k in keys], dtype=float)
    k = len(keys)
    batch = max(1, 2_000_000 // k)  # bounded memory: a few thousand offices times 2,000 samples is too many at once
    means = []
    for first in range(0, samples, batch):
        picks = rng.integers(0, k, size=(min(batch, samples - first), k))
        means.append(cluster_sums[picks].sum(axis=1) / cluster_counts[picks].sum(axis=1))
    low, high = np.percentile(np.concatenate(means), [2.5, 97.5])
    return float(low), float(high)


def event_lifts(*, start: dt.date, end: dt.date, as_of: dt.date) -> tuple[list[EventLift], dict[str, int]]:
    """Every qualifying visit or lunch in `start`..`end` with its own and its controls' counts."""
    if end < start:
        raise ValueError("the period ends before it starts")
    skipped = {"too recent": 0, "visited in the 90 days before": 0, "no comparable practice": 0}
    w = WINDOW_DAYS
    day0 = start - dt.timedelta(days=2 * w + 1)  # index 0; every window of every event lies inside
    days = (end - day0).days + w + 1

    practices = list(ReferringPractice.objects.current().order_by("pk").values_list("pk", "tier_id", "is_active"))
    index = {pk: i for i, (pk, _, _) in enumerate(practices)}
    n = len(practices)
    active = np.array([is_active for _, _, is_active in practices], dtype=bool)
    tiers = _codes([tier for _, tier, _ in practices])
    specialty = _practice_specialties()
    specialties = _codes([specialty.get(pk, "") for pk, _, _ in practices])

    referrals = np.zeros((n, days + 1), dtype=np.int32)
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(day0, dt.time.min, tzinfo=tz)
    until = dt.datetime.combine(day0 + dt.timedelta(days=days), dt.time.min, tzinfo=tz)
    from refloop.referrals.models import Referral

    rows = (
        Referral.objects.filter(received_at__gte=since, received_at__lt=until, referring_practice__isnull=False)
        .annotate(day=TruncDate("received_at", tzinfo=tz))
        .values("referring_practice_id", "day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        i = index.get(row["referring_practice_id"])
        if i is not None:
            referrals[i, (row["day"] - day0).days + 1] += row["n"]
    np.cumsum(referrals, axis=1, out=referrals)  # column d + 1 holds the count up to and including day d

    visits = np.zeros((n, days + 1), dtype=np.int32)
    in_person = Activity.objects.filter(
        status=ActivityStatus.DONE,
        kind__in=IN_PERSON_KINDS,
        practice__isnull=False,
        date__gte=day0,
        date__lt=day0 + dt.timedelta(days=days),
    )
    for practice_id, day in in_person.values_list("practice_id", "date").order_by():
        i = index.get(practice_id)
        if i is not None:
            visits[i, (day - day0).days + 1] += 1
    np.cumsum(visits, axis=1, out=visits)

    def count(cum: np.ndarray, first: int, last: int) -> np.ndarray:
        return cum[:, last + 1] - cum[:, first]

    candidates = (
        in_person.filter(date__gte=start, date__lte=end)
        .order_by("date", "practice_id", "pk")
        .values_list("pk", "practice_id", "liaison_id", "kind", "date")
    )
    by_day: dict[dt.date, list[tuple]] = defaultdict(list)
    seen_practice_days: set[tuple[int, dt.date]] = set()
    for row in candidates:
        if (row[1], row[4]) in seen_practice_days or row[1] not in index:
            continue  # a visit and a lunch the same day are one event
        seen_practice_days.add((row[1], row[4]))
        if row[4] + dt.timedelta(days=w) >= as_of:  # the 90th day after must be over
            skipped["too recent"] += 1
            continue
        by_day[row[4]].append(row)

    band_count = len(VOLUME_BANDS)
    events: list[EventLift] = []
    for day, rows_today in sorted(by_day.items()):
        t = (day - day0).days
        before = count(referrals, t - w, t - 1)
        after = count(referrals, t + 1, t + w)
        earlier = count(referrals, t - 2 * w, t - w - 1)
        earlier_visits = count(visits, t - w, t - 1)
        eligible = active & (count(visits, t - w, t + w) == 0)
        band = np.searchsorted(VOLUME_BANDS, before, side="right") - 1
        keys = (
            (tiers * (specialties.max(initial=0) + 1) + specialties) * band_count + band,
            tiers * band_count + band,
            band,
        )
        pools = [_pool(key, eligible, before, after, earlier) for key in keys]
        for activity_id, practice_id, liaison_id, kind, date in rows_today:
            i = index[practice_id]
            if earlier_visits[i] > 0:
                skipped["visited in the 90 days before"] += 1
                continue
            for level, (key, pool) in enumerate(zip(keys, pools, strict=True)):
                found = pool.get(int(key[i]))
                if found and found[0] >= MIN_CONTROLS:
                    controls, sum_before, sum_after, sum_earlier = found
                    events.append(
                        EventLift(
                            activity_id,
                            practice_id,
                            liaison_id,
                            kind,
                            date,
                            int(before[i]),
                            int(after[i]),
                            sum_before / controls,
                            sum_after / controls,
                            controls,
                            level,
                            int(earlier[i]),
                            sum_earlier / controls,
                        )
                    )
                    break
            else:
                skipped["no comparable practice"] += 1
    return events, skipped


def _pool(key: np.ndarray, eligible: np.ndarray, *series: np.ndarray) -> dict:
    """Per stratum key among the eligible controls: (how many, then the sum of each series)."""
    if not eligible.any():
        return {}
    values, inverse, counts = np.unique(key[eligible], return_inverse=True, return_counts=True)
    sums = [np.bincount(inverse, weights=x[eligible]) for x in series]
    return {int(v): (int(counts[j]), *(float(total[j]) for total in sums)) for j, v in enumerate(values)}


def _codes(labels: list) -> np.ndarray:
    mapping: dict = {}
    return np.array([mapping.setdefault(label, len(mapping)) for label in labels], dtype=np.int64)


def _practice_specialties() -> dict[int, str]:
    """Each practice's commonest provider specialty (ties to the alphabetically first), '' when none."""
    tally: dict[int, Counter] = defaultdict(Counter)
    rows = (
        ProviderPractice.objects.filter(provider__merged_into__isnull=True)
        .exclude(provider__specialty="")
        .values_list("practice_id", "provider__specialty")
    )
    for practice_id, specialty in rows.iterator(chunk_size=5000):
        tally[practice_id][specialty.strip().lower()] += 1
    return {pk: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for pk, c in tally.items()}


# Spend against referrals


@dataclass(frozen=True)
class SpendRow:
    kind: str  # "provider" (the ledger, per physician) or "practice" (activity costs at the office)
    pk: int
    name: str
    spend: Decimal
    referrals: int

    def __post_init__(self) -> None:
        # SQLite sums decimals without their scale (120, not 120.00): money is always shown to the cent.
        object.__setattr__(self, "spend", Decimal(self.spend).quantize(Decimal("0.01")))

    @property
    def cost_per_referral(self) -> Decimal | None:
        return (self.spend / self.referrals).quantize(Decimal("0.01")) if self.referrals else None


def spend_by_physician(*, start: dt.date, end: dt.date, follow_days: int = WINDOW_DAYS) -> list[SpendRow]:
    """Items of value in the compliance ledger per physician (`start`..`end`), against the physician's
    referrals from `start` to `follow_days` after `end` (what the spend could have brought). Most spend first."""
    from refloop.directory.models import ReferringProvider
    from refloop.referrals.models import Referral

    spend = dict(
        LedgerEntry.objects.filter(on__gte=start, on__lte=end)
        .values("physician_id")
        .annotate(total=Sum("amount"))
        .values_list("physician_id", "total")
        .order_by()
    )
    counts = dict(
        Referral.objects.filter(referring_provider_id__in=list(spend), **_received_between(start, end, follow_days))
        .values("referring_provider_id")
        .annotate(n=Count("pk"))
        .values_list("referring_provider_id", "n")
        .order_by()
    )
    names = ReferringProvider.objects.in_bulk(list(spend))
    rows = [
        SpendRow("provider", pk, names[pk].display_name if pk in names else f"#{pk}", total, counts.get(pk, 0))
        for pk, total in spend.items()
    ]
    rows.sort(key=lambda r: (-r.spend, r.name.lower()))
    return rows


def spend_by_practice(*, start: dt.date, end: dt.date, follow_days: int = WINDOW_DAYS) -> list[SpendRow]:
    """What done activities at each office cost (meals shared with staff included, which the ledger leaves
    out when staff share the cost), against the office's referrals over the same reach as above."""
    from refloop.referrals.models import Referral

    spend = dict(
        Activity.objects.filter(
            status=ActivityStatus.DONE, practice__isnull=False, date__gte=start, date__lte=end, cost__gt=0
        )
        .values("practice_id")
        .annotate(total=Sum("cost"))
        .values_list("practice_id", "total")
        .order_by()
    )
    counts = dict(
        Referral.objects.filter(referring_practice_id__in=list(spend), **_received_between(start, end, follow_days))
        .values("referring_practice_id")
        .annotate(n=Count("pk"))
        .values_list("referring_practice_id", "n")
        .order_by()
    )
    names = dict(ReferringPractice.objects.filter(pk__in=list(spend)).values_list("pk", "name"))
    rows = [SpendRow("practice", pk, names.get(pk, f"#{pk}"), total, counts.get(pk, 0)) for pk, total in spend.items()]
    rows.sort(key=lambda r: (-r.spend, r.name.lower()))
    return rows


def _received_between(start: dt.date, end: dt.date, follow_days: int) -> dict:
    tz = timezone.get_current_timezone()
    return {
        "received_at__gte": dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        "received_at__lt": dt.datetime.combine(end + dt.timedelta(days=follow_days + 1), dt.time.min, tzinfo=tz),
    }
