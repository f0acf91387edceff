import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from refloop.accounts.roles import Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_is_sent_to_login_with_the_page_to_return_to():
    response = Client().get("/referrals/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/referrals/"


def test_the_login_page_and_health_check_need_no_login():
    client = Client()
    assert client.get("/login/").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_it_logs_in_and_lands_on_the_role_home(users):
    client = Client()
    response = client.post("/login/", {"username": "coordinator", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(users["coordinator"].pk)
    home = client.get(response["Location"])
    assert home.status_code == 302 and home["Location"] == "/referrals/"


def test_it_refuses_a_wrong_password_and_says_so(users):
    client = Client()
    response = client.post("/login/", {"username": "coordinator", "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert b"Please enter a correct username and password" in response.content


def test_a_deactivated_account_cannot_log_in(users):
    client = Client()
    response = client.post("/login/", {"username": "outsider", "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_a_deactivated_account_with_a_live_session_sees_nothing(client_as):
    client = client_as("outsider")
    response = client.get("/settings/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_logout_ends_the_session(client_as):
    client = client_as("manager")
    assert client.get("/insights/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/insights/").status_code == 302


def test_passwords_are_stored_as_argon2(settings):
    from refloop import settings as project_settings

    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    user = get_user_model().objects.create_user(username="argon", password=PASSWORD, role=Role.MANAGER)
    user.refresh_from_db()
    assert user.password.startswith("argon2$")
    assert user.check_password(PASSWORD)
