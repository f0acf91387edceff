"""Migration 0007 recounts the per-source sums (now a row per source, year and urgency, with running totals by month)
from the member rows: the same as the rollups keep them. (0006's recount by urgency was tested the same way until 0007
changed the table under it.)"""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from refloop.insights.models import SourceRollup
from refloop.insights.rollups import rollup_catch_up
from tests.directory.factories import provider
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db

migration = importlib.import_module("refloop.insights.migrations.0007_source_rollup_years")


class _Editor:
    """What the migration's functions use of a schema editor, on the test's connection (SQLite refuses a real
    schema editor inside the test's transaction)."""

    quote_name = staticmethod(connection.ops.quote_name)
    connection = connection

    def execute(self, sql, params=()):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _noon(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12)))


def test_the_migration_recounts_the_source_sums_by_year_with_running_totals(users):
    sender, other = provider(last_name="Sender"), provider(last_name="Other")
    received = [(dt.date(2025, 1, 15), "routine"), (dt.date(2025, 3, 3), "routine"), (dt.date(2025, 3, 31), "stat"),
                (dt.date(2025, 12, 9), "urgent"), (dt.date(2026, 2, 2), "routine")]  # fmt: skip
    for day, urgency in received:
        referral(by=users["coordinator"], source=sender, urgency=urgency, received_at=_noon(day))
    referral(by=users["coordinator"], source=other, urgency="urgent", received_at=_noon(dt.date(2025, 11, 20)))
    rollup_catch_up()  # the member rows the migration recounts from (at migration time no intake is queued)
    before = SourceRollup.objects.count()

    migration.forget_source_sums(apps, _Editor())
    assert not SourceRollup.objects.exists()
    migration.recount_source_sums(apps, _Editor())

    assert SourceRollup.objects.count() == before
    every, routine = (
        SourceRollup.objects.get(kind="provider", source_id=sender.pk, year=2025, urgency=urgency, payer="*",
                                 location_id=-1, clinician_id=-1)
        for urgency in ("*", "routine")
    )  # fmt: skip
    assert every.received == 4
    assert (every.to_01, every.to_02, every.to_03, every.to_11, every.to_12) == (1, 1, 3, 3, 4)
    assert (routine.received, routine.to_02, routine.to_03, routine.to_12) == (2, 1, 2, 2)
    rows_2026 = SourceRollup.objects.filter(kind="provider", source_id=sender.pk, year=2026)
    assert rows_2026.count() == 5  # in all, and under its urgency, location, clinician and payer
    assert {row.to_01 for row in rows_2026} == {0} and {row.to_02 for row in rows_2026} == {1}
    assert_rollups_match_recount()
