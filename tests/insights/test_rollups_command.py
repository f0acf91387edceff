"""`refloop rollups rebuild|sync`: the command a bulk load ends with."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from refloop.directory.models import ReferringProvider
from refloop.insights.models import ReferralRollup, RollupMember, SourceRollup
from refloop.insights.rollups import rollup_catch_up
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def _forget_everything() -> None:
    for model in (RollupMember, ReferralRollup, SourceRollup):
        model.objects.all().delete()


def test_rebuild_counts_every_referral_again(users, capsys):
    referral(by=users["coordinator"])
    referral(by=users["coordinator"])
    _forget_everything()
    call_command("rollups", "rebuild")
    assert "from 2 referrals" in capsys.readouterr().out
    assert_rollups_match_recount()


def test_sync_adds_only_the_referrals_not_counted(users, capsys):
    referral(by=users["coordinator"])
    _forget_everything()
    call_command("rollups", "sync")
    call_command("rollups", "sync")
    assert "Added 0 referrals" in capsys.readouterr().out
    assert_rollups_match_recount()


def test_sync_follows_provider_changes_made_in_bulk(users, capsys):
    made = referral(by=users["coordinator"])
    rollup_catch_up()  # counted under the provider as it was
    ReferringProvider.objects.filter(pk=made.referring_provider_id).update(specialty="Sports Medicine")  # no save()
    call_command("rollups", "sync")
    assert "resynced 1 whose provider changed" in capsys.readouterr().out
    assert RollupMember.objects.get(pk=made.pk).specialty == "Sports Medicine"
    assert_rollups_match_recount()


def test_an_unknown_action_is_named():
    with pytest.raises(CommandError, match="invalid choice: 'recount'"):
        call_command("rollups", "recount")
