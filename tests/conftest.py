from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from refloop.accounts.roles import TWO_FACTOR_ROLES, Role

PASSWORD = "plum-orchard-lantern-42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2 is slow by design and the suite logs in hundreds of times; tests/accounts checks Argon2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_hot_settings():
    """The intake paths keep per-process copies of the settings rows; a rolled-back test must not leave them behind."""
    from refloop.lib.hot_settings import forget

    forget()
    yield
    forget()


@pytest.fixture(autouse=True)
def _fresh_idle_setting():
    """The idle-logoff period is cached per process; a rolled-back test must not leave its value behind."""
    from refloop.accounts.middleware import forget_idle_seconds

    forget_idle_seconds()
    yield
    forget_idle_seconds()


def make_user(username: str, role: Role, **extra):
    """A user with PASSWORD; roles that must use two-factor get a confirmed authenticator device as well."""
    user = get_user_model().objects.create_user(
        username=username,
        password=PASSWORD,
        role=role,
        first_name=username.title(),
        last_name="Tester",
        **extra,
    )
    if role in TWO_FACTOR_ROLES:
        TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)
    return user


def totp_code(user) -> str:
    """The code the user's authenticator app shows right now; the device forgets its last code so it can reuse it."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0)
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def log_in_client(user) -> Client:
    """A test client logged in as `user`, second factor given when the user has a device (like a real login)."""
    from django.contrib.auth.signals import user_logged_in

    from refloop.accounts.security_events import on_logged_in

    client = Client()
    # A fixture's shortcut is not a login: it leaves no "auth.login" event for tests that count audit rows
    # around a request (real logins are audited and tested through the login page in tests/accounts).
    user_logged_in.disconnect(dispatch_uid="refloop_audit_login")
    try:
        client.force_login(user)
    finally:
        user_logged_in.connect(on_logged_in, dispatch_uid="refloop_audit_login")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def users(db) -> dict:
    """One named user per role, plus `outsider`: a former employee whose account is deactivated."""
    people = {role.value: make_user(role.value, role) for role in Role}
    people["outsider"] = make_user("outsider", Role.COORDINATOR, is_active=False)
    return people


@pytest.fixture
def client_as(users):
    """client_as("liaison") -> a test client logged in as that named user (two-factor verified if it has a device)."""

    def login(name: str) -> Client:
        return log_in_client(users[name])

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


def shared_demo(seed: int):
    """A module-scoped fixture: the tiny demo practice loaded once for a whole test module.

    Loading it takes some 12 s, and a module of read-mostly tests used to load it once per test. The practice is
    written inside a transaction opened for the module and rolled back at its end; each test then runs in a savepoint
    inside that transaction (pytest-django's `db`), so whatever a test writes is undone before the next. Only for
    modules whose every test uses it (the practice stays until the module ends) and uses `db` (not
    `transactional_db` or a live server, which would empty the tables).
    """

    @pytest.fixture(scope="module")
    def loaded(django_db_setup, django_db_blocker):
        from django.db import transaction

        from refloop import demo

        with django_db_blocker.unblock():
            block = transaction.atomic()
            block.__enter__()
            try:
                demo.load(seed=seed, scale="tiny")
                yield seed
            finally:
                transaction.set_rollback(True)
                block.__exit__(None, None, None)

    return loaded
