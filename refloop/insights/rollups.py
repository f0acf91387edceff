"""Rollups: the dashboard's counts, kept current as referrals change instead of recounted on every page view.

Three tables (refloop/insights/models.py):

- RollupMember, one row per referral: the dimensions it was counted under (month received, source kind, payer,
  location, clinician, referrer specialty, territory, liaison, urgency, provider, practice) and its outcome
  (scheduled, seen, report sent, loop closed, declined, lost and why, time buckets). It is the referral's
  "last contribution": a change subtracts the old row from the sums and adds the new one, in the same
  transaction as the change. Drill-down lists filter these rows, so a list is exactly what its number counted.
- ReferralRollup, the sums per month in a few cuboids: every cuboid keeps month x source kind x payer, plus one
  filter dimension (or all of them). No filter reads ~54 rows a month; one filter a few hundred; several filters
  read the full cuboid, narrowed by those filters. Distributions (time to contact, to appointment, report
  turnaround in business days) are histogram columns, so medians, 90th percentiles and "within target" come
  from sums too, for whatever target the practice sets later.
- SourceRollup, the sums per source (provider, practice, other source), calendar year and the source-level
  filters (territory, liaison, specialty), as running totals by month, in total and by one of urgency, location,
  clinician or payer: top sources, new sources, growing sources.

Grain is the month: periods on the dashboard are whole months, which is how a manager compares them.

The sums are always built from RollupMember rows by SQL (`_apply`), one code path for a single change, an import
and a rebuild; the test recount builds them independently from the referrals. Referral saves and deletes, and
edits to what a referral is counted under (the provider's territory, liaison or specialty, the patient's payer,
an other source's kind, a merge moving referrals) resync the referrals concerned through model signals, which
run inside the writer's transaction. Intakes and workflow steps (`rollups_deferred`) instead queue their referral
(RollupPending) in their transaction, and `rollup_catch_up` folds the queue in: every reader of the sums calls it
first (insights/selectors.py), and the worker every CATCH_UP_SECONDS. Bulk writers that bypass model saves (the
referral importer, the demo's bulk path) call `rollup_sync_missing()` or `rollup_rebuild()`.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import functools
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models.signals import post_save, pre_delete
from django.utils import timezone

from refloop.insights.models import (
    ALL_ID,
    ALL_TEXT,
    APPOINTMENT_DAY_EDGES,
    CONTACT_HOUR_EDGES,
    CUBE_DIMENSIONS,
    CUBOIDS,
    FILTER_DIMENSIONS,
    FULL_CUBOID,
    LOST_REASONS,
    MEASURES,
    RUNNING_COLUMNS,
    SOURCE_KEY,
    SOURCE_SINGLE_FILTERS,
    TURNAROUND_CAP,
    ReferralRollup,
    RollupMember,
    RollupPending,
    SourceKind,
    SourceRollup,
)
from refloop.lib.sqlite_pragma import sqlite_pragma
from refloop.referrals.workflow import OPEN_STATES, State

TEXT_DIMENSIONS = frozenset({"source_kind", "payer", "specialty", "urgency"})
# PostgreSQL: the shared sums are vacuumed after this many syncs that wrote them, per process (see _vacuum_soon).
VACUUM_EVERY = 20

log = logging.getLogger(__name__)

MEMBER_FIELDS = [f.attname for f in RollupMember._meta.concrete_fields if not f.primary_key]
_FACT_COLUMNS = (
    "id",
    "received_at",
    "state",
    "first_contact_at",
    "appointment_at",
    "seen_at",
    "report_sent_at",
    "lost_reason",
    "location_id",
    "clinician_id",
    "urgency",
    "referring_provider_id",
    "referring_practice_id",
    "other_source_id",
    "other_source__kind",
    "referring_provider__specialty",
    "referring_provider__territory_id",
    "referring_provider__liaison_id",
    "patient__payer",
)


def cuboid_for(dimensions: Iterable[str]) -> int:
    """The smallest cuboid that keeps every dimension named (a filter or a breakdown)."""
    wanted = {d for d in dimensions if d in FILTER_DIMENSIONS}
    for number, kept in CUBOIDS.items():
        if wanted <= set(kept):
            return number
    return FULL_CUBOID


def month_of(moment: dt.datetime) -> dt.date:
    return timezone.localdate(moment).replace(day=1)


# What one referral contributes -----------------------------------------------------------------------------------


class _Calendar:
    """The practice's business calendar, read once and only if a turnaround needs it."""

    def __init__(self) -> None:
        self._calendar = None

    def get(self):
        if self._calendar is None:
            from refloop.practice.models import ServiceLevels

            self._calendar = ServiceLevels.current().calendar()
        return self._calendar


def members_for(referrals, calendar: _Calendar | None = None) -> Iterator[RollupMember]:
    """Unsaved RollupMember rows for a Referral queryset, computed from the records as they are now."""
    calendar = calendar or _Calendar()
    for row in referrals.values_list(*_FACT_COLUMNS).iterator(chunk_size=5000):
        yield _member(row, calendar)


def _member(row: tuple, calendar: _Calendar) -> RollupMember:
    (pk, received_at, state, first_contact_at, appointment_at, seen_at, report_sent_at, lost_reason, location_id,
     clinician_id, urgency, provider_id, practice_id, other_source_id, other_kind, specialty, territory_id,
     liaison_id, payer) = row  # fmt: skip
    received_day = timezone.localdate(received_at)
    contact_hours = contact_bucket = appointment_days = appointment_bucket = turnaround = None
    if first_contact_at is not None:
        contact_hours = max(0.0, round((first_contact_at - received_at).total_seconds() / 3600, 2))
        contact_bucket = bisect.bisect_right(CONTACT_HOUR_EDGES, contact_hours)
    if appointment_at is not None:
        appointment_days = max(0, (timezone.localdate(appointment_at) - received_day).days)
        appointment_bucket = bisect.bisect_right(APPOINTMENT_DAY_EDGES, appointment_days)
    if seen_at is not None and report_sent_at is not None:
        days = calendar.get().business_days_between(timezone.localdate(seen_at), timezone.localdate(report_sent_at))
        turnaround = min(days, TURNAROUND_CAP)
    is_provider = provider_id is not None
    return RollupMember(
        referral_id=pk,
        month=received_day.replace(day=1),
        source_kind=SourceKind.PROVIDER if is_provider else (other_kind or "other"),
        provider_id=provider_id or 0,
        practice_id=practice_id or 0,
        other_source_id=other_source_id or 0,
        payer=(payer or "")[:120],
        location_id=location_id or 0,
        clinician_id=clinician_id or 0,
        specialty=(specialty or "")[:150] if is_provider else "",
        territory_id=(territory_id or 0) if is_provider else 0,
        liaison_id=(liaison_id or 0) if is_provider else 0,
        urgency=urgency,
        scheduled=appointment_at is not None,
        seen=seen_at is not None,
        report_sent=report_sent_at is not None,
        closed_loop=state == State.CLOSED and seen_at is not None,
        declined=state == State.DECLINED,
        open=state in OPEN_STATES,
        lost_reason=lost_reason if state == State.LOST else "",
        contact_hours=contact_hours,
        contact_bucket=contact_bucket,
        appointment_days=appointment_days,
        appointment_bucket=appointment_bucket,
        turnaround_days=turnaround,
    )


def member_values(member: RollupMember | None) -> tuple | None:
    return None if member is None else tuple(getattr(member, name) for name in MEMBER_FIELDS)


# From member rows to sums, in SQL --------------------------------------------------------------------------------


# SQL below is built from model column names (quoted) and fixed labels; values always travel as parameters.


def _measure_sql(sign: int) -> list[str]:
    """SQL expressions over member rows (`x`) giving each ReferralRollup measure, in MEASURES order."""
    s = "" if sign > 0 else "-"

    def count(condition: str) -> str:
        return f"{s}SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    exprs = {
        "received": f"{s}COUNT(*)",
        "scheduled": count("x.scheduled"),
        "seen": count("x.seen"),
        "report_sent": count("x.report_sent"),
        "closed_loop": count("x.closed_loop"),
        "declined": count("x.declined"),
        "open": count("x.open"),
        "contacted": count("x.contact_hours IS NOT NULL"),
        "contact_hours_sum": f"{s}COALESCE(SUM(x.contact_hours), 0)",
        "appointment_days_sum": f"{s}COALESCE(SUM(x.appointment_days), 0)",
    }
    for reason in LOST_REASONS:
        exprs[f"lost_{reason}"] = count(f"x.lost_reason = '{reason}'")
    for i in range(len(CONTACT_HOUR_EDGES) + 1):
        exprs[f"c{i}"] = count(f"x.contact_bucket = {i}")
    for i in range(len(APPOINTMENT_DAY_EDGES) + 1):
        exprs[f"a{i}"] = count(f"x.appointment_bucket = {i}")
    for i in range(TURNAROUND_CAP + 1):
        exprs[f"t{i}"] = count(f"x.turnaround_days = {i}")
    return [exprs[name] for name in MEASURES]


_MEMBER_SOURCE_COLUMNS = (
    "scheduled", "seen", "report_sent", "closed_loop", "declined", "open", "lost_reason", "contact_hours",
    "contact_bucket", "appointment_days", "appointment_bucket", "turnaround_days",
)  # fmt: skip


@functools.cache
def _q(name: str) -> str:
    # Cached: _apply quotes some 550 names per referral saved, each through the connection proxy (a tenth of an
    # intake's CPU, issue 8). SQLite and PostgreSQL, the two databases refloop runs on, quote names alike.
    return connection.ops.quote_name(name)


def _upsert_sql(table: str, key: Sequence[str], measures: Sequence[str], select: str) -> str:
    columns = ", ".join(_q(c) for c in [*key, *measures])
    updates = ", ".join(f"{_q(m)} = {table}.{_q(m)} + excluded.{_q(m)}" for m in measures)
    conflict = ", ".join(_q(c) for c in key)
    return f"INSERT INTO {table} ({columns}) {select} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"


def _apply(
    where: str, params: Sequence, sign: int, cuboids: Sequence[int] = tuple(CUBOIDS), with_sources: bool = True
) -> None:
    """Add (sign 1) or subtract (sign -1) the member rows matching `where` to the cuboids' and sources' rows."""
    cube_sql, cube_constants, source_sql, source_constants = _apply_sql(where, sign, tuple(cuboids), with_sources)
    with connection.cursor() as cursor:
        cursor.execute(cube_sql, [value for constants in cube_constants for value in (*constants, *params)])
        if with_sources:
            cursor.execute(source_sql, [value for constants in source_constants for value in (*constants, *params)])


@functools.lru_cache(maxsize=64)
def _apply_sql(
    where: str, sign: int, cuboids: tuple[int, ...], with_sources: bool
) -> tuple[str, list[tuple], str, list[tuple]]:
    """The two upserts of `_apply` and, per UNION branch, the constants that come before the `where` parameters.

    Cached: the text is some 40 kB built from ~550 names, and an intake sends the same one each time (issue 8).
    """
    member = _q(RollupMember._meta.db_table)
    cube = _q(ReferralRollup._meta.db_table)
    passthrough = ", ".join(f"m.{_q(c)}" for c in _MEMBER_SOURCE_COLUMNS)
    branches = []
    cube_constants: list[tuple] = []
    for number in cuboids:
        kept = CUBOIDS[number]
        dims, constants = [], []
        for d in CUBE_DIMENSIONS:
            if d in ("source_kind", "payer") or d in kept:
                dims.append(f"m.{_q(d)} AS {_q(d)}")
            else:
                dims.append(f"%s AS {_q(d)}")
                constants.append(ALL_TEXT if d in TEXT_DIMENSIONS else ALL_ID)
        branches.append(
            f"SELECT {number} AS cuboid, m.month AS month, {', '.join(dims)}, {passthrough} "  # noqa: S608
            f"FROM {member} m WHERE {where}"
        )
        cube_constants.append(tuple(constants))
    key = ["cuboid", "month", *CUBE_DIMENSIONS]
    group = ", ".join(f"x.{_q(c)}" for c in key)
    # Sorted: concurrent writers then lock the rows they share in one order and cannot deadlock over them.
    select = (
        f"SELECT {group}, {', '.join(_measure_sql(sign))} FROM ({' UNION ALL '.join(branches)}) x "  # noqa: S608
        f"WHERE 1 = 1 GROUP BY {group} ORDER BY {group}"
    )
    source_sql, source_constants = sources_upsert_sql(where, sign, "m")
    return _upsert_sql(cube, key, MEASURES, select), cube_constants, source_sql, source_constants


SOURCE_COLUMNS = (
    (SourceKind.PROVIDER, "provider_id"),
    (SourceKind.PRACTICE, "practice_id"),
    (SourceKind.OTHER, "other_source_id"),
)


def _year_and_month_sql(column: str) -> tuple[str, str]:
    """SQL for the year and the month number (1-12) of a date column, on the connection's database."""
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(YEAR FROM {column}) AS integer)", f"CAST(EXTRACT(MONTH FROM {column}) AS integer)"
    # SQLite keeps a date as YYYY-MM-DD text.
    return f"CAST(SUBSTR({column}, 1, 4) AS integer)", f"CAST(SUBSTR({column}, 6, 2) AS integer)"


def sources_upsert_sql(where: str, sign: int, alias: str) -> tuple[str, list[tuple]]:
    """The upsert adding (sign 1) or subtracting (-1) the member rows matching `where` to the per-source sums, and
    per UNION branch the constants that come before the `where` parameters. `where` names the member table as
    `alias`. One builder for the per-referral sync and the import's set-based fold (rollup_bulk).

    A referral received in month m counts in its year's rows (see SourceRollup: under every urgency, location,
    clinician and payer, and under each of its own), in `received` and in the running totals from month m to
    December."""
    member = _q(RollupMember._meta.db_table)
    s = "" if sign > 0 else "-"
    year, month = _year_and_month_sql(f"{alias}.month")
    everything = {d: ALL_TEXT if d in TEXT_DIMENSIONS else ALL_ID for d in SOURCE_SINGLE_FILTERS}
    variants = [everything] + [{**everything, d: None} for d in SOURCE_SINGLE_FILTERS]  # None: the member's own
    branches, constants = [], []
    for kind, column in SOURCE_COLUMNS:
        for variant in variants:
            singles = ", ".join(
                f"{f'{alias}.{_q(d)}' if value is None else '%s'} AS {_q(d)}" for d, value in variant.items()
            )
            branches.append(
                f"SELECT %s AS kind, {alias}.{_q(column)} AS source_id, {year} AS year, "  # noqa: S608
                f"{alias}.territory_id AS territory_id, {alias}.liaison_id AS liaison_id, "
                f"{alias}.specialty AS specialty, {singles}, {month} AS month_number "
                f"FROM {member} {alias} WHERE {alias}.{_q(column)} <> 0 AND ({where})"
            )
            constants.append((kind.value, *(v for v in variant.values() if v is not None)))
    group = ", ".join(f"u.{_q(c)}" for c in SOURCE_KEY)
    running = ", ".join(f"{s}SUM(CASE WHEN u.month_number <= {m} THEN 1 ELSE 0 END)" for m in range(1, 13))
    select = (
        f"SELECT {group}, {s}COUNT(*), {running} FROM ({' UNION ALL '.join(branches)}) u "  # noqa: S608
        f"WHERE 1 = 1 GROUP BY {group} ORDER BY {group}"  # sorted: writers lock shared rows in one order
    )
    sql = _upsert_sql(_q(SourceRollup._meta.db_table), SOURCE_KEY, ["received", *RUNNING_COLUMNS], select)
    return sql, constants


def _in(column: str, ids: Sequence[int]) -> tuple[str, list]:
    return f"m.{_q(column)} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _chunks(items: Sequence[int], size: int = 500) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _prune() -> None:
    """Drop rows that no referral counts any more (received 0 means every other sum is 0 too); a partial index
    on received = 0 makes this cost only the rows it deletes."""
    with connection.cursor() as cursor:
        for model in (ReferralRollup, SourceRollup):
            # A literal 0, not a parameter: SQLite uses a partial index only when the query's terms say so.
            cursor.execute(f"DELETE FROM {_q(model._meta.db_table)} WHERE {_q('received')} = 0")  # noqa: S608


# Keeping them current -------------------------------------------------------------------------------------------

_deferred = threading.local()


def rollup_sync(referral_ids: Iterable[int], *, before_writes: Callable[[], None] | None = None) -> int:
    """Bring the rollups up to date for these referrals (saved, changed or deleted); returns how many changed.

    Each referral's contribution is recomputed from the records; where it differs from what was added before,
    the old one is subtracted and the new one added, inside one transaction (the caller's, when there is one).
    `before_writes` runs once, after the reading and before the first write (also when nothing is to be written):
    `rollups_deferred` uses it to put the audit chain's lock before the shared rows (accounts/audit.py).
    """
    ids = sorted(set(referral_ids))
    pending = getattr(_deferred, "ids", None)
    if pending is not None:
        pending.update(ids)
        return 0
    if not ids and before_writes is None:
        return 0
    changed = 0
    calendar = _Calendar()
    # Every referral intake runs this (issue 8): no savepoint of its own inside the caller's transaction (an error
    # still undoes it with that transaction), and a part of at most 500 rows read at once rather than through a
    # server-side cursor (DECLARE, FETCH, CLOSE: three round trips on PostgreSQL).
    with transaction.atomic(savepoint=False):
        for part in _chunks(ids):
            gone, added = _sync_plan(part, calendar)
            new_only = bool(added) and not gone  # new member rows only: written before the shared rows' lock
            if new_only:
                RollupMember.objects.bulk_create(added, batch_size=500)
            if before_writes is not None:
                before_writes()
                before_writes = None
            changed += _sync_write(gone, added, inserted=new_only)
        if before_writes is not None:
            before_writes()
    return changed


def _sync_plan(part: Sequence[int], calendar: _Calendar) -> tuple[list[int], list[RollupMember]]:
    """Reads only (and locks these referrals' own member rows): the member rows to take out and to put in."""
    from refloop.referrals.models import Referral

    rows = Referral.objects.filter(pk__in=part).values_list(*_FACT_COLUMNS)
    fresh = {m.referral_id: m for m in (_member(row, calendar) for row in rows)}
    old_rows = RollupMember.objects.filter(pk__in=part)
    if connection.features.has_select_for_update:
        old_rows = old_rows.select_for_update()
    old = {m.referral_id: m for m in old_rows}
    moved = [pk for pk in part if member_values(old.get(pk)) != member_values(fresh.get(pk))]
    return [pk for pk in moved if pk in old], [fresh[pk] for pk in moved if pk in fresh]


def _sync_write(gone: list[int], added: list[RollupMember], *, inserted: bool = False) -> int:
    """The writes: member rows out and in (unless `inserted` already), and the sums they change (the rows every
    referral shares)."""
    if gone:
        _apply(*_in("referral_id", gone), sign=-1)
        RollupMember.objects.filter(pk__in=gone).delete()
    if added:
        if not inserted:
            RollupMember.objects.bulk_create(added, batch_size=500)
        _apply(*_in("referral_id", [m.referral_id for m in added]), sign=1)
    if gone:
        _prune()
    if gone or added:
        _vacuum_soon()
    return len(set(gone) | {m.referral_id for m in added})


_syncs = itertools.count(1)


def _vacuum_soon() -> None:
    """Every VACUUM_EVERY syncs of this process, vacuum the sums' tables once the transaction has committed.

    Every referral updates the same few dozen rows, and no update of them can be HOT (`received` is in an index's
    condition), so each leaves a dead row version and index entries behind: with autovacuum off or slow (its
    naptime is a minute, some 6,000 intakes), the upsert walked 60,000 dead versions and cost 18 ms instead of
    under 1 ms, inside the audit chain's lock (issue 8). The tables hold a few hundred live rows: a vacuum takes
    milliseconds. SKIP_LOCKED: if another process is vacuuming them, this one does not wait.
    """
    if connection.vendor != "postgresql" or next(_syncs) % VACUUM_EVERY:
        return
    transaction.on_commit(_vacuum)


def _vacuum() -> None:
    if connection.in_atomic_block:
        # VACUUM cannot run inside a transaction block, and a failed statement would abort the enclosing one: this
        # happens only when commit callbacks run inside an outer transaction (a test's), never after a real commit.
        return
    tables = ", ".join(_q(model._meta.db_table) for model in (ReferralRollup, SourceRollup))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (SKIP_LOCKED) {tables}")
    except DatabaseError as exc:  # the change is committed already; the next vacuum will try again
        log.warning("rollup vacuum failed: %s", type(exc).__name__)


def rollup_sync_missing() -> int:
    """Add the referrals that have no member row yet (written in bulk, bypassing model saves)."""
    from refloop.referrals.models import Referral

    missing = list(
        Referral.objects.exclude(pk__in=RollupMember.objects.values("referral_id")).values_list("pk", flat=True)
    )
    return rollup_sync(missing)


def rollup_sync_stale() -> int:
    """Resync the referrals whose provider's territory, liaison or specialty changed by a path that saves no
    model (the NPPES import's bulk updates): one join over the member rows finds them."""
    from refloop.directory.models import ReferringProvider

    member, provider = _q(RollupMember._meta.db_table), _q(ReferringProvider._meta.db_table)
    sql = (
        f"SELECT m.{_q('referral_id')} FROM {member} m JOIN {provider} p ON p.{_q('id')} = m.{_q('provider_id')} "  # noqa: S608
        f"WHERE m.{_q('territory_id')} <> COALESCE(p.{_q('territory_id')}, 0) "
        f"OR m.{_q('liaison_id')} <> COALESCE(p.{_q('liaison_id')}, 0) "
        f"OR m.{_q('specialty')} <> SUBSTR(p.{_q('specialty')}, 1, 150)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        ids = [row[0] for row in cursor.fetchall()]
    return rollup_sync(ids)


def rollup_rebuild() -> int:
    """Recompute every rollup from the referrals (after a bulk load, or a change of holidays); returns members."""
    from refloop.referrals.models import Referral

    calendar = _Calendar()
    fields = [RollupMember._meta.pk, *(f for f in RollupMember._meta.concrete_fields if not f.primary_key)]
    columns = ", ".join(_q(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    insert = f"INSERT INTO {_q(RollupMember._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608

    def row(member: RollupMember) -> tuple:
        return tuple(f.get_db_prep_save(getattr(member, f.attname), connection) for f in fields)

    with transaction.atomic():
        RollupPending.objects.all().delete()  # every referral is counted afresh below
        ReferralRollup.objects.all().delete()
        SourceRollup.objects.all().delete()
        RollupMember.objects.all().delete()
        total, batch = 0, []
        with connection.cursor() as cursor:
            # Plain executemany: bulk_create spends most of its time preparing model instances, not writing.
            for member in members_for(Referral.objects.order_by(), calendar):
                batch.append(row(member))
                if len(batch) >= 5000:
                    cursor.executemany(insert, batch)
                    total += len(batch)
                    batch = []
            if batch:
                cursor.executemany(insert, batch)
                total += len(batch)
        for number in CUBOIDS:  # one cuboid at a time: the same sums, in bounded temporary space
            _apply("1 = 1", [], sign=1, cuboids=(number,), with_sources=number == 0)
    return total


@contextlib.contextmanager
def rollups_deferred(*, before_writes: Callable[[], None] | None = None) -> Iterator[None]:
    """Collect the referrals changed inside the block and queue them at its end for the next catch-up (intakes and
    workflow steps: issue 8).

    The queue is one insert per referral and touches no shared row, so concurrent intakes no longer wait for each
    other over the sums; `rollup_catch_up` folds the queue in, in one batch, before anything reads the sums.
    `before_writes` (for instance `audit_flush`) runs at the end, after the queue's insert; nested, the outermost
    block queues and runs its own."""
    if getattr(_deferred, "ids", None) is not None:
        yield
        return
    _deferred.ids = set()
    try:
        yield
        ids = _deferred.ids
    finally:
        _deferred.ids = None
    _queue(sorted(ids))
    if before_writes is not None:
        before_writes()


def _queue(ids: Sequence[int]) -> None:
    if not ids:
        return
    table = _q(RollupPending._meta.db_table)
    # The same text for every intake (one referral): psycopg and PostgreSQL keep it prepared.
    sql = f"INSERT INTO {table} ({_q('referral_id')}) VALUES (%s) ON CONFLICT DO NOTHING"  # noqa: S608
    with connection.cursor() as cursor:
        if len(ids) == 1:
            cursor.execute(sql, [ids[0]])
        else:
            cursor.executemany(sql, [[pk] for pk in ids])


# pg_advisory_xact_lock key of the catch-up ("rollups" in ASCII): two readers fold the queue one after the other, so
# the second finds it folded and reads exact sums rather than sums missing what the first is still folding.
_CATCH_UP_LOCK = 0x726F6C6C757073


def rollup_catch_up(*, patience: float | None = None) -> int:
    """Fold the queued referrals (RollupPending) into the sums; returns how many member rows changed.

    Every reader of the sums calls it first, so what a page shows counts every committed change; the worker calls it
    every few seconds (`rollup_catch_up_every`), so a reader seldom finds more than a few seconds of work. An empty
    queue costs one indexed read.

    `patience` (seconds; readers give one): when another writer holds what the fold needs for longer (an import
    holds SQLite's write lock for a whole file), nothing is folded and the reader reads the sums as they are, a
    few seconds behind, rather than wait or fail; the queue keeps everything for the next fold.
    """
    table = _q(RollupPending._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608
        if cursor.fetchone() is None:
            return 0
    try:
        with _bounded_wait(patience), transaction.atomic():
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    if patience is not None:
                        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(patience * 1000)}ms"])
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CATCH_UP_LOCK])
                cursor.execute(f"DELETE FROM {table} RETURNING {_q('referral_id')}")  # noqa: S608
                ids = [row[0] for row in cursor.fetchall()]
            changed = rollup_sync(ids)
            if patience is not None and connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # the caller's transaction, if any, waits as before
                    cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
            return changed
    except OperationalError as exc:
        if patience is None:
            raise
        log.info("rollup catch-up left for later: %s", type(exc).__name__)
        return 0


def _bounded_wait(patience: float | None) -> contextlib.AbstractContextManager:
    """On SQLite, wait at most `patience` for the write lock (inside a transaction it is held already)."""
    if patience is None or connection.in_atomic_block:
        return contextlib.nullcontext()
    return sqlite_pragma("busy_timeout", int(patience * 1000))


CATCH_UP_SECONDS = 5.0  # how often the worker folds the queue in


def rollup_catch_up_every(seconds: float = CATCH_UP_SECONDS, *, stop: threading.Event | None = None) -> None:
    """Fold the queue in every `seconds` until `stop` is set (the worker's thread, `refloop rollups catch-up --every`).
    A failed pass is logged and the next one tries again: the queue keeps what it has not folded."""
    from django.db import close_old_connections

    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            rollup_catch_up()
        except DatabaseError as exc:
            log.warning("rollup catch-up failed: %s", type(exc).__name__)
        finally:
            close_old_connections()
        stop.wait(seconds)


# Signals: every write of what a referral is counted under --------------------------------------------------------


def _referral_saved(sender, instance, raw=False, **kwargs) -> None:
    if not raw:
        rollup_sync([instance.pk])


def _referral_deleting(sender, instance, **kwargs) -> None:
    # The member row is removed now and the sync finds no referral row afterwards: subtract, delete.
    if RollupMember.objects.filter(pk=instance.pk).exists():
        with transaction.atomic():
            _apply(*_in("referral_id", [instance.pk]), sign=-1)
            RollupMember.objects.filter(pk=instance.pk).delete()
            _prune()


def _stale(ids_query) -> list[int]:
    return list(ids_query.values_list("pk", flat=True))


def _provider_saved(sender, instance, raw=False, **kwargs) -> None:
    """A provider's territory, liaison or specialty changed, or a merge moved referrals to or from it."""
    if raw:
        return
    from refloop.referrals.models import Referral

    counted = RollupMember.objects.filter(provider_id=instance.pk)
    stale = _stale(
        counted.exclude(
            territory_id=instance.territory_id or 0,
            liaison_id=instance.liaison_id or 0,
            specialty=(instance.specialty or "")[:150],
        )
    )
    stale += _stale(counted.exclude(referral__referring_provider=instance.pk))
    stale += _stale(Referral.objects.filter(referring_provider=instance.pk).exclude(
        pk__in=counted.values("referral_id")
    ))  # fmt: skip
    rollup_sync(stale)


def _practice_saved(sender, instance, raw=False, **kwargs) -> None:
    """A practice merge (or its reversal) moved referrals to or from this practice."""
    if raw:
        return
    from refloop.referrals.models import Referral

    counted = RollupMember.objects.filter(practice_id=instance.pk)
    stale = _stale(counted.exclude(referral__referring_practice=instance.pk))
    stale += _stale(Referral.objects.filter(referring_practice=instance.pk).exclude(
        pk__in=counted.values("referral_id")
    ))  # fmt: skip
    rollup_sync(stale)


def _other_source_saved(sender, instance, raw=False, **kwargs) -> None:
    if not raw:
        rollup_sync(_stale(RollupMember.objects.filter(other_source_id=instance.pk).exclude(source_kind=instance.kind)))


def _patient_saved(sender, instance, raw=False, created=False, **kwargs) -> None:
    if raw or instance.pk is None or created:  # a new patient has no referral yet (one query less per intake)
        return
    from refloop.referrals.models import Referral

    ids = Referral.objects.filter(patient=instance.pk).values("pk")
    rollup_sync(_stale(RollupMember.objects.filter(pk__in=ids).exclude(payer=(instance.payer or "")[:120])))


def connect() -> None:
    """Called from InsightsConfig.ready()."""
    from refloop.directory.models import OtherSource, ReferringPractice, ReferringProvider
    from refloop.referrals.models import Patient, Referral

    post_save.connect(_referral_saved, sender=Referral, dispatch_uid="insights.rollups.referral")
    pre_delete.connect(_referral_deleting, sender=Referral, dispatch_uid="insights.rollups.referral_delete")
    post_save.connect(_provider_saved, sender=ReferringProvider, dispatch_uid="insights.rollups.provider")
    post_save.connect(_practice_saved, sender=ReferringPractice, dispatch_uid="insights.rollups.practice")
    post_save.connect(_other_source_saved, sender=OtherSource, dispatch_uid="insights.rollups.other_source")
    post_save.connect(_patient_saved, sender=Patient, dispatch_uid="insights.rollups.patient")
