"""An import run in autocommit (the command, the page) does not have SQLite look up each foreign key as it inserts
(importer._foreign_keys_trusted): every key it writes was read in its own write-locked transaction. These hold the
claim against SQLite's own check of every key written, and the setting against being left off."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from refloop.directory.services import affiliation_set
from refloop.referrals.importer import referral_import
from refloop.referrals.models import Patient, Referral
from tests.directory.factories import practice, provider
from tests.referrals.factories import clinician, location
from tests.referrals.test_import_referrals import row, write_csv

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL checks every key (see _postgres_settings)"),
]


def _foreign_keys_on() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys")
        return bool(cursor.fetchone()[0])


def _broken_keys() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_key_check")
        return cursor.fetchall()


class _Switches:
    """The PRAGMA foreign_keys statements sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        if "foreign_keys =" in sql:
            self.sent.append(sql)
        return execute(sql, params, many, context)


def test_an_import_in_autocommit_writes_only_keys_that_hold_and_puts_the_checks_back(tmp_path, users):
    source, other = provider(), provider(last_name="Other")
    affiliation_set(provider=source, practice=practice(), is_primary=True)
    doctor = clinician(user=users["clinician"])
    location()
    Patient.objects.create(first_name="Known", last_name="Patient", birth_date="1960-05-05", mrn="K1")
    rows = [
        row(referring_npi=source.npi, external_id="A", clinician=doctor.npi, location="main campus", status="seen"),
        row(referring_npi=other.npi, external_id="B", patient_first_name="Known", patient_last_name="Patient",
            patient_dob="1960-05-05", mrn="K1"),
        row(referring_npi=source.npi, external_id="C", status="closed", mrn="N1"),
    ]  # fmt: skip
    assert _foreign_keys_on()
    switches = _Switches()
    with connection.execute_wrapper(switches):
        report = referral_import(path=write_csv(tmp_path / "a.csv", rows), by=users["coordinator"])
    assert report.committed and report.created == 3
    assert switches.sent == ["PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"]
    assert _foreign_keys_on()
    assert _broken_keys() == []
    assert Referral.objects.filter(patient__mrn="K1", referring_provider=other).count() == 1


def test_a_refused_import_puts_the_checks_back_too(tmp_path, users):
    source = provider()
    rows = [row(referring_npi=source.npi, external_id="A"), row(referring_npi=source.npi, patient_dob="not a date")]
    report = referral_import(path=write_csv(tmp_path / "bad.csv", rows), by=users["coordinator"])
    assert not report.committed and report.rejected == 1
    assert _foreign_keys_on()
    assert not Referral.objects.exists()


def test_inside_a_callers_transaction_the_checks_stay_on(tmp_path, users):
    source = provider()
    switches = _Switches()
    with transaction.atomic(), connection.execute_wrapper(switches):
        referral_import(path=write_csv(tmp_path / "a.csv", [row(referring_npi=source.npi)]), by=users["coordinator"])
        assert _foreign_keys_on()
    assert switches.sent == []
