from __future__ import annotations

from django.core.exceptions import ValidationError

from refloop.lib.npi import npi_problem


def validate_npi(value: str) -> None:
    problem = npi_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid_npi")


def validate_us_state(value: str) -> None:
    if value and (len(value) != 2 or not value.isalpha() or not value.isupper()):
        raise ValidationError("Use the two-letter state code, e.g. NY.", code="invalid_state")
