"""A large import on SQLite builds the secondary indexes once at the end instead of row by row (_DeferredIndexes):
the same indexes come back, the rows and the rollups are as a row-by-row import leaves them, and a refused or dry
run rolls back with every index in place. PostgreSQL never drops an index (it would lock readers out)."""

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
        return set(cursor.fetchall())


class _Statements:
    """The DROP INDEX and CREATE INDEX statements the import sends."""

    def __init__(self) -> None:
        self.drops = self.creates = 0

    def __call__(self, execute, sql, params, many, context):
        head = sql.lstrip().upper()
        self.drops += head.startswith("DROP INDEX")
        self.creates += head.startswith("CREATE INDEX")
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
    if connection.vendor == "sqlite":
        # Of the patients' indexes, only the one on name_key alone: the import finds patients by name through the
        # one on (name_key, birth_date) as it goes, and the unique one on MRN keeps its guarantee.
        patients = [sql for table, sql in before if table == Patient._meta.db_table]
        assert len([sql for sql in patients if sql.endswith('("name_key")')]) == 1 and len(patients) == 3
        assert statements.drops == statements.creates == len(before) - len(patients) + 1 > 20
    else:
        assert statements.drops == statements.creates == 0
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
