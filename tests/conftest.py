from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from refloop.accounts.roles import Role

PASSWORD = "plum-orchard-lantern-42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2 is slow by design and the suite logs in hundreds of times; tests/accounts checks Argon2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(username: str, role: Role, **extra):
    return get_user_model().objects.create_user(
        username=username,
        password=PASSWORD,
        role=role,
        first_name=username.title(),
        last_name="Tester",
        **extra,
    )


@pytest.fixture
def users(db) -> dict:
    """One named user per role, plus `outsider`: a former employee whose account is deactivated."""
    people = {role.value: make_user(role.value, role) for role in Role}
    people["outsider"] = make_user("outsider", Role.COORDINATOR, is_active=False)
    return people


@pytest.fixture
def client_as(users):
    """client_as("liaison") -> a test client logged in as that named user."""

    def login(name: str) -> Client:
        client = Client()
        client.force_login(users[name])
        return client

    return login


@pytest.fixture(scope="session")
def reference_dir():
    """The real standards artefacts in ../shared/reference (never copied into this repository)."""
    import os
    from pathlib import Path

    path = Path(
        os.environ.get("REFLOOP_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference")
    )
    if not path.is_dir():
        pytest.fail(
            f"the reference artefacts are missing: expected them at {path} (set REFLOOP_REFERENCE_DIR)"
        )
    return path
