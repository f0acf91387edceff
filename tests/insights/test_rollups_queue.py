"""Intakes and workflow steps queue their referral for the dashboard's sums; readers and the worker fold the queue in.

The point (issue 8): an intake writes one queue row and no shared sum, so concurrent intakes never wait for each
other over the sums; what a page reads is still exact, because every reader folds the queue in first.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from refloop.insights import selectors
from refloop.insights.filters import Filters, add_months
from refloop.insights.models import ReferralRollup, RollupMember, RollupPending, SourceRollup
from refloop.insights.rollups import rollup_catch_up
from refloop.referrals import services
from tests.directory.factories import provider
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def _this_month() -> dt.date:
    return timezone.localdate().replace(day=1)


def test_an_intake_queues_its_referral_and_writes_no_shared_sum(users):
    doc = provider()
    statements: list[str] = []

    def capture(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        made = referral(by=users["coordinator"], source=doc)
    shared = [s for s in statements if "insights_referralrollup" in s or "insights_sourcerollup" in s]
    assert shared == []
    assert list(RollupPending.objects.values_list("referral_id", flat=True)) == [made.pk]
    assert not RollupMember.objects.filter(pk=made.pk).exists()


def test_a_step_queues_its_referral_too(users):
    made = referral(by=users["coordinator"])
    assert rollup_catch_up() == 1
    services.referral_transition(
        referral=made, name="decline", by=users["coordinator"], data={"reason": "Outside our scope"}
    )
    assert list(RollupPending.objects.values_list("referral_id", flat=True)) == [made.pk]
    assert rollup_catch_up() == 1  # counted as declined now
    assert not RollupPending.objects.exists()
    assert_rollups_match_recount()


def test_the_dashboard_counts_what_was_queued_before_it_reads(users):
    doc = provider()
    for _ in range(3):
        referral(by=users["coordinator"], source=doc)
    assert RollupPending.objects.count() == 3
    assert not ReferralRollup.objects.exists()
    month = _this_month()
    board = selectors.dashboard(Filters(start=month, end=month, values={}), report_target=2)
    assert board.totals["received"] == 3
    assert not RollupPending.objects.exists()
    lists = selectors.source_lists(Filters(start=add_months(month, -2), end=month, values={}))
    assert [(row["id"], row["received"]) for row in lists.top_providers] == [(doc.pk, 3)]


def test_the_dashboard_page_folds_the_queue_in(client_as, users):
    referral(by=users["coordinator"])
    assert client_as("manager").get("/insights/").status_code == 200
    assert not RollupPending.objects.exists()
    assert SourceRollup.objects.filter(received=1).exists()


def test_a_referral_queued_twice_is_folded_once(users):
    made = referral(by=users["coordinator"])
    services.referral_transition(referral=made, name="accept", by=users["coordinator"], data={})
    assert RollupPending.objects.count() == 1
    rollup_catch_up()
    assert_rollups_match_recount()


def test_a_referral_deleted_while_queued_leaves_no_trace(users):
    made = referral(by=users["coordinator"])
    rollup_catch_up()
    services.referral_transition(referral=made, name="accept", by=users["coordinator"], data={})
    made.delete()
    rollup_catch_up()
    assert not RollupMember.objects.exists()
    assert not ReferralRollup.objects.filter(received__gt=0).exists()
    assert_rollups_match_recount()


def test_an_empty_queue_costs_one_read(users):
    statements: list[str] = []

    def capture(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        assert rollup_catch_up() == 0
    assert len(statements) == 1 and statements[0].startswith("SELECT 1 FROM")


def test_the_catch_up_command_folds_the_queue(users, capsys):
    referral(by=users["coordinator"])
    referral(by=users["coordinator"])
    call_command("rollups", "catch-up")
    assert "Folded 2 queued referrals" in capsys.readouterr().out
    assert not RollupPending.objects.exists()
    assert_rollups_match_recount()


@pytest.mark.django_db(transaction=True)
def test_a_batch_worker_folds_the_queue(users):
    referral(by=users["coordinator"])
    call_command("worker", batch=True, interval=0, verbosity=0)  # folds the queue before it runs the tasks
    assert not RollupPending.objects.exists()
    assert_rollups_match_recount()
