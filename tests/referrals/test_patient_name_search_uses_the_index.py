"""Finding a patient by name reads the name index, not every patient: the search box and the intake form's
duplicate check answer as you type with a million patients on file, on SQLite as on PostgreSQL."""

import datetime as dt

import pytest
from django.db import connection

from refloop.referrals.models import Patient

pytestmark = pytest.mark.django_db


def patient(first_name: str, last_name: str) -> Patient:
    return Patient.objects.create(first_name=first_name, last_name=last_name, birth_date=dt.date(1970, 1, 2))


def test_a_name_prefix_finds_exactly_the_patients_whose_key_starts_with_it():
    doe = patient(first_name="Pat", last_name="Doe")
    patient(first_name="Jan", last_name="Doerr")
    patient(first_name="Pat", last_name="Do")
    assert list(Patient.objects.filter(Patient.name_key_prefix("doe|"))) == [doe]
    assert set(Patient.objects.filter(Patient.name_key_prefix("doe")).values_list("last_name", flat=True)) == {
        "Doe",
        "Doerr",
    }


def test_the_prefix_query_is_answered_from_the_name_index():
    query = Patient.objects.filter(Patient.name_key_prefix("doe|")).query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "Index" in plan, plan
