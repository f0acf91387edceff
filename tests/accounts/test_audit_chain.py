"""The audit trail is a hash chain: any edit or deletion made behind the application's back is found."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from refloop.accounts.audit import audit_record, audit_verify
from refloop.accounts.chain import GENESIS
from refloop.accounts.models import AppendOnlyError, AuditEvent

pytestmark = pytest.mark.django_db


def _events(n: int = 5) -> list[AuditEvent]:
    return [audit_record(actor=None, actor_label="test", action="test.event", detail={"n": i}) for i in range(n)]


def _raw(sql: str, params: list) -> None:
    """Tamper as a database administrator would: plain SQL, past the ORM (and past the trigger on PostgreSQL)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # a superuser's way past every trigger
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


def test_each_event_links_to_the_one_before_it():
    first, second, third = _events(3)
    start = first.seq
    assert (second.seq, third.seq) == (start + 1, start + 2)
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3
    assert AuditEvent.objects.order_by("seq").first().prev_hash == GENESIS


def test_an_untouched_chain_verifies():
    _events(5)
    report = audit_verify()
    assert report.ok and report.checked == AuditEvent.objects.count()
    assert report.head_seq == AuditEvent.objects.order_by("-seq").first().seq


def test_a_row_changed_with_raw_sql_is_caught_and_named():
    events = _events(5)
    _raw("UPDATE accounts_auditevent SET actor_label = %s WHERE id = %s", ["someone-else", events[2].pk])
    report = audit_verify()
    assert not report.ok
    assert report.problem.seq == events[2].seq
    assert "content does not match" in report.problem.reason
    with pytest.raises(CommandError, match=f"record #{events[2].seq}"):
        call_command("audit", "verify")


def test_a_row_deleted_with_raw_sql_is_caught_at_the_next_record():
    events = _events(5)
    _raw("DELETE FROM accounts_auditevent WHERE id = %s", [events[1].pk])
    report = audit_verify()
    assert not report.ok
    assert report.problem.seq == events[2].seq
    assert f"#{events[1].seq}" in report.problem.reason and "missing" in report.problem.reason


def test_a_rehashed_edit_still_breaks_the_next_link():
    """Recomputing the changed row's own hash is not enough: the next record points at the old one."""
    from refloop.accounts.chain import event_hash

    events = _events(4)
    target = events[1]
    new_hash = event_hash(
        seq=target.seq, at=target.at, actor_id=None, actor_label="forger", action=target.action,
        target_type="", target_id="", patient_id="", detail=target.detail, prev_hash=target.prev_hash,
    )
    _raw("UPDATE accounts_auditevent SET actor_label = %s, hash = %s WHERE id = %s", ["forger", new_hash, target.pk])
    report = audit_verify()
    assert report.problem.seq == events[2].seq and "link" in report.problem.reason


def test_events_cut_off_the_end_are_caught_by_an_anchor():
    events = _events(4)
    anchor = (events[-1].seq, events[-1].hash)
    assert audit_verify(anchor=anchor).ok
    _raw("DELETE FROM accounts_auditevent WHERE id = %s", [events[-1].pk])
    assert audit_verify().ok  # the chain alone cannot see a cut tail ...
    report = audit_verify(anchor=anchor)
    assert not report.ok and "anchored record is gone" in report.problem.reason  # ... the anchor can
    with pytest.raises(CommandError, match="anchored record is gone"):
        call_command("audit", "verify", "--anchor", f"{anchor[0]}:{anchor[1]}")


def test_the_orm_refuses_to_change_or_delete_an_event():
    event = _events(1)[0]
    event.action = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_refuses_raw_updates_and_deletes():
    from django.db import DatabaseError, transaction

    event = _events(1)[0]
    for sql in (
        "UPDATE accounts_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM accounts_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, action="test.event").exists()


def test_verify_prints_the_head_to_keep_as_an_anchor(capsys):
    events = _events(2)
    call_command("audit", "verify")
    out = capsys.readouterr().out
    assert f"head {events[-1].seq}:{events[-1].hash}" in out and "intact" in out


def test_the_patient_is_found_from_the_target():
    from tests.referrals.factories import referral as make_referral

    referral = make_referral()
    event = audit_record(actor=None, action="referral.view", target=referral)
    assert event.patient_id == str(referral.patient_id)
    on_patient = audit_record(actor=None, action="patient.view", target=referral.patient)
    assert on_patient.patient_id == str(referral.patient_id)
