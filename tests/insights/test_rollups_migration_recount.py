"""Migration 0006 recounts the per-source sums (now by urgency) from the member rows: the same as the rollups."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from refloop.insights.models import SourceRollup
from tests.directory.factories import provider
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db

migration = importlib.import_module("refloop.insights.migrations.0006_source_list_filter_indexes")


class _Editor:
    """What the migration's functions use of a schema editor, on the test's connection (SQLite refuses a real
    schema editor inside the test's transaction)."""

    quote_name = staticmethod(connection.ops.quote_name)

    def execute(self, sql, params=()):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def test_the_migration_recounts_the_source_sums_it_forgot(users):
    sender, other = provider(last_name="Sender"), provider(last_name="Other")
    for urgency in ("routine", "routine", "urgent", "stat"):
        referral(by=users["coordinator"], source=sender, urgency=urgency)
    referral(by=users["coordinator"], source=other, urgency="urgent")
    before = SourceRollup.objects.count()

    migration.forget_source_sums(apps, _Editor())
    assert not SourceRollup.objects.exists()
    migration.recount_source_sums(apps, _Editor())

    assert SourceRollup.objects.count() == before
    assert SourceRollup.objects.get(kind="provider", source_id=sender.pk, urgency="routine").received == 2
    assert_rollups_match_recount()
