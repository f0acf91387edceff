"""Rollups for referrals written in bulk (the referral importer): set-based, and proportional to the rows written.

`rollups.rollup_sync` brings referrals up to date one model instance at a time and folds each part of 500 into
all 23 cuboids: right for an intake, but a million imported referrals took it over 20 minutes. Here a bulk
writer instead

- builds each referral's member row as a plain tuple while it writes the referral (`ImportMembers.row`, in the
  columns of `MEMBER_COLUMNS`), and inserts it with the referrals, in the same transaction;
- at the end folds exactly its own member rows, given as ranges of the ids it reserved (`fold`): one GROUP BY over
  them into a temporary table of sums at the finest grain (month and every dimension), then each cuboid summed
  from that table, usually a few thousand rows rather than a million, with one INSERT ... SELECT ... GROUP BY ...
  ON CONFLICT per cuboid; the per-source sums likewise, from the member rows (on SQLite grouped once per kind
  of source and spread over their five variants in Python, see `_sources_fold`).

The result is what `rollup_sync` would have written (tests/insights/test_rollups_import.py holds it against a
recount). What a referral contributes comes from `rollups._member` itself: a referral written in bulk carries no
step dates (no contact, appointment, visit or report time), so its outcome depends on its state (and lost reason)
alone and is computed once per state by that function; its dimensions are the values the writer already holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Iterator, Sequence

from django.db import connection
from django.utils import timezone

from refloop.insights.models import (
    ALL_ID,
    ALL_TEXT,
    CUBE_DIMENSIONS,
    CUBOIDS,
    MEASURES,
    RUNNING_COLUMNS,
    SOURCE_KEY,
    SOURCE_SINGLE_FILTERS,
    ReferralRollup,
    RollupMember,
    SourceKind,
    SourceRollup,
)
from refloop.insights.rollups import (
    MEMBER_FIELDS,
    SOURCE_COLUMNS,
    TEXT_DIMENSIONS,
    _Calendar,
    _measure_sql,
    _member,
    _q,
    _upsert_sql,
    _year_and_month_sql,
    member_values,
    sources_upsert_sql,
)
from refloop.lib.sqlite_rows import RowsPerStatement

DIMENSION_COLUMNS = (
    "referral_id", "month", "source_kind", "provider_id", "practice_id", "other_source_id", "payer", "location_id",
    "clinician_id", "specialty", "territory_id", "liaison_id", "urgency",
)  # fmt: skip
OUTCOME_COLUMNS = tuple(name for name in MEMBER_FIELDS if name not in DIMENSION_COLUMNS)
MEMBER_COLUMNS = (*DIMENSION_COLUMNS, *OUTCOME_COLUMNS)
DELTA_TABLE = "refloop_rollup_delta"
MAX_RUNS = 200
SOURCE_WRITE_ROWS = 20_000  # per-source sums held before they are written (bounded memory)
SOURCE_ROWS_PER_UPSERT = 400
FOLD_WORK_MEM = "128MB"  # PostgreSQL's work_mem while folding (hash groupings may use twice that)
_OUTCOME_AT = tuple(MEMBER_FIELDS.index(name) for name in OUTCOME_COLUMNS)
_PROVIDER = SourceKind.PROVIDER.value
# _sources_fold reads the variant columns in this order, the order they close SOURCE_KEY in.
assert (
    SOURCE_KEY[-len(SOURCE_SINGLE_FILTERS) :]
    == SOURCE_SINGLE_FILTERS
    == ("urgency", "location_id", "clinician_id", "payer")
)


class ImportMembers:
    """Member rows for referrals written with no step dates, as tuples in MEMBER_COLUMNS order."""

    def __init__(self) -> None:
        self.calendar = _Calendar()
        self.outcomes: dict[tuple[str, str], tuple] = {}

    def outcome(self, state: str, lost_reason: str) -> tuple:
        """What a referral in this state contributes, by rollups._member (a bulk-written one has no step dates)."""
        key = (state, lost_reason)
        known = self.outcomes.get(key)
        if known is None:
            received = timezone.now()
            facts = (0, received, state, None, None, None, None, lost_reason, None, None, "routine", 1, None, None,
                     None, "", None, None, "")  # fmt: skip
            values = member_values(_member(facts, self.calendar))
            known = self.outcomes[key] = tuple(values[i] for i in _OUTCOME_AT)
        return known

    def row(
        self,
        pk: int,
        month: dt.date | str,
        state: str,
        lost_reason: str,
        provider_id: int,
        practice_id: int | None,
        payer: str,
        location_id: int | None,
        clinician_id: int | None,
        specialty: str,
        territory_id: int | None,
        liaison_id: int | None,
        urgency: str,
    ) -> tuple:
        """The member row of one referral from a referring provider. `month` is the first day of the month received
        (local time), in the form the writer inserts dates. Positional: it runs once per row imported."""
        outcome = self.outcomes.get((state, lost_reason)) or self.outcome(state, lost_reason)
        return (
            pk, month, _PROVIDER, provider_id, practice_id or 0, 0, payer[:120] if payer else "", location_id or 0,
            clinician_id or 0, specialty[:150] if specialty else "", territory_id or 0, liaison_id or 0, urgency,
            *outcome,
        )  # fmt: skip


def id_runs(ids: Sequence[int], runs: list[list[int]] | None = None) -> list[list[int]]:
    """`ids` (ascending) added to `runs`, a list of [first, last] ranges of consecutive ids."""
    runs = [] if runs is None else runs
    for pk in ids:
        if runs and runs[-1][1] + 1 == pk:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return runs


def fold(runs: Sequence[Sequence[int]]) -> None:
    """Add the member rows whose referral ids lie in `runs` ([first, last] ranges) to the cuboids and source sums.

    Each range must hold only rows the caller wrote in this transaction (ids it reserved), or they are counted
    twice. Runs inside the caller's transaction: an error rolls the sums back with the referrals.
    """
    if not runs:
        return
    with _sort_memory():
        for start in range(0, len(runs), MAX_RUNS):  # a bounded OR list (SQLite limits a statement's expression depth)
            _fold(runs[start : start + MAX_RUNS])


@contextlib.contextmanager
def _sort_memory() -> Iterator[None]:
    """PostgreSQL: room to group a million member rows in memory. With the default 4 MB the server spilled every
    grouping of a 1M-row import to disk (66 MB for the delta table, 290 MB for the source sums), for one import
    at a time and in the server process, so the import's own memory does not grow."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem'), set_config('work_mem', %s, true)", [FOLD_WORK_MEM])
        before = cursor.fetchone()[0]
    yield
    # Not on an error: the transaction (or savepoint) rolling back undoes the setting, and an aborted one runs nothing.
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [before])


def _fold(runs: Sequence[Sequence[int]]) -> None:
    member = _q(RollupMember._meta.db_table)
    where, params = _in_runs(runs)
    delta = _q(DELTA_TABLE)
    grain = ["month", *CUBE_DIMENSIONS]
    measures = [f"{expr} AS {_q(name)}" for expr, name in zip(_measure_sql(1), MEASURES, strict=True)]
    columns = ", ".join(f"x.{_q(c)}" for c in grain)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {delta}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {delta} AS SELECT {columns}, {', '.join(measures)} "  # noqa: S608
            f"FROM {member} x WHERE {where} GROUP BY {columns}",
            params,
        )
        try:
            for number in CUBOIDS:
                cursor.execute(*_cuboid_upsert(number))
            if connection.vendor == "sqlite":
                _sources_fold(cursor, where, params)
            else:
                cursor.execute(*_sources_upsert(where, params))
        finally:
            cursor.execute(f"DROP TABLE {delta}")


def _in_runs(runs: Sequence[Sequence[int]]) -> tuple[str, list]:
    column = f"x.{_q('referral_id')}"
    terms, params = [], []
    for first, last in runs:
        terms.append(f"{column} BETWEEN %s AND %s")
        params += [first, last]
    return "(" + " OR ".join(terms) + ")", params


def _cuboid_upsert(number: int) -> tuple[str, list]:
    """One cuboid's sums from the delta table: its kept dimensions grouped, the others as ALL."""
    kept = CUBOIDS[number]
    dims, params, group = [], [], ["x.month"]
    for d in CUBE_DIMENSIONS:
        if d in ("source_kind", "payer") or d in kept:
            dims.append(f"x.{_q(d)}")
            group.append(f"x.{_q(d)}")
        else:
            dims.append("%s")
            params.append(ALL_TEXT if d in TEXT_DIMENSIONS else ALL_ID)
    sums = ", ".join(f"SUM(x.{_q(m)})" for m in MEASURES)
    group_sql = ", ".join(group)
    select = (
        f"SELECT %s, x.month, {', '.join(dims)}, {sums} FROM {_q(DELTA_TABLE)} x "  # noqa: S608
        f"WHERE 1 = 1 GROUP BY {group_sql} ORDER BY {group_sql}"  # WHERE: SQLite's upsert-after-SELECT ambiguity
    )
    key = ["cuboid", "month", *CUBE_DIMENSIONS]
    return _upsert_sql(_q(ReferralRollup._meta.db_table), key, MEASURES, select), [number, *params]


def _sources_upsert(where: str, params: list) -> tuple[str, list]:
    """The per-source sums of the member rows in the runs (as rollups._apply adds them)."""
    sql, constants = sources_upsert_sql(where, 1, "x")
    return sql, [value for branch in constants for value in (*branch, *params)]


def _sources_fold(cursor, where: str, params: list) -> None:
    """SQLite: the per-source sums of the member rows in the runs, as `_sources_upsert` adds them, counted in Python.

    `sources_upsert_sql` sends every member row through ten UNION branches (two kinds of source, five variants) and
    one GROUP BY with thirteen sums: SQLite took 56 s of a 1M-row import's 68 s fold there. Here SQLite groups the
    rows once per kind of source at the finest grain (one COUNT, in source order), and Python adds each group to
    its source's five variants (every urgency, location, clinician and payer; and each of the row's own) with the
    running totals by month; each source's rows are upserted in key order as soon as the next source starts, so
    memory holds one source's rows. The sums are the same (tests/insights/test_rollups_import.py holds them
    against a recount).
    """
    writer = _SourceWriter()
    for kind, column in SOURCE_COLUMNS:
        for rows in _source_sums(cursor, kind.value, column, where, params):
            writer.add(rows)
    writer.flush()


class _SourceWriter:
    """SQLite: per-source sums upserted SOURCE_ROWS_PER_UPSERT rows per statement (lib/sqlite_rows.py), on the
    driver's connection: Django's cursor rewrites the placeholders of every statement it runs, and these are long."""

    def __init__(self) -> None:
        width = len(SOURCE_KEY) + 1 + len(RUNNING_COLUMNS)
        connection.ensure_connection()
        table, measures = _q(SourceRollup._meta.db_table), ["received", *RUNNING_COLUMNS]
        self.sender = RowsPerStatement(
            connection.connection,
            f"({', '.join(['?'] * width)})",
            width,
            lambda values: _upsert_sql(table, SOURCE_KEY, measures, f"VALUES {values}"),
            SOURCE_ROWS_PER_UPSERT,
        )
        self.pending: list[tuple] = []

    def add(self, rows: list[tuple]) -> None:
        self.pending += rows
        if len(self.pending) >= SOURCE_WRITE_ROWS:
            self.flush()

    def flush(self) -> None:
        rows, self.pending = self.pending, []
        with connection.wrap_database_errors:
            self.sender.send(rows)


def _source_sums(cursor, kind: str, column: str, where: str, params: list) -> Iterator[list[tuple]]:
    """The upsert rows of each source of one kind in turn (see _sources_fold)."""
    member = _q(RollupMember._meta.db_table)
    year, month = _year_and_month_sql("x.month")
    source = f"x.{_q(column)}"
    grain = [
        source,
        year,
        "x.territory_id",
        "x.liaison_id",
        "x.specialty",
        *(f"x.{_q(d)}" for d in SOURCE_SINGLE_FILTERS),
    ]
    cursor.execute(
        f"SELECT {', '.join(grain)}, {month}, COUNT(*) FROM {member} x "  # noqa: S608 (names from the models)
        f"WHERE {source} <> 0 AND ({where}) GROUP BY {', '.join(grain)}, {month} ORDER BY {source}",
        params,
    )
    every_urgency, every_location, every_clinician, every_payer = (
        ALL_TEXT if d in TEXT_DIMENSIONS else ALL_ID for d in SOURCE_SINGLE_FILTERS
    )
    current, sums = None, {}
    while batch := cursor.fetchmany(5000):
        for source_id, year_number, territory, liaison, specialty, urgency, location, clinician, payer, m, n in batch:
            if source_id != current:
                if current is not None:
                    yield _source_rows(kind, current, sums)
                current, sums = source_id, {}
            for key in (
                (year_number, territory, liaison, specialty, every_urgency, every_location, every_clinician,
                 every_payer),
                (year_number, territory, liaison, specialty, urgency, every_location, every_clinician, every_payer),
                (year_number, territory, liaison, specialty, every_urgency, location, every_clinician, every_payer),
                (year_number, territory, liaison, specialty, every_urgency, every_location, clinician, every_payer),
                (year_number, territory, liaison, specialty, every_urgency, every_location, every_clinician, payer),
            ):  # fmt: skip
                months = sums.get(key)
                if months is None:
                    months = sums[key] = [0] * 13
                months[m] += n
    if current is not None:
        yield _source_rows(kind, current, sums)


def _source_rows(kind: str, source_id: int, sums: dict[tuple, list[int]]) -> list[tuple]:
    """One source's rows for the upsert, in key order: received, then the running totals from January."""
    rows = []
    for key in sorted(sums):
        running = list(itertools.accumulate(sums[key]))  # [0, January, January to February, ...]
        rows.append((kind, source_id, *key, running[12], *running[1:]))
    return rows
