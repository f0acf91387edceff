"""The PostgreSQL session refloop opens: settings the server is asked for on every connection."""

from __future__ import annotations

import pytest
from django.db import connection

from refloop import settings

pytestmark = pytest.mark.django_db


def test_postgresql_connections_ask_the_server_not_to_jit_compile(monkeypatch):
    # JIT compiling the dashboard's source-list queries took 20-25 ms of a ~130 ms answer at design scale.
    monkeypatch.setenv("DATABASE_URL", "postgres://refloop@db.example:5432/refloop")
    config = settings._database()
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert "-c jit=off" in config["OPTIONS"]["options"]
    # and the server takes it: on the PostgreSQL leg, this very connection runs without JIT
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW jit")
            assert cursor.fetchone()[0] == "off"
