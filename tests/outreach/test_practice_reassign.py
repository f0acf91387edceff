"""Moving a practice to another territory keeps the history: from, to, liaisons, when and by whom."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from refloop.accounts.models import AuditEvent
from refloop.directory import services as directory_services
from refloop.directory.models import ReferringPractice, ReferringProvider, Territory
from refloop.outreach.models import TerritoryAssignment
from refloop.outreach.services import practice_reassign
from tests.conftest import make_user
from tests.directory.factories import practice, provider
from tests.outreach.factories import office

pytestmark = pytest.mark.django_db


def test_reassigning_moves_the_practice_and_its_providers_and_records_the_history(users):
    other_liaison = make_user("liaison2", "liaison")
    north = Territory.objects.create(name="North", liaison=users["liaison"])
    west = Territory.objects.create(name="West", liaison=other_liaison)
    place = office(physicians=2, territory=north, liaison=users["liaison"])
    elsewhere = practice(name="Elsewhere Clinic", territory=north, liaison=users["liaison"])
    visiting = provider(last_name="Visiting", territory=north, liaison=users["liaison"])
    directory_services.affiliation_set(provider=visiting, practice=elsewhere, is_primary=True)
    directory_services.affiliation_set(provider=visiting, practice=place.practice)

    record = practice_reassign(
        practice=place.practice, territory=west, by=users["manager"], note="Moved with the new ZIPs"
    )

    moved = ReferringPractice.objects.get(pk=place.practice.pk)
    assert (moved.territory, moved.liaison) == (west, other_liaison)
    for doc in place.physicians:
        assert ReferringProvider.objects.get(pk=doc.pk).liaison == other_liaison
    assert ReferringProvider.objects.get(pk=visiting.pk).territory == north  # primary office did not move
    assert (record.from_territory, record.to_territory) == (north, west)
    assert (record.from_liaison, record.to_liaison, record.by) == (users["liaison"], other_liaison, users["manager"])
    assert record.note == "Moved with the new ZIPs"
    assert AuditEvent.objects.filter(action="outreach.reassign", target_id=str(moved.pk)).exists()

    practice_reassign(practice=moved, territory=north, liaison=users["liaison"], by=users["manager"])
    history = list(TerritoryAssignment.objects.filter(practice=moved).order_by("at", "pk"))
    assert [(h.from_territory_name, h.to_territory_name) for h in history] == [("North", "West"), ("West", "North")]


def test_the_history_survives_a_territory_being_deleted(users):
    north = Territory.objects.create(name="North", liaison=users["liaison"])
    south = Territory.objects.create(name="South")
    place = practice(territory=north, liaison=users["liaison"])
    practice_reassign(practice=place, territory=south, by=users["admin"])
    north.delete()
    record = TerritoryAssignment.objects.get()
    assert (record.from_territory, record.from_territory_name) == (None, "North")


def test_moving_to_where_it_already_is_is_refused(users):
    north = Territory.objects.create(name="North", liaison=users["liaison"])
    place = practice(territory=north, liaison=users["liaison"])
    with pytest.raises(ValidationError):
        practice_reassign(practice=place, territory=north, by=users["manager"])
    assert not TerritoryAssignment.objects.exists()


def test_a_manager_moves_a_practice_from_its_page_and_a_liaison_may_not(users, client_as):
    north = Territory.objects.create(name="North", liaison=users["liaison"])
    west = Territory.objects.create(name="West")
    place = practice(territory=north, liaison=users["liaison"])
    url = f"/outreach/practices/{place.pk}/reassign/"
    assert client_as("liaison").post(url, {"territory": west.pk}).status_code == 403
    response = client_as("manager").post(url, {"territory": west.pk, "note": "Rebalancing"})
    assert response.status_code == 302
    assert ReferringPractice.objects.get(pk=place.pk).territory == west
    page = client_as("manager").get(url).content.decode()
    assert "North" in page and "Rebalancing" in page
