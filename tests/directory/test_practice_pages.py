import pytest

from refloop.directory.models import PracticeLocation, ReferringPractice, StaffContact
from tests.directory.factories import practice

pytestmark = pytest.mark.django_db


def test_a_new_practice_is_created_with_its_first_location(client_as):
    response = client_as("liaison").post(
        "/directory/practices/new/",
        {
            "name": "Powell Pediatrics",
            "phone": "(614) 555-0300",
            "address_line1": "10 Olentangy St",
            "city": "Powell",
            "state": "oh",
            "postal_code": "43065",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    created = ReferringPractice.objects.get(name="Powell Pediatrics")
    location = created.locations.get()
    assert (location.city, location.state, location.is_primary) == ("Powell", "OH", True)
    assert "powell" in created.search_text and "43065" in created.search_text


def test_a_second_primary_location_takes_over_the_flag(client_as):
    office = practice()
    response = client_as("coordinator").post(
        f"/directory/practices/{office.pk}/locations/new/",
        {
            "label": "Hilliard clinic",
            "address_line1": "1 Main St",
            "city": "Hilliard",
            "state": "OH",
            "postal_code": "43026",
            "is_primary": "on",
        },
    )
    assert response.status_code == 302
    assert list(PracticeLocation.objects.filter(practice=office, is_primary=True).values_list("city", flat=True)) == [
        "Hilliard"
    ]
    office.refresh_from_db()
    assert "hilliard" in office.search_text


def test_staff_contacts_are_added_with_birthdays_and_notes(client_as):
    office = practice()
    response = client_as("liaison").post(
        f"/directory/practices/{office.pk}/staff/new/",
        {
            "first_name": "Dana",
            "last_name": "Reyes",
            "role": "referral_coordinator",
            "contact_preference": "email",
            "birthday_month": "2",
            "birthday_day": "29",
            "interests": "Buckeyes football",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    contact = StaffContact.objects.get()
    assert (contact.birthday_month, contact.birthday_day, contact.practice) == (2, 29, office)
    page = client_as("liaison").get(f"/directory/practices/{office.pk}/").content.decode()
    assert "Dana Reyes" in page and "Referral coordinator" in page and "Buckeyes football" in page


def test_an_impossible_birthday_is_refused(client_as):
    office = practice()
    response = client_as("liaison").post(
        f"/directory/practices/{office.pk}/staff/new/",
        {
            "first_name": "Dana",
            "role": "front_desk",
            "contact_preference": "phone",
            "birthday_month": "4",
            "birthday_day": "31",
        },
    )
    assert response.status_code == 200
    assert "Month 4 has no day 31" in response.content.decode()
    assert not StaffContact.objects.exists()


def test_the_practice_list_filters_by_city(client_as):
    practice(name="Dublin One")
    practice(
        name="Grove City Two",
        npi="",
        location={"address_line1": "1 A St", "city": "Grove City", "state": "OH", "postal_code": "43123"},
    )
    client = client_as("manager")
    names = {p.name for p in client.get("/directory/practices/?place=Grove City").context["page"]}
    assert names == {"Grove City Two"}
    names = {p.name for p in client.get("/directory/practices/?place=43017").context["page"]}
    assert names == {"Dublin One"}


def test_other_sources_are_listed_and_unique_per_kind(client_as):
    client = client_as("coordinator")
    data = {"kind": "campaign", "name": "Search ads", "is_active": "on"}
    assert client.post("/directory/sources/new/", data).status_code == 302
    assert client.post("/directory/sources/new/", data).status_code == 200
    assert "Search ads" in client.get("/directory/sources/").content.decode()


def test_a_location_saved_by_a_person_is_kept_from_the_nppes_import(client_as):
    office = practice(source="nppes")
    assert "location" not in office.manual_fields
    location = office.locations.get()
    data = {
        "label": "Main",
        "address_line1": "9 Corrected Rd",
        "city": "Dublin",
        "state": "OH",
        "postal_code": "43017",
        "is_primary": "on",
    }
    assert client_as("coordinator").post(f"/directory/locations/{location.pk}/edit/", data).status_code == 302
    office.refresh_from_db()
    assert "location" in office.manual_fields
