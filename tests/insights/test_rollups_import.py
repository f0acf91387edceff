"""Referrals imported from a file (written in bulk, past the model saves) are in the rollups when it commits."""

from __future__ import annotations

import pytest

from refloop.insights.models import RollupMember
from refloop.referrals.importer import referral_import
from refloop.referrals.models import Referral
from tests.directory.factories import provider
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.referrals.factories import clinician, location
from tests.referrals.test_import_referrals import row, write_csv

pytestmark = pytest.mark.django_db


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


def test_a_dry_run_leaves_the_rollups_as_they_were(tmp_path, users):
    source = provider()
    path = write_csv(tmp_path / "dry.csv", [row(referring_npi=source.npi, external_id="R")])
    referral_import(path=path, by=users["coordinator"], dry_run=True)
    assert not RollupMember.objects.exists()
    assert_rollups_match_recount()
