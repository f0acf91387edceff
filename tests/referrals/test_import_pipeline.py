"""While one chunk of an import is written in the pipeline's thread, the next one is matched (importer._Pipeline):
on SQLite its providers and idempotency keys are looked up beside the write, and its patients as soon as the
chunk before has its patients in. These hold the matching across chunks against what the rules say, with writes
slowed down so that the lookups do run beside them."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from refloop.referrals import importer
from refloop.referrals.importer import referral_import
from refloop.referrals.models import Patient, Referral
from tests.directory.factories import provider
from tests.referrals.test_import_referrals import row, write_csv

pytestmark = pytest.mark.django_db


class _SlowWriter:
    """Each table's rows go in 50 ms late; notes the lookups the import sends while referrals are going in."""

    def __init__(self, monkeypatch) -> None:
        self.writing_referrals = threading.Event()
        self.lookups_beside = 0
        write = importer._Table.write

        def slow_write(table, raw, rows):
            late = table.model is not Patient
            if late:
                self.writing_referrals.set()
            try:
                time.sleep(0.05)
                return write(table, raw, rows)
            finally:
                if late:
                    self.writing_referrals.clear()

        monkeypatch.setattr(importer._Table, "write", slow_write)

    def __call__(self, execute, sql, params, many, context):
        if self.writing_referrals.is_set() and sql.lstrip().upper().startswith("SELECT"):
            self.lookups_beside += 1
        return execute(sql, params, many, context)


def test_patients_and_keys_are_matched_across_chunks_written_beside_the_next(tmp_path, users, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 2)
    source = provider()
    known = Patient.objects.create(first_name="Cleo", last_name="Known", birth_date="1950-03-03")  # no MRN yet
    referral_import(path=write_csv(tmp_path / "old.csv", [row(referring_npi=source.npi, external_id="OLD")]))

    def patient(first: str, last: str, dob: str, mrn: str = "") -> dict:
        return {"patient_first_name": first, "patient_last_name": last, "patient_dob": dob, "mrn": mrn}

    rows = [
        row(referring_npi=source.npi, external_id="E0", **patient("Ann", "Able", "1980-01-01", "A1")),
        row(referring_npi=source.npi, external_id="E1", **patient("Bob", "Baker", "1981-02-02")),
        # chunk 2: both patients of chunk 1 again, by MRN and by name and date of birth
        row(referring_npi=source.npi, external_id="E2", **patient("Ann", "Able", "1980-01-01", "A1")),
        row(referring_npi=source.npi, external_id="E3", **patient("Bob", "Baker", "1981-02-02")),
        # chunk 3: a key of chunk 1 again; a patient on file matched by name, who gets the file's MRN
        row(referring_npi=source.npi, external_id="E0", **patient("Ann", "Able", "1980-01-01", "A1")),
        row(referring_npi=source.npi, external_id="E5", **patient("Cleo", "Known", "1950-03-03", "C9")),
        # chunk 4: that patient by the MRN chunk 3 gave them; a key imported before this file
        row(referring_npi=source.npi, external_id="E6", **patient("Cleo", "Known", "1950-03-03", "C9")),
        row(referring_npi=source.npi, external_id="OLD"),
        # chunk 5: a new patient with no MRN; chunk 6: the file gives them one; chunk 7: found by it
        row(referring_npi=source.npi, external_id="E8", **patient("Dan", "Dore", "1990-04-04")),
        row(referring_npi=source.npi, external_id="E9", **patient("Eve", "Ely", "1991-05-05")),
        row(referring_npi=source.npi, external_id="E10", **patient("Dan", "Dore", "1990-04-04", "D4")),
        row(referring_npi=source.npi, external_id="E11", **patient("Eve", "Ely", "1991-05-05")),
        row(referring_npi=source.npi, external_id="E12", **patient("Dan", "Dore", "1990-04-04", "D4")),
    ]
    slow = _SlowWriter(monkeypatch)
    patients_before = Patient.objects.count()
    with connection.execute_wrapper(slow):
        report = referral_import(path=write_csv(tmp_path / "history.csv", rows), by=users["coordinator"])
    assert report.committed
    assert (report.created, report.repeated_in_file, report.already_imported) == (11, 1, 1)
    assert report.patients_created == 4 and Patient.objects.count() == patients_before + 4
    by_key = {r.external_id: r.patient for r in Referral.objects.select_related("patient")}
    ann, bob = by_key["E0"], by_key["E1"]
    assert by_key["E2"] == ann and ann.mrn == "A1"
    assert by_key["E3"] == bob and bob.mrn == ""
    assert by_key["E5"] == by_key["E6"] == known
    known.refresh_from_db()
    assert known.mrn == "C9"
    dan = by_key["E8"]
    assert by_key["E10"] == by_key["E12"] == dan and dan.mrn == "D4"
    assert by_key["E11"] == by_key["E9"] != dan
    assert report.patients_matched == 7  # E2 E3 E5 E6 E10 E11 E12: on file, or made by an earlier chunk
    if connection.vendor == "sqlite":
        assert slow.lookups_beside > 0  # the lookups did run while referrals were going in
    else:
        assert slow.lookups_beside == 0  # PostgreSQL: one thread on the connection at a time
