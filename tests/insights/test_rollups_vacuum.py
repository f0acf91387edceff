"""The writers' vacuum of the rollup sums never disturbs a transaction that is still open.

Commit callbacks run inside the test's transaction under `django_capture_on_commit_callbacks(execute=True)` (and in
any code that runs them inside an outer block); VACUUM cannot run there, and a failed statement would abort that
transaction and everything after it. CI caught it when the twentieth sync of a test process fell in such a block.
"""

from __future__ import annotations

import pytest
from django.db import connection

from refloop.insights import rollups
from refloop.insights.models import SourceRollup
from tests.directory.factories import provider
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def test_the_vacuum_due_inside_an_open_transaction_is_skipped_and_the_transaction_goes_on(
    users, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(rollups, "VACUUM_EVERY", 1)  # every sync asks for a vacuum
    doc = provider()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        referral(source=doc, by=users["coordinator"])
        rollups.rollup_catch_up()  # the intakes queue their referrals; a reader folds them in
        referral(source=doc, by=users["coordinator"])
        rollups.rollup_catch_up()
    if connection.vendor == "postgresql":
        assert any(getattr(cb, "__name__", "") == "_vacuum" for cb in callbacks)
    # the transaction is still usable: a read after the callbacks works and sees both referrals counted
    counted = SourceRollup.objects.filter(
        kind="provider", source_id=doc.pk, urgency="*", payer="*", location_id=-1, clinician_id=-1
    )
    assert sum(counted.values_list("received", flat=True)) == 2
