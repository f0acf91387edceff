import pytest
from django.contrib.auth import get_user_model

from refloop.accounts.roles import Role
from refloop.directory.models import Territory
from refloop.practice.models import Clinician, Holiday, Location, Practice

pytestmark = pytest.mark.django_db

LOCATION = {
    "name": "Grove City",
    "address_line1": "2 Stringtown Rd",
    "city": "Grove City",
    "state": "OH",
    "postal_code": "43123",
    "phone": "(614) 555-0199",
    "is_active": "on",
}


def test_a_manager_edits_the_practice_profile(client_as):
    response = client_as("manager").post(
        "/settings/practice/",
        {"name": "Lakeside Ortho", "specialty": "Orthopaedics", "state": "OH", "npi": "1234567893"},
    )
    assert response.status_code == 302
    practice = Practice.current()
    assert (practice.name, practice.npi, practice.state) == ("Lakeside Ortho", "1234567893", "OH")


def test_it_refuses_a_practice_npi_with_a_bad_check_digit(client_as):
    response = client_as("manager").post(
        "/settings/practice/", {"name": "X", "specialty": "Y", "npi": "1234567890"}
    )
    assert response.status_code == 200
    assert b"fails its check digit" in response.content
    assert not Practice.objects.exists()


def test_a_manager_adds_and_edits_a_location(client_as):
    client = client_as("manager")
    assert client.post("/settings/locations/new/", LOCATION).status_code == 302
    location = Location.objects.get(name="Grove City")
    response = client.post(f"/settings/locations/{location.pk}/", {**LOCATION, "hours": "Mon-Fri 8-5"})
    assert response.status_code == 302
    location.refresh_from_db()
    assert location.hours == "Mon-Fri 8-5"


def test_a_bad_state_code_is_named_and_nothing_is_saved(client_as):
    response = client_as("manager").post("/settings/locations/new/", {**LOCATION, "state": "O1"})
    assert response.status_code == 200
    assert b"two-letter state code" in response.content
    assert not Location.objects.exists()


def test_a_manager_adds_a_clinician_at_a_location_linked_to_their_login(client_as, users):
    client = client_as("manager")
    client.post("/settings/locations/new/", LOCATION)
    location = Location.objects.get()
    response = client.post(
        "/settings/clinicians/new/",
        {
            "first_name": "Ana",
            "last_name": "Silva",
            "credentials": "MD",
            "npi": "1234567893",
            "locations": [location.pk],
            "user": users["clinician"].pk,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    clinician = Clinician.objects.get(npi="1234567893")
    assert list(clinician.locations.all()) == [location]
    assert clinician.user == users["clinician"]


def test_a_clinician_npi_is_unique(client_as):
    client = client_as("manager")
    data = {"first_name": "Ana", "last_name": "Silva", "npi": "1234567893", "is_active": "on"}
    client.post("/settings/clinicians/new/", data)
    response = client.post("/settings/clinicians/new/", {**data, "first_name": "Other"})
    assert response.status_code == 200
    assert Clinician.objects.count() == 1


def test_holidays_are_added_and_removed(client_as):
    client = client_as("manager")
    client.post("/settings/holidays/new/", {"date": "2026-12-24", "name": "Christmas Eve"})
    holiday = Holiday.objects.get()
    assert str(holiday.date) == "2026-12-24"
    client.post(f"/settings/holidays/{holiday.pk}/delete/")
    assert not Holiday.objects.exists()


def test_a_territory_can_only_be_given_to_a_liaison(client_as, users):
    client = client_as("manager")
    response = client.post(
        "/settings/territories/new/", {"name": "North", "liaison": users["coordinator"].pk}
    )
    assert response.status_code == 200
    assert not Territory.objects.exists()
    client.post("/settings/territories/new/", {"name": "North", "liaison": users["liaison"].pk})
    assert Territory.objects.get().liaison == users["liaison"]


def test_only_an_admin_manages_users(client_as):
    new_user = {
        "username": "newcoord",
        "role": Role.COORDINATOR,
        "is_active": "on",
        "password1": "violet-harbor-trellis-9",
        "password2": "violet-harbor-trellis-9",
    }
    assert client_as("manager").post("/settings/users/new/", new_user).status_code == 403
    assert not get_user_model().objects.filter(username="newcoord").exists()
    assert client_as("admin").post("/settings/users/new/", new_user).status_code == 302
    user = get_user_model().objects.get(username="newcoord")
    assert user.role == Role.COORDINATOR and user.check_password("violet-harbor-trellis-9")


def test_a_weak_first_password_is_refused(client_as):
    response = client_as("admin").post(
        "/settings/users/new/",
        {"username": "weak", "role": Role.LIAISON, "password1": "password", "password2": "password"},
    )
    assert response.status_code == 200
    assert b"too common" in response.content or b"too short" in response.content
    assert not get_user_model().objects.filter(username="weak").exists()


def test_the_admin_deactivates_a_user(client_as, users):
    target = users["liaison"]
    response = client_as("admin").post(
        f"/settings/users/{target.pk}/",
        {"username": "liaison", "role": Role.LIAISON, "first_name": "L", "last_name": "T"},
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.is_active is False
