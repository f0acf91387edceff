"""A large import builds the secondary indexes once at the end instead of row by row (_DeferredIndexes), and on
PostgreSQL adds the foreign keys back at the end too: the same indexes and keys come back, the rows and the rollups
are as a row-by-row import leaves them, a refused or dry run rolls back with every index and key in place, and on
PostgreSQL an import that cannot have the tables soon keeps them all."""

from __future__ import annotations

import pytest
from django.db import connection

from refloop.referrals import importer
from refloop.referrals.importer import referral_import
from refloop.referrals.models import Patient, Referral, ReferralEvent
from tests.directory.factories import provider
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.referrals.test_import_referrals import counts, row, write_csv

pytestmark = pytest.mark.django_db


def _indexes() -> set[tuple[str, str]]:
    """(table, index definition) of the bulk-filled tables and the patients', as the database reports them."""
    tables = [model._meta.db_table for model in (*importer._DeferredIndexes.TABLES, Patient)]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                f"SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
                f"AND tbl_name IN ({', '.join(['%s'] * len(tables))})",
                tables,
            )
        else:
            cursor.execute("SELECT tablename, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [tables])
            indexes = cursor.fetchall()
            cursor.execute(  # and the foreign keys, with what they refer to and when they are checked
                "SELECT conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[])",
                [tables],
            )
            return set(indexes) | set(cursor.fetchall())
        return set(cursor.fetchall())


class _Statements:
    """The statements the import sends that drop or make an index, or a foreign key (PostgreSQL)."""

    def __init__(self) -> None:
        self.drops = self.creates = 0

    def __call__(self, execute, sql, params, many, context):
        head = sql.lstrip().upper()
        self.drops += head.startswith("DROP INDEX") or " DROP CONSTRAINT " in head
        self.creates += head.startswith("CREATE INDEX") or " ADD CONSTRAINT " in head
        return execute(sql, params, many, context)


@pytest.fixture
def bulk(monkeypatch):
    """Every file of 5 rows or more counts as large."""
    monkeypatch.setattr(importer, "BULK_INDEX_MIN_ROWS", 5)


def _file(tmp_path, source, count: int, **fields):
    rows = [row(referring_npi=source.npi, patient_last_name=f"Doe{i}", external_id=f"E{i}") for i in range(count)]
    for item in rows:
        item.update(fields)
    return write_csv(tmp_path / "referrals.csv", rows)


def test_a_large_import_drops_the_indexes_and_builds_the_same_ones_again(tmp_path, users, bulk):
    source = provider()
    before = _indexes()
    statements = _Statements()
    with connection.execute_wrapper(statements):
        report = referral_import(path=_file(tmp_path, source, 12, status="closed"), by_label="test")
    assert report.created == 12 and report.committed
    assert _indexes() == before
    # Of the patients' indexes, only those on name_key alone (on PostgreSQL also the one for LIKE): the import finds
    # patients by name through the one on (name_key, birth_date) as it goes, and the unique one on MRN keeps its
    # guarantee. Unique indexes all stay.
    patients = [sql for table, sql in before if table == Patient._meta.db_table]
    alone = ('("name_key")', "(name_key)", "(name_key varchar_pattern_ops)")
    by_name = [sql for sql in patients if sql.endswith(alone)]
    assert len(by_name) == (1 if connection.vendor == "sqlite" else 2)
    others = [sql for table, sql in before if table != Patient._meta.db_table and "UNIQUE" not in sql.upper()]
    assert statements.drops == statements.creates == len(others) + len(by_name) > 20
    if connection.vendor == "postgresql":  # the foreign keys of referrals and their events went and came back
        assert sum(" FOREIGN KEY " in sql for _table, sql in before) >= 11
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout')")
            assert cursor.fetchone()[0] == "0"  # the wait allowed for the drops is back to the default
    assert ReferralEvent.objects.filter(referral__referring_provider=source).count() == 12
    again = _Statements()
    with connection.execute_wrapper(again):  # the same file: nothing to insert, so no index is dropped or built
        report = referral_import(path=_file(tmp_path, source, 12, status="closed"), by_label="test")
    assert report.created == 0 and report.already_imported == 12
    assert again.drops == again.creates == 0
    # The rebuilt indexes serve queries, and the rollups are the recount of what was written.
    assert Referral.objects.filter(referring_provider=source, state="closed").count() == 12
    assert_rollups_match_recount()


def test_a_refused_large_import_leaves_every_index_and_writes_nothing(tmp_path, users, bulk):
    source = provider()
    path = _file(tmp_path, source, 12)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("Pat,Roe,1970-01-02,F,,,,,,,,,not a date,Knee pain,,,,,,E99\r\n")
    before, written = _indexes(), counts()
    report = referral_import(path=path, by_label="test")
    assert not report.committed
    assert any("row 14, column received_date" in error for error in report.errors)
    assert _indexes() == before
    assert counts() == written


def test_a_large_dry_run_leaves_every_index_and_writes_nothing(tmp_path, users, bulk):
    source = provider()
    before, written = _indexes(), counts()
    report = referral_import(path=_file(tmp_path, source, 12), dry_run=True, by_label="test")
    assert report.created == 12 and not report.committed
    assert _indexes() == before
    assert counts() == written


def test_a_small_file_into_a_larger_table_keeps_the_indexes(tmp_path, users, bulk):
    source = provider()
    referral_import(path=_file(tmp_path, source, 30), by_label="test")  # 30 referrals held
    statements = _Statements()
    small = [row(referring_npi=source.npi, patient_last_name=f"Roe{i}", external_id=f"R{i}") for i in range(6)]
    with connection.execute_wrapper(statements):
        report = referral_import(path=write_csv(tmp_path / "small.csv", small), by_label="test")
    assert report.created == 6
    assert statements.drops == statements.creates == 0  # 6 rows is under half of the 30 held


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the wait is PostgreSQL's: SQLite's readers never block")
def test_on_postgresql_a_large_import_that_cannot_have_the_tables_soon_keeps_every_index(tmp_path, users, bulk,
                                                                                         monkeypatch):
    # Another session reads the referrals in a long transaction: dropping an index would wait for it (and lock out
    # everyone queued behind). The import waits POSTGRES_LOCK_WAIT, then keeps the indexes and keys and goes on.
    import psycopg

    monkeypatch.setattr(importer, "POSTGRES_LOCK_WAIT", "200ms")
    source = provider()
    before = _indexes()
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
        password=settings["PASSWORD"] or None, dbname=settings["NAME"],
    )  # fmt: skip
    try:
        other.execute(f"LOCK TABLE {Referral._meta.db_table} IN ACCESS SHARE MODE")  # as any SELECT holds it
        statements = _Statements()
        with connection.execute_wrapper(statements):
            report = referral_import(path=_file(tmp_path, source, 12, status="closed"), by_label="test")
    finally:
        other.close()
    assert report.created == 12 and report.committed
    assert statements.drops >= 1 and statements.creates == 0  # a drop was tried, and undone with its savepoint
    assert _indexes() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        assert cursor.fetchone()[0] == "0"  # the wait allowed is back to the default
    assert_rollups_match_recount()
