"""A page does not wait on a writer that holds the rollups: it reads the sums as they are, and the queue keeps its
referrals for the next fold (an import holds SQLite's write lock for a whole file)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from refloop.insights import rollups
from refloop.insights.models import RollupPending
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db(transaction=True)


def _hold_the_lock(taken: threading.Event, release: threading.Event) -> None:
    try:
        with transaction.atomic():  # on SQLite an IMMEDIATE transaction: the database's one write lock
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [rollups._CATCH_UP_LOCK])
            taken.set()
            release.wait(30)
    finally:
        connections.close_all()


def test_a_reader_gives_up_on_a_held_lock_and_the_queue_keeps_its_referrals(users):
    made = referral(by=users["coordinator"])
    taken, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_the_lock, args=(taken, release))
    holder.start()
    try:
        assert taken.wait(30)
        started = time.monotonic()
        assert rollups.rollup_catch_up(patience=0.3) == 0
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join(30)
    assert list(RollupPending.objects.values_list("referral_id", flat=True)) == [made.pk]
    assert rollups.rollup_catch_up(patience=0.3) == 1
    assert not RollupPending.objects.exists()
    with connection.cursor() as cursor:  # the connection waits for locks as long as before
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 20_000
        else:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "0"


def test_a_reader_inside_a_transaction_leaves_its_lock_wait_as_it_was(users):
    referral(by=users["coordinator"])
    with transaction.atomic():
        assert rollups.rollup_catch_up(patience=0.3) == 1
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SHOW lock_timeout")
                assert cursor.fetchone()[0] == "0"
            else:
                cursor.execute("PRAGMA busy_timeout")
                assert cursor.fetchone()[0] == 20_000
