import os
import subprocess
import sys

import pytest
from django.test import Client


@pytest.mark.django_db
def test_it_answers_200_when_the_database_answers():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_it_answers_503_when_the_database_is_unreachable(tmp_path):
    # A real server process configured against a port where no database listens.
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:9/refloop",
        "DJANGO_SETTINGS_MODULE": "refloop.settings",
    }
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='127.0.0.1').get('/healthz');"
        "print(r.status_code, r.json()['database'])"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "503 unreachable", result.stderr
