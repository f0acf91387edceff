from hypothesis import given
from hypothesis import strategies as st

from refloop.lib.npi import is_valid_npi, make_npi, npi_check_digit, npi_problem


def test_it_accepts_the_cms_example_npi():
    # The worked example in CMS's "Requirements for NPI check digit": base 123456789, check digit 3.
    assert npi_check_digit("123456789") == 3
    assert is_valid_npi("1234567893")


def test_it_names_what_is_wrong():
    assert "check digit" in npi_problem("1234567890")
    assert "10 digits" in npi_problem("123456789")
    assert "only digits" in npi_problem("12345678a3")
    assert "starts with 1" in npi_problem("3234567893")


@given(st.from_regex(r"[12][0-9]{8}", fullmatch=True), st.integers(min_value=0, max_value=9))
def test_changing_the_check_digit_always_breaks_a_valid_npi(base, wrong):
    npi = make_npi(base)
    assert is_valid_npi(npi)
    if wrong != int(npi[-1]):
        assert not is_valid_npi(base + str(wrong))


@given(st.from_regex(r"[12][0-9]{8}", fullmatch=True), st.integers(min_value=1, max_value=8))
def test_it_catches_every_single_digit_typo(base, position):
    npi = make_npi(base)
    changed = str((int(npi[position]) + 1) % 10)
    typo = npi[:position] + changed + npi[position + 1 :]
    assert not is_valid_npi(typo)
