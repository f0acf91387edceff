"""The demo practice: every step runs through the product's services, is deterministic and never doubles.

The tests use the "tiny" scale so that the whole pipeline (frame, directory, referrals, letters, outreach)
runs in seconds; the small (demo) and large (benchmark) scales run the same code with bigger numbers.
"""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from refloop import demo
from refloop.accounts.roles import Role
from refloop.directory.models import ReferringPractice, ReferringProvider, StaffContact, Territory
from refloop.lib.npi import is_valid_npi
from refloop.practice.models import Clinician, Holiday, Location, Practice
from refloop.referrals.models import Referral
from refloop.referrals.workflow import OPEN_STATES

pytestmark = pytest.mark.django_db


def _snapshot():
    return {
        "clinicians": list(Clinician.objects.order_by("npi").values_list("npi", "first_name", "last_name")),
        "users": sorted(get_user_model().objects.values_list("username", "role", "first_name")),
        "territories": sorted(Territory.objects.values_list("name", "liaison__username")),
        "providers": sorted(ReferringProvider.objects.values_list("npi", "last_name", "tier__code"), key=str),
        "offices": sorted(ReferringPractice.objects.values_list("name", "npi"), key=str),
        "staff": sorted(StaffContact.objects.values_list("first_name", "last_name"), key=str),
        "referrals": list(Referral.objects.order_by("received_at", "pk").values_list("received_at", "state")),
    }


def test_the_demo_frame_has_the_practice_its_people_and_territories():
    assert demo.load(seed=7, scale="tiny") is not None
    assert Practice.objects.count() == 1
    assert Location.objects.count() == 3
    assert Clinician.objects.count() == 8
    assert all(is_valid_npi(npi) for npi in Clinician.objects.values_list("npi", flat=True))
    assert set(get_user_model().objects.values_list("role", flat=True)) == {role.value for role in Role}
    liaisons = get_user_model().objects.filter(role=Role.LIAISON)
    assert liaisons.count() == 3
    assert Territory.objects.filter(liaison__in=liaisons).count() == 3
    assert Clinician.objects.filter(user__username="clinician").exists()
    assert Holiday.objects.filter(name="Thanksgiving Day").exists()


def test_the_demo_network_and_loop_are_valid():
    demo.load(seed=7, scale="tiny")
    providers = ReferringProvider.objects.all()
    assert all(is_valid_npi(npi) for npi in providers.exclude(npi="").values_list("npi", flat=True))
    tiers = {code: providers.filter(tier__code=code).count() for code in "ABC"}
    assert tiers["A"] < tiers["C"]
    assert providers.filter(npi="").count() == 4  # the planted duplicates, typed in without an NPI
    assert StaffContact.objects.exists()
    open_referrals = Referral.objects.filter(state__in=OPEN_STATES)
    assert open_referrals.exists()
    assert not open_referrals.filter(owner__isnull=True).exists()
    assert not open_referrals.filter(due_at__isnull=True).exists()


def test_loading_twice_duplicates_nothing():
    demo.load(seed=7, scale="tiny")
    before = _snapshot()
    assert demo.load(seed=7, scale="tiny") is None
    call_command("demo", no_serve=True, scale="tiny", verbosity=0)
    assert _snapshot() == before


def test_the_same_seed_gives_the_same_practice():
    savepoint = transaction.savepoint()
    demo.load(seed=11, scale="tiny")
    first = _snapshot()
    transaction.savepoint_rollback(savepoint)
    assert not Practice.objects.exists()
    demo.load(seed=11, scale="tiny")
    assert _snapshot() == first


def test_demo_logins_use_the_published_password():
    demo.load(seed=7, scale="tiny")
    assert get_user_model().objects.get(username="coordinator").check_password(demo.DEMO_PASSWORD)
