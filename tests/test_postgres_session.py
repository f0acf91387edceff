"""The PostgreSQL session refloop opens: settings the server is asked for on every connection."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's own settings")
def test_connections_ask_postgresql_not_to_jit_compile():
    # JIT compiling the dashboard's source-list queries took 20-25 ms of a ~130 ms answer at design scale.
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
