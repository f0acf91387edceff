"""National Provider Identifier check digit.

An NPI is 10 digits whose last digit is a Luhn check digit computed over the 9-digit base prefixed with the
card-issuer identifier 80840 (CMS, "Requirements for NPI check digit"). The prefix contributes a constant 24
to the Luhn sum, which is why the arithmetic below starts there.
"""

from __future__ import annotations

_PREFIX_SUM = 24  # Luhn sum contributed by "80840" in the positions it occupies ahead of a 9-digit base


def npi_check_digit(base: str) -> int:
    if len(base) != 9 or not base.isdigit():
        raise ValueError("the NPI base must be exactly 9 digits")
    total = _PREFIX_SUM
    for position, char in enumerate(reversed(base)):
        digit = int(char)
        if position % 2 == 0:  # rightmost digit of the base is doubled (the check digit will sit to its right)
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def npi_problem(value: str) -> str | None:
    """None when `value` is a valid NPI, else a sentence that says what is wrong with it."""
    if not value.isdigit():
        return "An NPI has only digits."
    if len(value) != 10:
        return f"An NPI has 10 digits; this has {len(value)}."
    if value[0] not in "12":
        return "An NPI starts with 1 (individual) or 2 (organization)."
    if npi_check_digit(value[:9]) != int(value[9]):
        return "This NPI fails its check digit: a digit is mistyped."
    return None


def is_valid_npi(value: str) -> bool:
    return npi_problem(value) is None


def make_npi(base: str) -> str:
    """Append the check digit to a 9-digit base (used to generate demo and benchmark data)."""
    return base + str(npi_check_digit(base))
