"""`refloop backup` and `refloop restore` round-trip the database (SQLite and PostgreSQL), audit chain included."""

from __future__ import annotations

import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from refloop.accounts.audit import audit_record, audit_verify
from refloop.accounts.models import AuditEvent
from tests.referrals.factories import referral as make_referral

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_backup_restores_exactly_what_was_there(tmp_path, users, capsys):
    kept = make_referral()
    audit_record(actor=users["coordinator"], action="referral.view", target=kept)
    before = (get_user_model().objects.count(), AuditEvent.objects.count(), kept.patient.last_name)
    target = tmp_path / "refloop.backup"

    call_command("backup", str(target))
    assert target.stat().st_size > 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it holds PHI
    magic = target.read_bytes()[:16]
    assert magic.startswith(b"SQLite format 3" if connection.vendor == "sqlite" else b"PGDMP")

    # life goes on after the backup: a new user, another referral, more audit events
    get_user_model().objects.create_user(username="latecomer", password="x", role="liaison")
    make_referral()
    assert AuditEvent.objects.count() > before[1]

    call_command("restore", str(target), "--yes")
    connection.close()  # read through a fresh connection, as the next web request would
    assert not get_user_model().objects.filter(username="latecomer").exists()
    assert (get_user_model().objects.count(), AuditEvent.objects.count()) == before[:2]
    from refloop.referrals.models import Referral

    assert list(Referral.objects.values_list("patient__last_name", flat=True)) == [before[2]]
    assert audit_verify().ok
    out = capsys.readouterr().out
    assert "Restored the database" in out and "audit trail intact" in out


def test_restore_refuses_a_file_that_is_not_a_backup_and_changes_nothing(tmp_path, users):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database")
    with pytest.raises(CommandError, match="is not a refloop backup"):
        call_command("restore", str(junk), "--yes")
    assert get_user_model().objects.filter(username="coordinator").exists()


def test_restore_refuses_a_backup_of_the_other_database_kind(tmp_path, users):
    other = tmp_path / "other.backup"
    other.write_bytes((b"PGDMP" if connection.vendor == "sqlite" else b"SQLite format 3\x00") + b"\x00" * 64)
    with pytest.raises(CommandError, match="backup but this refloop uses"):
        call_command("restore", str(other), "--yes")


def test_backup_names_a_missing_folder(tmp_path, db):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("backup", str(tmp_path / "nowhere" / "x.backup"))
