"""Referrals imported from a file (written in bulk, past the model saves) are in the rollups when it commits.

The importer builds each referral's member row as it writes the referral and folds only the rows it wrote
(refloop/insights/rollup_bulk.py); these hold the result against a recount from the referrals themselves.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from refloop.directory.models import Territory
from refloop.directory.services import affiliation_set
from refloop.insights import rollup_bulk
from refloop.insights.models import ReferralRollup, RollupMember, SourceRollup
from refloop.insights.rollups import rollup_catch_up
from refloop.referrals.importer import IMPORT_STATES, referral_import
from refloop.referrals.models import Referral
from tests.directory.factories import practice, provider
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.referrals.factories import clinician, location, patient_data, referral
from tests.referrals.test_import_referrals import row, write_csv

pytestmark = pytest.mark.django_db


def _received_total() -> int:
    rollup_catch_up()  # the referrals an intake queued, as a reader counts them
    return ReferralRollup.objects.filter(cuboid=0).aggregate(total=Sum("received"))["total"] or 0


def test_an_import_adds_its_referrals_to_the_rollups(tmp_path, users):
    source = provider()
    doctor = clinician(user=users["clinician"])
    location()
    path = write_csv(
        tmp_path / "history.csv",
        [
            row(referring_npi=source.npi, external_id="R", received_date="2025-11-21"),
            row(referring_npi=source.npi, external_id="S", status="Seen", clinician=doctor.npi, location="main campus"),
            row(referring_npi=source.npi, external_id="L", status="lost"),
        ],
    )
    referral_import(path=path, by=users["coordinator"])
    assert Referral.objects.count() == 3
    assert RollupMember.objects.count() == 3
    assert_rollups_match_recount()


def test_every_imported_state_is_counted_as_a_recount_counts_it(tmp_path, users):
    territory = Territory.objects.create(name="North", liaison=users["liaison"])
    office = practice()
    watched = provider(last_name="Okafor", specialty="Pediatrics", territory=territory, liaison=users["liaison"])
    affiliation_set(provider=watched, practice=office, is_primary=True)
    plain = provider(last_name="Reyes", specialty="")
    doctor = clinician(user=users["clinician"])
    location()
    rows = []
    for i, state in enumerate(IMPORT_STATES):
        for urgency, source in (("routine", watched), ("stat", plain)):
            rows.append(
                row(
                    referring_npi=source.npi, status=state, urgency=urgency, external_id=f"{state}-{urgency}",
                    received_date=f"202{4 + i % 2}-0{1 + i}-1{i}", payer=["Aetna", "", "Medicare"][i % 3],
                    clinician=doctor.npi if i % 2 else "", location="main campus" if i % 3 else "",
                    patient_last_name=f"Doe{i}",
                )
            )  # fmt: skip
    referral_import(path=write_csv(tmp_path / "states.csv", rows), by=users["coordinator"])
    assert RollupMember.objects.count() == len(rows) == 2 * len(IMPORT_STATES)
    assert RollupMember.objects.filter(territory_id=territory.pk, practice_id=office.pk).count() == len(IMPORT_STATES)
    assert_rollups_match_recount()


def test_a_matched_patient_is_counted_under_the_payer_they_have(tmp_path, users):
    source = provider()
    known = referral(source=source, patient_data=patient_data(mrn="M-1", payer="Medicare"))
    path = write_csv(
        tmp_path / "again.csv",
        [row(referring_npi=source.npi, mrn="M-1", payer="Aetna", patient_last_name=known.patient.last_name)],
    )
    report = referral_import(path=path, by=users["coordinator"])
    assert report.patients_matched == 1
    imported = Referral.objects.exclude(pk=known.pk).get()
    assert RollupMember.objects.get(pk=imported.pk).payer == "Medicare"
    assert_rollups_match_recount()


def test_imports_add_only_their_own_rows_and_a_reimport_adds_nothing(tmp_path, users):
    source = provider()
    referral(source=source, received_at=timezone.now() - dt.timedelta(days=3))  # counted by the model signals
    first = write_csv(
        tmp_path / "first.csv",
        [row(referring_npi=source.npi, external_id=f"A{i}", patient_last_name=f"A{i}") for i in range(5)],
    )
    second = write_csv(
        tmp_path / "second.csv",
        [row(referring_npi=source.npi, external_id=f"A{i}", patient_last_name=f"A{i}") for i in range(3, 8)],
    )
    referral_import(path=first, by=users["coordinator"])
    report = referral_import(path=second, by=users["coordinator"])
    assert (report.created, report.already_imported) == (3, 2)
    before = (_received_total(), list(SourceRollup.objects.order_by("pk").values_list("received", flat=True)))
    again = referral_import(path=first, by=users["coordinator"])
    assert again.created == 0
    assert (_received_total(), list(SourceRollup.objects.order_by("pk").values_list("received", flat=True))) == before
    assert _received_total() == Referral.objects.count() == RollupMember.objects.count() == 9
    assert_rollups_match_recount()


def test_with_rejected_rows_accepted_only_the_imported_ones_are_counted(tmp_path, users):
    source = provider()
    path = write_csv(
        tmp_path / "mixed.csv",
        [row(referring_npi=source.npi, external_id="ok"), row(referring_npi=source.npi, patient_dob="not a date")],
    )
    report = referral_import(path=path, by=users["coordinator"], accept_valid=True)
    assert (report.created, report.rejected) == (1, 1)
    assert RollupMember.objects.count() == 1
    assert_rollups_match_recount()


def test_a_failed_import_leaves_the_rollups_as_they_were(tmp_path, users):
    source = provider()
    path = write_csv(
        tmp_path / "bad.csv",
        [row(referring_npi=source.npi, external_id="ok"), row(referring_npi=source.npi, patient_dob="not a date")],
    )
    report = referral_import(path=path, by=users["coordinator"])
    assert not report.committed
    assert not RollupMember.objects.exists()
    assert not ReferralRollup.objects.exists()


def test_a_dry_run_leaves_the_rollups_as_they_were(tmp_path, users):
    source = provider()
    path = write_csv(tmp_path / "dry.csv", [row(referring_npi=source.npi, external_id="R")])
    referral_import(path=path, by=users["coordinator"], dry_run=True)
    assert not RollupMember.objects.exists()
    assert_rollups_match_recount()


@pytest.mark.parametrize(
    ("tally_rows", "bulk"),
    [(rollup_bulk.TALLY_MAX_ROWS, False), (7, False), (7, True)],
    ids=["counted-at-the-end", "counted-in-parts", "counted-in-parts-in-bulk"],
)
def test_many_sources_over_several_years_are_summed_as_a_recount_sums_them(
    tmp_path, users, monkeypatch, tally_rows, bulk
):
    # The per-source sums are written a few rows at a time here (SOURCE_WRITE_ROWS), so a source's rows and the
    # next source's meet across writes; the second file adds to rows the first one wrote.
    monkeypatch.setattr("refloop.insights.rollup_bulk.SOURCE_WRITE_ROWS", 3)
    monkeypatch.setattr("refloop.insights.rollup_bulk.SOURCE_ROWS_PER_UPSERT", 2)  # and statements of 1 or 2 rows
    # The sums are counted from a tally of the rows: in parts, it is written each time it holds 7 rows or more
    # (after a chunk of 10), and the parts add up.
    monkeypatch.setattr("refloop.insights.rollup_bulk.TALLY_MAX_ROWS", tally_rows)
    monkeypatch.setattr("refloop.referrals.importer.CHUNK_ROWS", 10)
    written = []
    write = rollup_bulk.SourceTally.write
    monkeypatch.setattr(rollup_bulk.SourceTally, "write", lambda tally: (written.append(tally.rows), write(tally)))
    # In bulk (the indexes built at the end), PostgreSQL holds the sums' table alone: a write whose sources have no
    # row yet copies its rows straight in, and the others add theirs.
    monkeypatch.setattr("refloop.referrals.importer.BULK_INDEX_MIN_ROWS", 5 if bulk else 10**9)
    copied_in = []
    writer = rollup_bulk._source_writer
    monkeypatch.setattr(rollup_bulk, "_source_writer", lambda new_only=False: (copied_in.append(new_only),
                                                                                writer(new_only))[1])  # fmt: skip
    territory = Territory.objects.create(name="East", liaison=users["liaison"])
    offices = [practice(), practice()]
    sources = []
    for i in range(5):
        source = provider(
            last_name=f"Source{i}", specialty=["", "Pediatrics"][i % 2], territory=territory if i % 2 else None
        )
        if i < 4:
            affiliation_set(provider=source, practice=offices[i % 2], is_primary=True)
        sources.append(source)
    doctor = clinician(user=users["clinician"])
    location()

    def rows(prefix: str, count: int) -> list[dict]:
        return [
            row(
                referring_npi=sources[i % 5].npi, external_id=f"{prefix}{i}", patient_last_name=f"{prefix}{i % 7}",
                received_date=f"{2023 + i % 3}-{1 + i % 12:02d}-{1 + i % 27:02d}", urgency=["routine", "stat"][i % 2],
                payer=["Aetna", "", "Medicare"][i % 3], clinician=doctor.npi if i % 4 == 1 else "",
                location="main campus" if i % 5 == 2 else "", status=IMPORT_STATES[i % len(IMPORT_STATES)],
            )
            for i in range(count)
        ]  # fmt: skip

    referral_import(path=write_csv(tmp_path / "first.csv", rows("F", 40)), by=users["coordinator"])
    report = referral_import(path=write_csv(tmp_path / "second.csv", rows("S", 60)), by=users["coordinator"])
    assert report.created == 60
    # Each import's rows once, all in its last write or 10 at a time.
    assert written == ([40, 60] if tally_rows > 100 else [10] * 4 + [0] + [10] * 6 + [0])
    straight_in = bulk and connection.vendor == "postgresql"  # the first write of the first file, no other
    assert copied_in == [straight_in] + [False] * (len([rows for rows in written if rows]) - 1)
    assert SourceRollup.objects.filter(kind="practice").exists()
    assert SourceRollup.objects.values("year").distinct().count() == 3
    assert_rollups_match_recount()
