"""Rollups for referrals written in bulk (the referral importer): set-based, and proportional to the rows written.

`rollups.rollup_sync` brings referrals up to date one model instance at a time and folds each part of 500 into
all 23 cuboids: right for an intake, but a million imported referrals took it over 20 minutes. Here a bulk
writer instead

- builds each referral's member row as a plain tuple while it writes the referral (`ImportMembers.row`, in the
  columns of `MEMBER_COLUMNS`), and inserts it with the referrals, in the same transaction;
- at the end folds exactly its own member rows, given as ranges of the ids it reserved (`fold`): one GROUP BY over
  them into a temporary table of sums at the finest grain (month and every dimension), then each cuboid summed
  from that table, usually a few thousand rows rather than a million, with one INSERT ... SELECT ... GROUP BY ...
  ON CONFLICT per cuboid; the per-source sums from a `SourceTally` the writer fills as it goes (the few columns
  those sums need, counted by NumPy at the end).

The result is what `rollup_sync` would have written (tests/insights/test_rollups_import.py holds it against a
recount). What a referral contributes comes from `rollups._member` itself: a referral written in bulk carries no
step dates (no contact, appointment, visit or report time), so its outcome depends on its state (and lost reason)
alone and is computed once per state by that function; its dimensions are the values the writer already holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat

import numpy as np
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
    TEXT_DIMENSIONS,
    _Calendar,
    _measure_sql,
    _member,
    _q,
    _upsert_sql,
    member_values,
)
from refloop.lib.pg_copy import column_types
from refloop.lib.sqlite_rows import RowsPerStatement

DIMENSION_COLUMNS = (
    "referral_id", "month", "source_kind", "provider_id", "practice_id", "other_source_id", "payer", "location_id",
    "clinician_id", "specialty", "territory_id", "liaison_id", "urgency",
)  # fmt: skip
OUTCOME_COLUMNS = tuple(name for name in MEMBER_FIELDS if name not in DIMENSION_COLUMNS)
MEMBER_COLUMNS = (*DIMENSION_COLUMNS, *OUTCOME_COLUMNS)
DELTA_TABLE = "refloop_rollup_delta"
SOURCE_DELTA_TABLE = "refloop_source_delta"
MAX_RUNS = 200
SOURCE_WRITE_ROWS = 20_000  # per-source sums turned into rows and written at a time (bounded memory)
TALLY_MAX_ROWS = 2_000_000  # member rows a SourceTally holds (80 bytes each) before it writes their sums, then anew
SOURCE_ROWS_PER_UPSERT = 400
FOLD_WORK_MEM = "128MB"  # PostgreSQL's work_mem while folding (hash groupings may use twice that)
_OUTCOME_AT = tuple(MEMBER_FIELDS.index(name) for name in OUTCOME_COLUMNS)
_PROVIDER = SourceKind.PROVIDER.value
# SourceTally writes the variant columns in this order, the order they close SOURCE_KEY in.
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


def fold(runs: Sequence[Sequence[int]], tally: SourceTally) -> None:
    """Add the member rows whose referral ids lie in `runs` ([first, last] ranges) to the cuboids and source sums.

    Each range must hold only rows the caller wrote in this transaction (ids it reserved), or they are counted
    twice. The per-source sums come from `tally`, which holds the same rows (those it has not written already).
    Runs inside the caller's transaction: an error rolls the sums back with the referrals.
    """
    if not runs:
        return
    with _sort_memory():
        for start in range(0, len(runs), MAX_RUNS):  # a bounded OR list (SQLite limits a statement's expression depth)
            _fold(runs[start : start + MAX_RUNS])
        tally.write()


@contextlib.contextmanager
def _sort_memory() -> Iterator[None]:
    """PostgreSQL: room to group a million member rows in memory. With the default 4 MB the server spilled every
    grouping of a 1M-row import to disk (66 MB for the delta table), and the sort of the per-source sums' upsert
    too, for one import at a time and in the server process, so the import's own memory does not grow."""
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


class SourceTally:
    """The per-source sums of the member rows an import writes, counted in memory.

    The writer hands over each chunk's member rows (`add`); the tally keeps only the columns those sums need, as
    NumPy integer columns (texts and months as codes), about 80 bytes a row. `write` works the sums out and upserts
    them, and the importer calls it at the end (through `fold`), or before then when it holds TALLY_MAX_ROWS rows:
    the sums are added to what the table holds, so writing them in parts changes nothing but the number of upserts.

    For a 1M-row import, SQLite grouping the member rows once per kind of source (in source order), and Python
    spreading each group over its five variants, took 14 s; PostgreSQL's one grouping of the ten million rows of
    all the variants took 20 s; sorting integer keys in NumPy takes a few. The sums are those
    `sources_upsert_sql` adds (tests/insights/test_rollups_import.py holds them against a recount).
    Imported referrals all come from referring providers: the kinds counted are the provider and the practice
    (0: none), never another source.
    """

    IDS = ("provider_id", "practice_id", "territory_id", "liaison_id", "location_id", "clinician_id")
    TEXTS = ("specialty", "urgency", "payer")
    KINDS = ((SourceKind.PROVIDER.value, "provider_id"), (SourceKind.PRACTICE.value, "practice_id"))

    def __init__(self) -> None:
        self.at = {name: MEMBER_COLUMNS.index(name) for name in (*self.IDS, *self.TEXTS, "month")}
        self.columns: dict[str, list[np.ndarray]] = {name: [] for name in self.at}
        self.codes: dict[str, dict[str, int]] = {name: {} for name in self.TEXTS}
        self.months: dict[dt.date | str, int] = {}  # the member row's month -> year * 16 + month number
        self.rows = 0
        # PostgreSQL: the caller holds the sums' table alone until it commits (see _source_writer).
        self.exclusive = False

    @property
    def full(self) -> bool:
        return self.rows >= TALLY_MAX_ROWS

    def add(self, members: Sequence[tuple]) -> None:
        """Member rows, as ImportMembers.row makes them."""
        if not members:
            return
        values = list(zip(*members, strict=True))
        for name in self.IDS:
            self.columns[name].append(np.array(values[self.at[name]], dtype=np.int64))
        for name in self.TEXTS:
            codes = self.codes[name]
            coded = [codes[v] if v in codes else codes.setdefault(v, len(codes)) for v in values[self.at[name]]]
            self.columns[name].append(np.array(coded, dtype=np.int64))
        months = self.months
        coded = [months[v] if v in months else self._month(v) for v in values[self.at["month"]]]
        self.columns["month"].append(np.array(coded, dtype=np.int64))
        self.rows += len(members)

    def _month(self, value: dt.date | str) -> int:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
        self.months[value] = day.year * 16 + day.month
        return self.months[value]

    def write(self) -> None:
        """Upsert the sums of the rows held (in the caller's transaction) and forget the rows."""
        if not self.rows:
            return
        columns = {}
        for name, parts in self.columns.items():  # one column at a time, so the parts and the whole are not all held
            columns[name] = np.concatenate(parts)
            parts.clear()
        self.rows = 0
        texts = {name: np.array(list(codes), dtype=object) for name, codes in self.codes.items()}  # code -> text
        sources = {kind: np.unique(columns[column]) for kind, column in self.KINDS}
        with connection.wrap_database_errors, _source_writer(self.exclusive and not _any_held(sources)) as send:
            for kind, column in self.KINDS:
                for rows in _tally_rows(kind, column, columns, texts):
                    send(rows)


def _tally_rows(
    kind: str, source_column: str, columns: dict[str, np.ndarray], texts: dict[str, np.ndarray]
) -> Iterator[list[tuple]]:
    """The upsert rows of one kind of source (see SourceTally), SOURCE_WRITE_ROWS at a time, one variant after the
    other, each in source order."""
    kept = np.flatnonzero(columns[source_column])
    if not len(kept):
        return
    month_code = columns["month"][kept]
    year, month = month_code >> 4, month_code & 15
    del month_code
    # A context: the source, the year and what the source was counted under.
    context, first = _groups(
        columns[source_column][kept], year, columns["territory_id"][kept], columns["liaison_id"][kept],
        columns["specialty"][kept],
    )  # fmt: skip
    at = kept[first]
    heads = (
        columns[source_column][at], year[first], columns["territory_id"][at], columns["liaison_id"][at],
        texts["specialty"][columns["specialty"][at]],
    )  # fmt: skip
    del year, first, at
    every = {name: ALL_TEXT if name in TEXT_DIMENSIONS else ALL_ID for name in SOURCE_SINGLE_FILTERS}
    for variant in (None, *SOURCE_SINGLE_FILTERS):
        if variant is None:
            value, count = 0, 1
        else:
            value, first = _groups(columns[variant][kept])
            count = len(first)
            kept_values = columns[variant][kept[first]]
            shown = texts[variant][kept_values] if variant in texts else kept_values
        # One group per context and value, and its months counted: `cells` are (group, month) in order.
        cells, counted = np.unique((context * count + value) * 13 + month, return_counts=True)
        groups = cells // 13
        starts = np.ones(len(groups), dtype=bool)
        starts[1:] = groups[1:] != groups[:-1]
        group_of_cell = np.cumsum(starts) - 1
        first_cell = np.append(np.flatnonzero(starts), len(cells))
        keys = groups[starts]
        del groups, starts
        contexts, values = keys // count, keys % count
        for start in range(0, len(keys), SOURCE_WRITE_ROWS):
            end = min(start + SOURCE_WRITE_ROWS, len(keys))
            these = slice(first_cell[start], first_cell[end])
            by_month = np.zeros((end - start, 13), dtype=np.int64)
            by_month[group_of_cell[these] - start, cells[these] % 13] = counted[these]
            totals = np.cumsum(by_month[:, 1:], axis=1)  # to_01 .. to_12: January, January to February, ...
            at = contexts[start:end]
            filters = [
                shown[values[start:end]].tolist() if name == variant else repeat(every[name])
                for name in SOURCE_SINGLE_FILTERS
            ]
            yield list(
                zip(
                    repeat(kind), *(head[at].tolist() for head in heads), *filters, totals[:, 11].tolist(),
                    *totals.T.tolist(),
                )
            )  # fmt: skip


def _groups(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's number among the distinct combinations of `keys` (numbered in their sort order, first key first),
    and the index of one row of each combination."""
    order = np.lexsort(keys[::-1])
    starts = np.zeros(len(order), dtype=bool)
    starts[:1] = True
    for key in keys:
        ordered = key[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    numbers = np.empty(len(order), dtype=np.int64)
    numbers[order] = np.cumsum(starts) - 1
    return numbers, order[starts]


def _any_held(sources: dict[str, np.ndarray]) -> bool:
    """Whether the per-source sums hold a row of any of these sources (by kind), from before or from a write of
    this run's."""
    table = _q(SourceRollup._meta.db_table)
    with connection.cursor() as cursor:
        for kind, ids in sources.items():
            ids = [int(pk) for pk in ids if pk]
            if ids:
                cursor.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {table} WHERE kind = %s AND source_id = ANY(%s))",  # noqa: S608
                    [kind, ids],
                )
                if cursor.fetchone()[0]:
                    return True
    return False


@contextlib.contextmanager
def _source_writer(new_only: bool = False) -> Iterator[Callable[[list[tuple]], None]]:
    """Where SourceTally sends its rows (SOURCE_KEY, received, RUNNING_COLUMNS): a function that takes a list of them.

    SQLite: upserted SOURCE_ROWS_PER_UPSERT rows per statement (lib/sqlite_rows.py), on the driver's connection:
    Django's cursor rewrites the placeholders of every statement it runs, and these are long.
    PostgreSQL: copied into a temporary table, then added to the sums in one upsert, in key order (the order the
    per-referral sync locks rows in). Grouping the member rows in the server instead took 60 s at 1M rows, 20 s of
    it grouping ten million branch rows, spilled to disk. With `new_only` (the caller holds the table alone, and it
    has no row of these sources) they are copied straight into the table: no row can meet one there. Measured on
    the 1.16M rows of a 200,000-referral import: 3.8 s instead of 7.9 s.
    """
    table, measures = _q(SourceRollup._meta.db_table), ["received", *RUNNING_COLUMNS]
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor != "postgresql":
        width = len(SOURCE_KEY) + len(measures)
        sender = RowsPerStatement(
            raw,
            f"({', '.join(['?'] * width)})",
            width,
            lambda values: _upsert_sql(table, SOURCE_KEY, measures, f"VALUES {values}"),
            SOURCE_ROWS_PER_UPSERT,
        )
        yield sender.send
        return
    columns = ", ".join(_q(c) for c in (*SOURCE_KEY, *measures))
    delta = _q(SOURCE_DELTA_TABLE)
    target = table if new_only else delta
    with raw.cursor() as cursor:
        types = column_types(cursor, SourceRollup._meta.db_table, [*SOURCE_KEY, *measures])
        if not new_only:
            cursor.execute(f"DROP TABLE IF EXISTS {delta}")
            cursor.execute(f"CREATE TEMPORARY TABLE {delta} AS SELECT {columns} FROM {table} WITH NO DATA")  # noqa: S608

        def send(rows: list[tuple]) -> None:
            with cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:  # noqa: S608 (a model's columns)
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)

        yield send
        if not new_only:
            order = ", ".join(_q(c) for c in SOURCE_KEY)
            select = f"SELECT {columns} FROM {delta} ORDER BY {order}"  # noqa: S608
            cursor.execute(_upsert_sql(table, SOURCE_KEY, measures, select))
            cursor.execute(f"DROP TABLE {delta}")
