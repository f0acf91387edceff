"""Plain-SQL lookups by equal columns read the same rows, as the same model instances, as the ORM's filter()."""

from __future__ import annotations

import datetime as dt

import pytest

from refloop.lib.plain_sql import row_where, rows_where
from refloop.referrals.models import Patient
from tests.directory.factories import provider

pytestmark = pytest.mark.django_db


def _patient(**fields) -> Patient:
    values = {"first_name": "Ana", "last_name": "Shaw", "birth_date": dt.date(1970, 3, 14)} | fields
    patient = Patient(**values)
    patient.name_key = Patient.make_name_key(values["first_name"], values["last_name"])
    patient.save()
    return patient


def test_rows_where_matches_the_orm_on_text_and_date_columns():
    twins = [_patient(mrn="A1"), _patient(mrn="A2")]
    _patient(birth_date=dt.date(1971, 3, 14))
    key = Patient.make_name_key("Ana", "Shaw")
    found = rows_where(Patient, name_key=key, birth_date=dt.date(1970, 3, 14))
    assert sorted(p.pk for p in found) == sorted(p.pk for p in twins)
    assert sorted(p.pk for p in Patient.objects.filter(name_key=key, birth_date=dt.date(1970, 3, 14))) == sorted(
        p.pk for p in found
    )
    assert found[0].birth_date == dt.date(1970, 3, 14)  # converted as the ORM converts it
    assert rows_where(Patient, mrn="nobody") == []


def test_row_where_reads_one_row_by_a_unique_key_or_the_primary_key():
    doc = provider(last_name="Okafor")
    assert row_where(type(doc), npi=doc.npi).last_name == "Okafor"
    assert row_where(type(doc), pk=doc.pk).npi == doc.npi
    assert row_where(type(doc), npi="1234567893") is None
