import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from refloop import demo
from refloop.accounts.roles import Role
from refloop.directory import models as directory_models
from refloop.directory.models import ReferringPractice, ReferringProvider, StaffContact, Territory
from refloop.lib.npi import is_valid_npi
from refloop.practice.models import Clinician, Holiday, Location, Practice

pytestmark = pytest.mark.django_db


def _snapshot():
    return {
        "practices": list(Practice.objects.values_list("name", "npi")),
        "clinicians": list(Clinician.objects.order_by("npi").values_list("npi", "first_name", "last_name")),
        "users": sorted(get_user_model().objects.values_list("username", "role", "first_name")),
        "territories": sorted(Territory.objects.values_list("name", "liaison__username")),
        "providers": sorted(
            ReferringProvider.objects.values_list("npi", "last_name", "tier__code", "report_channel")
        ),
        "offices": sorted(ReferringPractice.objects.values_list("name", "npi", "territory__name"), key=str),
        "staff": sorted(
            StaffContact.objects.values_list("first_name", "last_name", "birthday_month"), key=str
        ),
    }


def _delete_demo_data():
    for model in (
        directory_models.StaffContact,
        directory_models.ProviderPractice,
        directory_models.ProviderTaxonomy,
        directory_models.ReferringProvider,
        directory_models.PracticeLocation,
        directory_models.ReferringPractice,
        directory_models.OtherSource,
        Clinician,
        Territory,
        Location,
        Holiday,
        Practice,
    ):
        model.objects.all().delete()
    get_user_model().objects.all().delete()


def test_the_demo_frame_has_the_practice_its_people_and_territories():
    context = demo.load(seed=7)
    assert context is not None
    assert Practice.objects.count() == 1
    assert Location.objects.count() == 3
    assert Clinician.objects.count() == 8
    assert all(is_valid_npi(npi) for npi in Clinician.objects.values_list("npi", flat=True))
    roles = set(get_user_model().objects.values_list("role", flat=True))
    assert roles == {role.value for role in Role}
    liaisons = get_user_model().objects.filter(role=Role.LIAISON)
    assert liaisons.count() == 3
    assert Territory.objects.filter(liaison__in=liaisons).count() == 3
    assert Clinician.objects.filter(user__username="clinician").exists()
    assert Holiday.objects.filter(name="Thanksgiving Day").count() >= 4


def test_the_demo_network_is_realistic_and_valid():
    demo.load(seed=7)
    providers = ReferringProvider.objects.all()
    assert 590 <= providers.count() <= 620
    assert 240 <= ReferringPractice.objects.count() <= 260
    assert all(is_valid_npi(npi) for npi in providers.exclude(npi="").values_list("npi", flat=True))
    tiers = {code: providers.filter(tier__code=code).count() for code in "ABC"}
    assert tiers["A"] < tiers["B"] < tiers["C"]
    assert StaffContact.objects.count() >= 250
    assert providers.filter(npi="").count() == 4  # the planted duplicates, typed in without an NPI
    assert not providers.filter(affiliations__isnull=True).exclude(npi="").exists()


def test_loading_twice_duplicates_nothing():
    demo.load(seed=7)
    before = _snapshot()
    assert demo.load(seed=7) is None
    call_command("demo", no_serve=True, verbosity=0)
    assert _snapshot() == before


def test_the_same_seed_gives_the_same_practice():
    demo.load(seed=11)
    first = _snapshot()
    _delete_demo_data()
    demo.load(seed=11)
    assert _snapshot() == first


def test_demo_logins_use_the_published_password(settings):
    demo.load(seed=7)
    user = get_user_model().objects.get(username="coordinator")
    assert user.check_password(demo.DEMO_PASSWORD)
