"""`refloop import-referrals` reads and checks a large CSV in a child process (importer._checked_chunks): the rows
land as an in-process import lands them, the rejected-rows file keeps the file's own cells, and an error the
reader meets half-way through the file refuses the whole import, naming the row."""

from __future__ import annotations

import csv
import os

import pytest

from refloop.referrals import importer
from refloop.referrals.models import Referral
from tests.directory.factories import next_npi, provider
from tests.referrals.test_import_referrals import HEADER, counts, refused, row, run, write_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader_pids(monkeypatch, tmp_path):
    """Every file counts as large, chunks are 3 rows, and each process that checks a chunk writes down its pid."""
    monkeypatch.setattr(importer, "READER_PROCESS_MIN_ROWS", 1)
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    pids = tmp_path / "pids"
    checked = importer._check_chunk

    def check_chunk(numbered, checker):
        with pids.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        return checked(numbered, checker)

    monkeypatch.setattr(importer, "_check_chunk", check_chunk)
    return lambda: set(pids.read_text().split()) if pids.exists() else set()


def test_the_rows_are_checked_in_another_process_and_land_as_in_process(tmp_path, users, reader_pids):
    source = provider()
    rows = [
        row(referring_npi=source.npi, patient_last_name=f"Doe{i}", external_id=f"E{i}", status=status, mrn=f"M{i}")
        for i, status in enumerate(["", "accepted", "closed", "lost", "scheduled", "seen", "declined"])
    ]
    out, _ = run(write_csv(tmp_path / "referrals.csv", rows))
    assert "created: 7 referrals" in out
    assert reader_pids() and str(os.getpid()) not in reader_pids()  # checked in the child only
    landed = {r.external_id: (r.state, r.patient.last_name, r.patient.mrn, r.referring_provider_id)
              for r in Referral.objects.select_related("patient")}  # fmt: skip
    assert landed == {
        f"E{i}": (state, f"Doe{i}", f"M{i}", source.pk)
        for i, state in enumerate(["received", "accepted", "closed", "lost", "scheduled", "seen", "declined"])
    }
    again, _ = run(write_csv(tmp_path / "referrals.csv", rows))
    assert "created: 0 referrals" in again and "already imported (skipped): 7" in again


def test_rejected_rows_keep_their_cells_when_checked_in_another_process(tmp_path, users, reader_pids):
    source = provider()
    rows = [row(referring_npi=source.npi, patient_last_name=f"Doe{i}", external_id=f"E{i}") for i in range(5)]
    rows[1]["patient_dob"] = "not a date"  # refused by the reader
    rows[3]["referring_npi"] = next_npi()  # a valid NPI no directory entry has: refused after the reader
    rejected = tmp_path / "rejected.csv"
    out, _ = run(write_csv(tmp_path / "referrals.csv", rows), "--accept-valid", "--rejected", str(rejected))
    assert "created: 3 referrals" in out and "rejected: 2" in out
    assert str(os.getpid()) not in reader_pids()
    lines = list(csv.DictReader(rejected.open(encoding="utf-8")))
    assert [(line["patient_last_name"], line["import_row"]) for line in lines] == [("Doe1", "3"), ("Doe3", "5")]
    assert lines[0]["patient_dob"] == "not a date" and lines[1]["referring_npi"] == rows[3]["referring_npi"]


def test_a_reading_error_after_some_chunks_refuses_the_whole_file(tmp_path, users, reader_pids):
    source = provider()
    rows = [row(referring_npi=source.npi, patient_last_name=f"Doe{i}", external_id=f"E{i}") for i in range(8)]
    rows[7]["reason"] = "x" * (csv.field_size_limit() + 10)  # more than a CSV field may hold
    path = write_csv(tmp_path / "referrals.csv", rows, HEADER)
    before = counts()
    message = refused(path)
    assert "Row 9 cannot be read" in message and "Nothing was imported" in message
    assert counts() == before
    assert str(os.getpid()) not in reader_pids()
