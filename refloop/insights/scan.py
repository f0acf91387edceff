"""The early-warning scan: weekly referral counts from the database, the detector, and the alerts it keeps.

`alert_scan` reads one aggregate query: referrals per referring provider, referring practice and week over the
detector's window ending at `as_of`, nothing received after it, so a scan "as of" a past day sees exactly what
that day saw (back-testing). The rows fold into a sources x weeks matrix per level in NumPy, the detector in
earlywarning.py judges every source at once, and the alerts are upserted: one open alert per source and kind,
refreshed while the change lasts, resolved (kept, not deleted) once the evidence falls below half the
threshold. `alert_follow_up` turns an alert into an outreach task for the source's liaison.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.db.models import Count, Max, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django_tasks import task

from refloop.directory.models import ReferringPractice, ReferringProvider
from refloop.insights import earlywarning as ew
from refloop.insights.models import AlertKind, SourceAlert
from refloop.referrals.models import Referral

LEVELS = {"provider": "referring_provider_id", "practice": "referring_practice_id"}
CHART_WEEKS = 52
FOLLOW_UP_DAYS = 7
SCAN_HOUR = 2  # local time of the nightly scan


@dataclass(frozen=True)
class Finding:
    """One source the detector found changed, as of a day."""

    level: str  # "provider" or "practice"
    source_id: int
    npi: str
    name: str
    kind: str  # AlertKind value
    since: dt.date
    usual_per_month: float
    recent_per_month: float
    drop: float
    confidence: float
    evidence: dict

    def as_json(self) -> dict:
        source = (
            {"npi": self.npi or None, "provider_id": self.source_id}
            if self.level == "provider"
            else {"practice_id": self.source_id}
        )
        return {
            **source,
            "level": self.level,
            "name": self.name,
            "kind": self.kind,
            "since": self.since.isoformat(),
            "usual_per_month": round(self.usual_per_month, 2),
            "recent_per_month": round(self.recent_per_month, 2),
            "drop": round(self.drop, 3),
            "confidence": round(self.confidence, 3),
        }


@dataclass
class ScanOutcome:
    as_of: dt.date
    findings: list[Finding] = field(default_factory=list)
    sources_read: int = 0
    sources_judged: int = 0
    opened: int = 0
    refreshed: int = 0
    resolved: int = 0
    seconds: float = 0.0


@dataclass
class LevelCounts:
    """Referrals per source (rows) and week (columns, the last one ending on as_of)."""

    ids: np.ndarray
    counts: np.ndarray


def week_start(as_of: dt.date, n_weeks: int, column: int) -> dt.date:
    """The first day of week `column` of a window of `n_weeks` weeks ending on `as_of`."""
    return as_of - dt.timedelta(days=7 * (n_weeks - 1 - column) + 6)


def _window(as_of: dt.date, n_weeks: int) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(week_start(as_of, n_weeks, 0), dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def _weeks_before(end: dt.datetime) -> RawSQL | None:
    """Whole weeks from a referral's receipt to `end` (0 = the last 7 days), computed by the database itself.

    Plain arithmetic on the stored UTC time (SQLite's julianday, PostgreSQL's epoch): no per-row time-zone
    function, which on SQLite is a Python callback and took 20 s for the 600,000 referrals of a design-scale
    window. Week boundaries are `end` minus whole weeks in UTC, so across a daylight-saving change a boundary
    sits an hour off local midnight.
    """
    column = f'"{Referral._meta.db_table}"."received_at"'
    if connection.vendor == "sqlite":
        stamp = end.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        return RawSQL(f"CAST((julianday(%s) - julianday({column})) / 7 AS INTEGER)", [stamp])  # noqa: S611
    if connection.vendor == "postgresql":
        return RawSQL(f"FLOOR(EXTRACT(EPOCH FROM (%s - {column})) / 604800)::integer", [end])  # noqa: S611
    return None


def window_counts(*, as_of: dt.date, n_weeks: int) -> dict[str, LevelCounts]:
    """Referrals per source and week over the n_weeks weeks ending on as_of, for providers and practices at once:
    one aggregate query (one pass over the window's referrals) grouped by provider, practice and week."""
    start, end = _window(as_of, n_weeks)
    referrals = Referral.objects.filter(received_at__gte=start, received_at__lt=end).filter(
        Q(referring_provider__isnull=False) | Q(referring_practice__isnull=False)
    )
    keys = {"p": Coalesce("referring_provider_id", 0), "q": Coalesce("referring_practice_id", 0)}
    weeks = _weeks_before(end)
    if weeks is not None:
        grouped = referrals.annotate(**keys, ago=weeks).values_list("p", "q", "ago").annotate(n=Count("id")).order_by()
        # Plain integer tuples straight from the cursor (400,000 rows at design scale): no per-row ORM work.
        sql, params = grouped.query.get_compiler(using=grouped.db).as_sql()
        with connections[grouped.db].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    else:  # another database: by local day, folded into weeks here
        by_day = referrals.annotate(**keys, day=TruncDate("received_at")).values_list("p", "q", "day")
        rows = [(p, q, (as_of - day).days // 7, n) for p, q, day, n in by_day.annotate(n=Count("id")).order_by()]
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return {level: _fold(table[table[:, col] > 0][:, [col, 2, 3]], n_weeks) for col, level in enumerate(LEVELS)}


def _fold(table: np.ndarray, n_weeks: int) -> LevelCounts:
    """(source, weeks ago, referrals) rows into a sources x weeks matrix."""
    if table.shape[0] == 0:
        return LevelCounts(np.zeros(0, dtype=np.int64), np.zeros((0, n_weeks)))
    ids, row = np.unique(table[:, 0], return_inverse=True)
    week = n_weeks - 1 - np.clip(table[:, 1], 0, n_weeks - 1)
    counts = np.zeros((ids.size, n_weeks))
    np.add.at(counts, (row, week), table[:, 2].astype(float))
    return LevelCounts(ids, counts)


def level_counts(*, level: str, as_of: dt.date, n_weeks: int) -> LevelCounts:
    return window_counts(as_of=as_of, n_weeks=n_weeks)[level]


def last_referral_days(*, level: str, ids: list[int], as_of: dt.date) -> dict[int, dt.date]:
    """The (local) day of each source's last referral up to as_of: for the few sources a scan finds silent."""
    if not ids:
        return {}
    column = LEVELS[level]
    _, end = _window(as_of, 1)
    latest = (
        Referral.objects.filter(**{f"{column}__in": ids}, received_at__lt=end)
        .values_list(column)
        .annotate(last=Max("received_at"))
        .order_by()
    )
    return {source: timezone.localdate(last) for source, last in latest}


def _evidence(result: ew.ScanResult, row: int, data: LevelCounts, as_of: dt.date, kind: int) -> dict:
    n_weeks = data.counts.shape[1]
    first = max(n_weeks - CHART_WEEKS, 0)
    expected = result.usual[row] * result.index[first:]
    return {
        "weeks": [week_start(as_of, n_weeks, c).isoformat() for c in range(first, n_weeks)],
        "actual": [int(v) for v in data.counts[row, first:]],
        "expected": [round(float(v), 2) for v in expected],
        "monitored_from": week_start(as_of, n_weeks, result.first_monitored).isoformat(),
        "statistic": round(float(result.statistics[kind][row]), 2),
        "threshold": round(float(result.threshold[kind][row]), 2),
    }


def _findings(level: str, data: LevelCounts, result: ew.ScanResult, as_of: dt.date) -> list[Finding]:
    rows = np.flatnonzero(result.kind != ew.NONE)
    if rows.size == 0:
        return []
    model = ReferringProvider if level == "provider" else ReferringPractice
    sources = model.objects.in_bulk([int(data.ids[r]) for r in rows])
    n_weeks = data.counts.shape[1]
    silent = [int(data.ids[r]) for r in rows if result.kind[r] == ew.DORMANT]
    last_days = last_referral_days(level=level, ids=silent, as_of=as_of)
    found = []
    for r in rows:
        source = sources.get(int(data.ids[r]))
        if source is None or source.merged_into_id is not None or not source.is_active:
            continue  # merged away, or inactive (retired, NPI deactivated): their silence is no news
        kind = int(result.kind[r])
        if kind == ew.DORMANT:
            last = last_days.get(int(data.ids[r]))
            since = last + dt.timedelta(days=1) if last else week_start(as_of, n_weeks, int(result.since[r]))
        else:
            since = week_start(as_of, n_weeks, int(result.since[r]))
        usual = float(result.usual[r]) * ew.WEEKS_PER_MONTH
        ratio = float(result.ratio[r])
        found.append(
            Finding(
                level=level,
                source_id=source.pk,
                npi=source.npi,
                name=str(source),
                kind=ew.KIND_NAMES[kind],
                since=since,
                usual_per_month=usual,
                recent_per_month=usual * ratio,
                drop=ratio - 1.0,
                confidence=float(result.confidence[r]),
                evidence=_evidence(result, r, data, as_of, kind),
            )
        )
    return found


def alert_scan(*, as_of: dt.date | None = None, save: bool = True, params: ew.Params = ew.DEFAULT) -> ScanOutcome:
    """Judge every referring provider and practice as of a day; with `save`, open, refresh and resolve alerts.

    Back-tests (`as_of` in the past) normally run with save=False: saving would resolve today's alerts against
    an older day's evidence.
    """
    started = time.perf_counter()
    as_of = as_of or timezone.localdate()
    outcome = ScanOutcome(as_of=as_of)
    n_weeks = params.window_weeks
    index = None
    results: dict[str, tuple[LevelCounts, ew.ScanResult | None]] = {}
    counts = window_counts(as_of=as_of, n_weeks=n_weeks)
    for level in LEVELS:
        data = counts[level]
        outcome.sources_read += data.ids.size
        if data.ids.size == 0:
            results[level] = (data, None)
            continue
        result = ew.scan(data.counts, params=params, index=index)
        index = result.index  # the practice-wide level, from the providers, serves the practices too
        outcome.sources_judged += int(result.judged.sum())
        outcome.findings += _findings(level, data, result, as_of)
        results[level] = (data, result)
    if save:
        with transaction.atomic():
            for level, (data, result) in results.items():
                _save_level(level, data, result, [f for f in outcome.findings if f.level == level], as_of, params,
                            outcome)  # fmt: skip
    outcome.seconds = time.perf_counter() - started
    return outcome


def _save_level(
    level: str,
    data: LevelCounts,
    result: ew.ScanResult | None,
    findings: list[Finding],
    as_of: dt.date,
    params: ew.Params,
    outcome: ScanOutcome,
) -> None:
    fk = f"{level}_id"
    now = timezone.now()
    open_alerts = {
        (getattr(a, fk), a.kind): a
        for a in SourceAlert.objects.select_for_update().filter(resolved_at__isnull=True, **{f"{level}__isnull": False})
    }
    found_keys = set()
    for f in findings:
        key = (f.source_id, f.kind)
        found_keys.add(key)
        fields = {
            "since": f.since,
            "usual_per_month": f.usual_per_month,
            "recent_per_month": f.recent_per_month,
            "drop": f.drop,
            "confidence": f.confidence,
            "evidence": f.evidence,
            "as_of": as_of,
        }
        alert = open_alerts.get(key)
        if alert is not None:
            for name, value in fields.items():
                setattr(alert, name, value)
            alert.save(update_fields=[*fields, "updated_at"])
            outcome.refreshed += 1
            continue
        # A slipping source that falls silent becomes dormant (and the reverse): one open alert, the follow-up kept.
        carried = None
        for other in (AlertKind.SLIPPING, AlertKind.DORMANT):
            previous = open_alerts.get((f.source_id, other))
            if other != f.kind and previous is not None and f.kind != AlertKind.RISING:
                carried = carried or previous.follow_up_id
                previous.resolved_at = now
                previous.save(update_fields=["resolved_at", "updated_at"])
                found_keys.add((f.source_id, other))
                outcome.resolved += 1
        SourceAlert.objects.create(kind=f.kind, follow_up_id=carried, **{fk: f.source_id}, **fields)
        outcome.opened += 1
    if result is None:
        return
    row_of = {int(source_id): row for row, source_id in enumerate(data.ids)}
    kinds = {name: code for code, name in ew.KIND_NAMES.items()}
    silent = [sid for (sid, kind), a in open_alerts.items() if kind == AlertKind.DORMANT and a.resolved_at is None]
    last_days = last_referral_days(level=level, ids=silent, as_of=as_of)
    for (source_id, kind), alert in open_alerts.items():
        if (source_id, kind) in found_keys or alert.resolved_at is not None:
            continue
        row = row_of.get(source_id)
        if row is None or not result.judged[row]:
            continue  # not enough to judge on (a long-dormant source stays dormant until it sends again)
        code = kinds[kind]
        if kind == AlertKind.DORMANT:
            last = last_days.get(source_id)
            still = last is None or last < alert.since  # nothing since the silence began
        else:
            still = bool(result.still_changed(code, params.resolve_fraction)[row])
        if not still:
            alert.resolved_at = now
            alert.save(update_fields=["resolved_at", "updated_at"])
            outcome.resolved += 1


def liaison_for(source: ReferringProvider | ReferringPractice):
    """Who follows up: the source's liaison, else its territory's, else (a provider) its primary practice's."""
    for entry in (source, source.primary_practice() if isinstance(source, ReferringProvider) else None):
        if entry is None:
            continue
        if entry.liaison_id:
            return entry.liaison
        if entry.territory_id and entry.territory.liaison_id:
            return entry.territory.liaison
    return None


def alert_follow_up(*, alert: SourceAlert, by) -> SourceAlert:
    """Ask the source's liaison to follow up: one open outreach task per alert (a second click returns it)."""
    from refloop.outreach.models import TaskStatus
    from refloop.outreach.services import task_create

    with transaction.atomic():
        current = (
            SourceAlert.objects.select_for_update(of=("self",))
            .select_related("provider", "practice", "follow_up")
            .get(pk=alert.pk)
        )
        if current.resolved_at is not None:
            raise ValidationError("This alert is resolved: the source's referrals are back to usual.")
        if current.follow_up is not None and current.follow_up.status == TaskStatus.OPEN:
            return current
        source = current.provider or current.practice
        what = {
            AlertKind.SLIPPING: f"Referrals slipping: usual {current.usual_per_month:.1f}/month, "
            f"{current.recent_per_month:.1f}/month since {current.since:%b %-d}",
            AlertKind.DORMANT: f"No referrals since {current.since:%b %-d} (usual {current.usual_per_month:.1f}/month)",
            AlertKind.RISING: f"Referrals rising: usual {current.usual_per_month:.1f}/month, "
            f"{current.recent_per_month:.1f}/month since {current.since:%b %-d}: thank them",
        }[current.kind]
        task = task_create(
            title=f"{source}: {what}",
            due_on=timezone.localdate() + dt.timedelta(days=FOLLOW_UP_DAYS),
            owner=liaison_for(source) or by,
            by=by,
            provider=current.provider,
            practice=current.practice or (current.provider.primary_practice() if current.provider else None),
        )
        current.follow_up = task
        current.followed_up_by = by if getattr(by, "pk", None) else None
        current.save(update_fields=["follow_up", "followed_up_by", "updated_at"])
    return current


# The nightly run: a task that scans, then queues tomorrow's run (`refloop worker` queues the first one).


def next_scan_at(now: dt.datetime | None = None) -> dt.datetime:
    """The next SCAN_HOUR o'clock, local time, after `now`."""
    local = timezone.localtime(now or timezone.now())
    candidate = local.replace(hour=SCAN_HOUR, minute=0, second=0, microsecond=0)
    return candidate if candidate > local else candidate + dt.timedelta(days=1)


def alert_scan_schedule(*, now: dt.datetime | None = None) -> bool:
    """Queue the next nightly scan unless one is queued already. True if queued now."""
    from django_tasks_db.models import DBTaskResult

    if DBTaskResult.objects.filter(task_path=alert_scan_nightly.module_path, status="READY").exists():
        return False
    alert_scan_nightly.using(run_after=next_scan_at(now)).enqueue()
    return True


@task()
def alert_scan_nightly() -> str:
    """Run by the worker every night: scan as of today, save the alerts, queue tomorrow's scan."""
    try:
        outcome = alert_scan(save=True)
    finally:
        alert_scan_schedule()
    return (
        f"{outcome.as_of}: {outcome.sources_judged} sources judged, opened {outcome.opened}, "
        f"refreshed {outcome.refreshed}, resolved {outcome.resolved} in {outcome.seconds:.1f} s"
    )


def demo_build(ctx) -> None:
    """The demo's last step: scan as of the demo's today, so its slipping, dormant and rising sources show alerts."""
    now = ctx.objects.get("now") or timezone.now()
    outcome = alert_scan(as_of=timezone.localdate(now), save=True)
    ctx.count("early-warning alerts", outcome.opened)
