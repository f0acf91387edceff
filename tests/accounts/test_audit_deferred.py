"""audit_deferred: a transaction's events appended together as its last writes, so the chain's lock is held only
for them and the commit (issue 8), with the chain and the all-or-nothing rule as strong as before."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from refloop.accounts.audit import _CHAIN_LOCK, audit_deferred, audit_flush, audit_record, audit_verify
from refloop.accounts.models import AuditEvent


def _actions() -> list[str]:
    return list(AuditEvent.objects.filter(action__startswith="test.").order_by("seq").values_list("action", flat=True))


@pytest.mark.django_db
def test_it_appends_the_events_in_order_when_the_block_ends():
    with transaction.atomic(), audit_deferred():
        for n in range(3):
            audit_record(actor=None, actor_label="tester", action=f"test.{n}", detail={"n": n})
        assert _actions() == []  # nothing written yet: the lock is not taken
    assert _actions() == ["test.0", "test.1", "test.2"]
    seqs = list(AuditEvent.objects.filter(action__startswith="test.").order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert audit_verify().ok


@pytest.mark.django_db
def test_an_error_in_the_block_appends_nothing():
    with pytest.raises(ZeroDivisionError), transaction.atomic(), audit_deferred():
        audit_record(actor=None, actor_label="tester", action="test.lost")
        1 / 0  # noqa: B018 - the failure under test
    assert _actions() == []
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_failed_inner_block_drops_only_its_own_events():
    with transaction.atomic(), audit_deferred():
        audit_record(actor=None, actor_label="tester", action="test.before")
        try:
            with transaction.atomic(), audit_deferred():  # a savepoint, rolled back with its events
                audit_record(actor=None, actor_label="tester", action="test.undone")
                raise ValueError("refused")
        except ValueError:
            pass
        audit_record(actor=None, actor_label="tester", action="test.after")
    assert _actions() == ["test.before", "test.after"]
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_event_is_appended_at_once():
    with audit_deferred():
        audit_record(actor=None, actor_label="tester", action="test.now")
        assert _actions() == ["test.now"]
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the chain's advisory lock is PostgreSQL's")
def test_another_transaction_can_append_while_the_block_runs():
    seen: list[bool] = []

    def try_lock() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_CHAIN_LOCK])
                seen.append(cursor.fetchone()[0])
        finally:
            connections.close_all()

    with transaction.atomic(), audit_deferred():
        audit_record(actor=None, actor_label="tester", action="test.pending")
        other = threading.Thread(target=try_lock)
        other.start()
        other.join(timeout=30)
    assert seen == [True]
    assert _actions() == ["test.pending"]
    assert audit_verify().ok


@pytest.mark.django_db
def test_audit_flush_appends_what_is_kept_so_far_and_the_block_the_rest():
    with transaction.atomic(), audit_deferred():
        audit_record(actor=None, actor_label="tester", action="test.first")
        audit_flush()
        assert _actions() == ["test.first"]
        audit_record(actor=None, actor_label="tester", action="test.second")
        assert _actions() == ["test.first"]
    assert _actions() == ["test.first", "test.second"]
    assert audit_verify().ok
