"""Reads for the dashboard: every figure is a small GROUP BY over rollup rows (see rollups.py), never a scan of
the referrals; `drilldown` lists the referrals behind a figure from the same member rows that were counted."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce

from refloop.insights.filters import Filters, add_months, months_between
from refloop.insights.models import (
    ALL_ID,
    ALL_TEXT,
    APPOINTMENT_DAY_EDGES,
    CONTACT_HOUR_EDGES,
    CUBOIDS,
    FILTER_DIMENSIONS,
    LOST_REASONS,
    MEASURES,
    SOURCE_SINGLE_FILTERS,
    TURNAROUND_CAP,
    AlertKind,
    ReferralRollup,
    RollupMember,
    SourceAlert,
    SourceKind,
    SourceRollup,
    running_column,
)
from refloop.insights.rollups import TEXT_DIMENSIONS, cuboid_for, rollup_catch_up

TOP = 10
LOST_LABELS = {
    "went_elsewhere": "Went elsewhere",
    "insurance": "Insurance",
    "could_not_reach": "Could not reach the patient",
    "patient_declined": "Patient declined",
    "other": "Other",
}


READER_PATIENCE = 1.0  # seconds a page waits for another writer before it reads the sums as they are


def caught_up(reader):
    """A reader of the sums: the referrals queued by intakes and steps are folded in first (rollups.rollup_catch_up),
    so it counts every committed change (unless another writer holds the sums longer than READER_PATIENCE)."""

    @functools.wraps(reader)
    def read(*args, **kwargs):
        rollup_catch_up(patience=READER_PATIENCE)
        return reader(*args, **kwargs)

    return read


def _cube(filters: Filters, first: dt.date, last: dt.date, group: tuple[str, ...]) -> list[dict]:
    """Sums of every measure over the smallest cuboid that answers, grouped by `group`: one SQL statement.

    Raw SQL because building 48 aggregate expressions through the ORM costs more than running the query."""
    dims = filters.dimensions()
    q = connection.ops.quote_name
    # The cuboid as a literal (a number from cuboid_for): the full cuboid's partial indexes need it spelled out.
    cuboid = cuboid_for([*dims, *group])
    where = [f"{q('cuboid')} = {int(cuboid)}", f"{q('month')} >= %s", f"{q('month')} <= %s"]
    params: list = [first, last]
    for name, value in dims.items():
        where.append(f"{q(name)} = %s")
        params.append(value)
    # The dimensions this cuboid sums over hold ALL: saying so lets the key index lead straight to the rows.
    for name in set(FILTER_DIMENSIONS) - set(CUBOIDS[cuboid]) - set(group):
        where.append(f"{q(name)} = %s")
        params.append(ALL_TEXT if name in TEXT_DIMENSIONS else ALL_ID)
    columns = ", ".join(q(g) for g in group)
    sums = ", ".join(f"SUM({q(m)})" for m in MEASURES)
    sql = (
        f"SELECT {columns}, {sums} FROM {q(ReferralRollup._meta.db_table)} "  # noqa: S608 - names from the model
        f"WHERE {' AND '.join(where)} GROUP BY {columns} ORDER BY {columns}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out = []
    for row in rows:
        keys = dict(zip(group, row[: len(group)], strict=True))
        if "month" in keys and isinstance(keys["month"], str):
            keys["month"] = dt.date.fromisoformat(keys["month"])
        keys.update({f"sum_{m}": v for m, v in zip(MEASURES, row[len(group) :], strict=True)})
        out.append(keys)
    return out


def _zero() -> dict[str, float]:
    return dict.fromkeys(MEASURES, 0)


def _plain(row: dict) -> dict[str, float]:
    return {m: row[f"sum_{m}"] or 0 for m in MEASURES}


def _add(total: dict[str, float], row: dict[str, float]) -> None:
    for m in MEASURES:
        total[m] += row[m]


@dataclass(frozen=True)
class Stat:
    """A distribution read from histogram buckets: median and 90th percentile as bucket labels, plus counts."""

    count: int
    median: str
    p90: str
    mean: float | None


def _quantile_bucket(counts: list[int], q: float) -> int | None:
    total = sum(counts)
    if not total:
        return None
    running = 0
    for index, n in enumerate(counts):
        running += n
        if running >= q * total:
            return index
    return len(counts) - 1


def _edge_label(edges: tuple[int, ...], index: int | None, unit: str) -> str:
    if index is None:
        return "—"
    if index == 0:
        return f"under {edges[0]} {unit}"
    if index >= len(edges):
        return f"{edges[-1]}+ {unit}"
    return f"{edges[index - 1]}–{edges[index]} {unit}"


def bucket_label(kind: str, index: int) -> str:
    if kind == "contact":
        return _edge_label(CONTACT_HOUR_EDGES, index, "hours")
    if kind == "appointment":
        return _edge_label(APPOINTMENT_DAY_EDGES, index, "days")
    return f"{index}+ business days" if index >= TURNAROUND_CAP else f"{index} business days"


@dataclass
class Dashboard:
    filters: Filters
    totals: dict[str, float]
    last_year: dict[str, float]
    trailing_average: float  # received per period of this length, over the 12 months before it
    series: list[tuple[dt.date, dict[str, float]]]  # the trend chart's months, oldest first
    by_kind: list[tuple[str, dict[str, float]]]
    payers: list[tuple[str, dict[str, float]]]
    alerts: list[SourceAlert]
    report_target: int
    contact: Stat = field(init=False)
    appointment: Stat = field(init=False)
    turnaround: Stat = field(init=False)
    within_target: int = field(init=False)

    def __post_init__(self) -> None:
        t = self.totals
        contact = [int(t[f"c{i}"]) for i in range(len(CONTACT_HOUR_EDGES) + 1)]
        appointment = [int(t[f"a{i}"]) for i in range(len(APPOINTMENT_DAY_EDGES) + 1)]
        turnaround = [int(t[f"t{i}"]) for i in range(TURNAROUND_CAP + 1)]
        self.contact = Stat(
            sum(contact),
            _edge_label(CONTACT_HOUR_EDGES, _quantile_bucket(contact, 0.5), "hours"),
            _edge_label(CONTACT_HOUR_EDGES, _quantile_bucket(contact, 0.9), "hours"),
            round(t["contact_hours_sum"] / t["contacted"], 1) if t["contacted"] else None,
        )
        self.appointment = Stat(
            sum(appointment),
            _edge_label(APPOINTMENT_DAY_EDGES, _quantile_bucket(appointment, 0.5), "days"),
            _edge_label(APPOINTMENT_DAY_EDGES, _quantile_bucket(appointment, 0.9), "days"),
            round(t["appointment_days_sum"] / t["scheduled"], 1) if t["scheduled"] else None,
        )
        median, p90 = _quantile_bucket(turnaround, 0.5), _quantile_bucket(turnaround, 0.9)
        self.turnaround = Stat(
            sum(turnaround),
            "—" if median is None else bucket_label("turnaround", median),
            "—" if p90 is None else bucket_label("turnaround", p90),
            None,
        )
        self.within_target = sum(turnaround[: min(self.report_target, TURNAROUND_CAP - 1) + 1])

    @property
    def turnaround_buckets(self) -> list[tuple[int, int]]:
        return [(i, int(self.totals[f"t{i}"])) for i in range(TURNAROUND_CAP + 1)]

    @property
    def lost(self) -> list[tuple[str, str, int]]:
        return [(reason, LOST_LABELS[reason], int(self.totals[f"lost_{reason}"])) for reason in LOST_REASONS]

    @staticmethod
    def share(part: float, whole: float) -> float | None:
        return round(100 * part / whole, 1) if whole else None


@caught_up
def dashboard(filters: Filters, *, report_target: int, trend_months: int = 24) -> Dashboard:
    start, end = filters.start, filters.end
    length = filters.months
    trend_first = min(add_months(end, -(trend_months - 1)), start)
    first = min(trend_first, add_months(start, -12))
    by_month = {row["month"]: _plain(row) for row in _cube(filters, first, end, ("month",))}
    totals, last_year, trailing = _zero(), _zero(), 0.0
    for month, row in by_month.items():
        if start <= month <= end:
            _add(totals, row)
        if add_months(start, -12) <= month <= add_months(end, -12):
            _add(last_year, row)
        if add_months(start, -12) <= month < start:
            trailing += row["received"]
    series, month = [], trend_first
    while month <= end:
        series.append((month, by_month.get(month, _zero())))
        month = add_months(month, 1)
    by_kind = [(row["source_kind"], _plain(row)) for row in _cube(filters, start, end, ("source_kind",))]
    by_kind.sort(key=lambda item: -item[1]["received"])
    payers = [(row["payer"], _plain(row)) for row in _cube(filters, start, end, ("payer",))]
    payers.sort(key=lambda item: -item[1]["received"])
    return Dashboard(
        filters=filters,
        totals=totals,
        last_year=last_year,
        trailing_average=round(trailing / 12 * length, 1),
        series=series,
        by_kind=by_kind,
        payers=payers,
        alerts=open_alerts(filters),
        report_target=report_target,
    )


@caught_up
def referrer_specialties() -> list[str]:
    """The referrer specialties referrals were counted under, in order: the filter's choices. One probe of the
    specialty cuboid's key index per specialty (a loose index scan), where a DISTINCT over the directory reads
    every provider (40 ms at 25,000 providers on PostgreSQL, on every dashboard page)."""
    q = connection.ops.quote_name
    table = q(ReferralRollup._meta.db_table)
    # Key order is (cuboid, location, clinician, specialty, ...): with the first three fixed, specialties are a range.
    narrow = f"r.{q('cuboid')} = %s AND r.{q('location_id')} = %s AND r.{q('clinician_id')} = %s"
    step = f"SELECT MIN(r.{q('specialty')}) FROM {table} r WHERE {narrow} AND r.{q('specialty')} > "  # noqa: S608
    sql = (
        f"WITH RECURSIVE s(v) AS (SELECT ({step} %s) UNION ALL SELECT ({step} s.v) FROM s WHERE s.v IS NOT NULL) "  # noqa: S608
        "SELECT v FROM s WHERE v IS NOT NULL AND v <> %s"
    )
    key = [cuboid_for(["specialty"]), ALL_ID, ALL_ID]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*key, "", *key, ALL_TEXT])
        return [row[0] for row in cursor.fetchall()]


# Sources ---------------------------------------------------------------------------------------------------------


@dataclass
class SourceLists:
    """Top, new and growing sources: a per-source GROUP BY, so the dashboard loads them after the page."""

    top_providers: list[dict]
    top_practices: list[dict]
    new_sources: list[dict]
    growing_sources: list[dict]


@caught_up
def source_lists(filters: Filters) -> SourceLists:
    providers = provider_lists(filters)
    return SourceLists(
        top_providers=providers["top"],
        top_practices=top_sources(filters, SourceKind.PRACTICE),
        new_sources=providers["new"],
        growing_sources=providers["growing"],
    )


_MEMBER_COLUMN = {SourceKind.PROVIDER: "provider_id", SourceKind.PRACTICE: "practice_id"}


@dataclass(frozen=True)
class _SourceRows:
    """Per-source rows covering a window of months, the column naming the source, and how to count a period of
    the window per source: SourceRollup when it keeps the filters (any of territory, liaison and specialty, and at
    most one of urgency, location, clinician and payer), else the member rows, narrowed by every filter (an index
    led by location, clinician or payer reads only that value's rows of the window)."""

    rows: QuerySet
    column: str
    running: bool = False  # SourceRollup's running totals

    def count(self, first: dt.date, last: dt.date, *, whole: bool = False):
        """An aggregate: the referrals of months first..last (within the window; all of it if `whole`)."""
        if not self.running:
            # The source column counted, not the member's key: the key is not in the indexes led by location,
            # clinician or payer (SQLite's table keeps its own rowid), so counting it read every member row of
            # the window from the table; the source column is in those indexes, which then answer alone.
            return Count(self.column, filter=None if whole else Q(month__gte=first, month__lte=last))
        years = []
        for year in range(first.year, last.year + 1):
            since = first.month if year == first.year else 1
            to = last.month if year == last.year else 12
            months = F(running_column(to)) - F(running_column(since - 1)) if since > 1 else F(running_column(to))
            years.append(When(year=year, then=months))
        return Coalesce(Sum(Case(*years, default=Value(0), output_field=IntegerField())), 0)


def _source_rows(filters: Filters, kind: str, first: dt.date, last: dt.date) -> _SourceRows:
    """The rows to count `kind`'s sources from, over the months first..last (see _SourceRows)."""
    dims = filters.dimensions()
    # SourceRollup keeps territory, liaison and specialty (the source's own) and one of SOURCE_SINGLE_FILTERS
    if sum(d in SOURCE_SINGLE_FILTERS for d in dims) <= 1:
        for d in SOURCE_SINGLE_FILTERS:
            dims.setdefault(d, ALL_TEXT if d in TEXT_DIMENSIONS else ALL_ID)
        rows = SourceRollup.objects.filter(kind=kind, year__gte=first.year, year__lte=last.year, **dims)
        return _SourceRows(rows, "source_id", running=True)
    column = _MEMBER_COLUMN[kind]
    rows = RollupMember.objects.filter(month__gte=first, month__lte=last, **dims).exclude(**{column: 0})
    return _SourceRows(rows, column)


def _names(kind: str, ids: list[int]) -> dict[int, str]:
    from refloop.directory.models import ReferringPractice, ReferringProvider

    model = ReferringProvider if kind == SourceKind.PROVIDER else ReferringPractice
    return {pk: str(entry) for pk, entry in model._base_manager.in_bulk(ids).items()}


@caught_up
def top_sources(filters: Filters, kind: str, limit: int = TOP) -> list[dict]:
    if kind == SourceKind.PROVIDER:
        return provider_lists(filters, limit)["top"]
    source = _source_rows(filters, kind, filters.start, filters.end)
    total = source.count(filters.start, filters.end, whole=True)
    column = source.column
    ranked = list(source.rows.values(column).annotate(total=total).order_by("-total", column)[:limit])
    names = _names(kind, [r[column] for r in ranked])
    return [{"id": r[column], "name": names.get(r[column], "?"), "received": r["total"]} for r in ranked]


@caught_up
def provider_lists(filters: Filters, limit: int = TOP) -> dict[str, list[dict]]:
    """The top, new and growing referring providers, from one pass over the period and the one just before.

    - top: most referrals in the period;
    - new: their first referral ever came in this period (and, under filters, one of the period's referrals
      matches them);
    - growing: at least 3 referrals, and half as many again as in the period just before.
    Each per-source sum is computed once for the three lists (one statement), not once per list."""
    previous = add_months(filters.start, -filters.months)
    rows = _source_rows(filters, SourceKind.PROVIDER, previous, filters.end)
    column = rows.column
    grouped = (
        rows.rows.values(column)
        .annotate(
            total=rows.count(filters.start, filters.end),
            before=rows.count(previous, add_months(filters.start, -1)),
        )
        .order_by()
    )
    sql, params = grouped.query.sql_with_params()
    q = connection.ops.quote_name
    source, total, before = f"s.{q(column)}", f"s.{q('total')}", f"s.{q('before')}"
    # The earlier-referral probe runs only for the sources with no referral in the period just before.
    first_referral = (
        f"NOT EXISTS (SELECT 1 FROM {q(RollupMember._meta.db_table)} e "  # noqa: S608 - names from the models
        f"WHERE e.{q('provider_id')} = {source} AND e.{q('month')} < %s)"
    )
    lists = {
        "top": (f"{total} > 0", f"{total} DESC"),
        "new": (f"{total} > 0 AND {before} = 0", f"{total} DESC"),
        "growing": (f"{total} >= 3 AND {before} > 0 AND {total} >= {before} * 1.5", f"{before} - {total}"),
    }
    parts = [
        f"SELECT * FROM (SELECT '{name}', {source}, {total}, {before} FROM s "  # noqa: S608 - names and fixed words
        f"WHERE {where} ORDER BY {order}, {source} LIMIT {int(limit)}) {q('list_' + name)}"
        for name, (where, order) in lists.items()
        if name != "new"
    ]
    # New: the candidates in rank order, fenced (OFFSET 0) so the probe runs on them one by one and stops at the
    # limit: some 60 probes, not one per source without a referral just before (4,000 at design scale, 70 ms).
    fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
    where, order = lists["new"]
    parts.insert(
        1,
        f"SELECT * FROM (SELECT 'new', {source}, {total}, {before} FROM (SELECT * FROM s "  # noqa: S608 - as above
        f"WHERE {where} ORDER BY {order}, {source} {fence}) s WHERE {first_referral} LIMIT {int(limit)}) "
        f"{q('list_new')}",
    )
    with connection.cursor() as cursor:
        cursor.execute(f"WITH s AS ({sql}) {' UNION ALL '.join(parts)}", [*params, filters.start])
        ranked = cursor.fetchall()
    names = _names(SourceKind.PROVIDER, [row[1] for row in ranked])
    out: dict[str, list[dict]] = {name: [] for name in lists}
    for name, pk, received, earlier in ranked:
        entry = {"id": pk, "name": names.get(pk, "?"), "received": received}
        if name == "growing":
            entry["before"] = earlier
        out[name].append(entry)
    out["new"].sort(key=lambda entry: (-entry["received"], entry["id"]))  # ranked by the fence, not an ORDER BY
    return out


@caught_up
def new_sources(filters: Filters, limit: int = TOP) -> list[dict]:
    """Providers new to the practice (see provider_lists)."""
    return provider_lists(filters, limit)["new"]


@caught_up
def growing_sources(filters: Filters, limit: int = TOP) -> list[dict]:
    """Providers sending at least 3 referrals and half as many again as in the period just before."""
    return provider_lists(filters, limit)["growing"]


def open_alerts(filters: Filters) -> list[SourceAlert]:
    """Open early-warning alerts for the sources the filters cover (territory, liaison, referrer specialty)."""
    alerts = SourceAlert.objects.filter(resolved_at__isnull=True).select_related("provider", "practice")
    values = filters.values
    for name, field_name in (("territory", "territory_id"), ("liaison", "liaison_id")):
        if name in values:
            alerts = alerts.filter(
                Q(provider__isnull=False, **{f"provider__{field_name}": values[name]})
                | Q(practice__isnull=False, **{f"practice__{field_name}": values[name]})
            )
    if "specialty" in values:
        alerts = alerts.filter(provider__specialty=values["specialty"])
    order = {AlertKind.SLIPPING: 0, AlertKind.DORMANT: 1, AlertKind.RISING: 2}
    return sorted(alerts[:50], key=lambda a: (order.get(a.kind, 9), -a.confidence))


# Drill-down ------------------------------------------------------------------------------------------------------

MEASURE_FILTERS: dict[str, Q] = {
    "received": Q(),
    "scheduled": Q(scheduled=True),
    "seen": Q(seen=True),
    "report_sent": Q(report_sent=True),
    "closed_loop": Q(closed_loop=True),
    "declined": Q(declined=True),
    "open": Q(open=True),
    "contacted": Q(contact_hours__isnull=False),
    "lost": ~Q(lost_reason=""),
    **{f"lost_{reason}": Q(lost_reason=reason) for reason in LOST_REASONS},
}
MEASURE_LABELS = {
    "received": "received",
    "scheduled": "scheduled",
    "seen": "seen",
    "report_sent": "with the report sent",
    "closed_loop": "with the loop closed",
    "declined": "declined",
    "open": "still open",
    "contacted": "contacted",
    "lost": "lost",
    **{f"lost_{reason}": f"lost: {label.lower()}" for reason, label in LOST_LABELS.items()},
    "within_target": "with the report within target",
}


class DrilldownError(ValueError):
    """A drill-down parameter that does not name a figure of the dashboard."""


@dataclass(frozen=True)
class Drilldown:
    """The member rows behind one figure, words describing it, and how many rows that is when the rollups hold
    the figure (None when only counting the rows can tell, e.g. one provider's referrals: an index range)."""

    rows: QuerySet
    words: list[str]
    count: int | None


# A bucket implies these measures: a turnaround needs the patient seen and the report sent, a contact bucket a
# first contact, an appointment bucket an appointment; so "seen in turnaround bucket 3" is the rollups' t3.
_BUCKETS = {
    "turnaround": ("t", TURNAROUND_CAP + 1, {"received", "seen", "report_sent"}),
    "contact_bucket": ("c", len(CONTACT_HOUR_EDGES) + 1, {"received", "contacted"}),
    "appointment_bucket": ("a", len(APPOINTMENT_DAY_EDGES) + 1, {"received", "scheduled"}),
}


def _figure_measures(measure: str, buckets: dict[str, int], report_target: int) -> list[str] | None:
    """The ReferralRollup columns whose sum counts the drill-down's rows, or None when no sum does."""
    if not buckets:
        if measure == "lost":
            return [f"lost_{reason}" for reason in LOST_REASONS]
        if measure == "within_target":  # turnaround_days <= target, the days being capped at TURNAROUND_CAP
            return [f"t{i}" for i in range(min(report_target, TURNAROUND_CAP) + 1)]
        return [measure]
    if len(buckets) > 1:
        return None
    [(name, value)] = buckets.items()
    prefix, size, implied = _BUCKETS[name]
    if measure not in implied:
        return None
    return [f"{prefix}{value}"] if 0 <= value < size else []


def _figure_count(filters: Filters, first: dt.date, last: dt.date, measures: list[str], where: dict) -> int:
    """The figure from the rollups: the few cuboid rows of the period, not a COUNT over its member rows (which on
    PostgreSQL reads every member row of the period from the heap when a measure or filter narrows them)."""
    if not measures:
        return 0
    total = 0
    for row in _cube(filters, first, last, ("source_kind", "payer")):
        if all(row[column] == value for column, value in where.items()):
            total += sum(int(row[f"sum_{m}"] or 0) for m in measures)
    return total


@caught_up
def drilldown_members(filters: Filters, params, *, report_target: int) -> Drilldown:
    """The member rows behind one figure: the filters, plus what the figure counts; words describing it; and
    their number, read from the rollups when they hold it (the paginator then runs no COUNT)."""
    first, last = filters.start, filters.end
    words: list[str] = []
    month = params.get("month")
    if month:
        try:
            first = last = dt.datetime.strptime(month, "%Y-%m").date()
        except ValueError:
            raise DrilldownError(f"month: “{month}” is not a month (YYYY-MM).") from None
    rows = RollupMember.objects.filter(month__gte=first, month__lte=last, **filters.dimensions())
    measure = params.get("measure") or "received"
    if measure == "within_target":
        rows = rows.filter(turnaround_days__lte=report_target)
    elif measure in MEASURE_FILTERS:
        rows = rows.filter(MEASURE_FILTERS[measure])
    else:
        raise DrilldownError(f"measure: “{measure}” is not a figure of the dashboard.")
    words.append(MEASURE_LABELS[measure])
    where: dict[str, str] = {}  # source_kind and payer: every cuboid keeps them
    for name, column in (("kind", "source_kind"), ("payer_is", "payer")):
        if name in params:
            rows = rows.filter(**{column: params[name]})
            where[column] = params[name]
            words.append(f"{'source' if name == 'kind' else 'payer'} {params[name] or 'not recorded'}")
    buckets: dict[str, int] = {}
    counted = True
    for name, column in (
        ("provider", "provider_id"),
        ("practice", "practice_id"),
        ("turnaround", "turnaround_days"),
        ("contact_bucket", "contact_bucket"),
        ("appointment_bucket", "appointment_bucket"),
    ):
        if params.get(name):
            try:
                value = int(params[name])
            except ValueError:
                raise DrilldownError(f"{name}: “{params[name]}” is not a number.") from None
            rows = rows.filter(**{column: value})
            if name in _BUCKETS:
                buckets[name] = value
                words.append(bucket_label(name.removesuffix("_bucket"), value))
            else:  # a source: the rollups keep no per-source cuboid, and its index range is short to count
                counted = False
    measures = _figure_measures(measure, buckets, report_target) if counted else None
    count = None if measures is None else _figure_count(filters, first, last, measures, where)
    return Drilldown(rows=rows, words=words, count=count)


def month_span(filters: Filters) -> str:
    if filters.start == filters.end:
        return f"{filters.start:%B %Y}"
    return f"{filters.start:%b %Y} – {filters.end:%b %Y} ({months_between(filters.start, filters.end)} months)"
