import pytest

from refloop.lib.icd10 import normalize_icd10, parse_icd10_list


def test_it_normalizes_codes_to_the_dotted_form():
    assert normalize_icd10("m545") == "M54.5"
    assert normalize_icd10(" S83.511A ") == "S83.511A"
    assert normalize_icd10("E11") == "E11"


@pytest.mark.parametrize("bad", ["545", "MM54", "M54.55555", "M5", "knee", "M54-5"])
def test_it_names_a_code_that_is_not_icd10_shaped(bad):
    with pytest.raises(ValueError, match="is not an ICD-10-CM code"):
        normalize_icd10(bad)


def test_it_splits_lists_and_drops_duplicates():
    assert parse_icd10_list("M54.5, m545; S83.511A  Z96.651") == ["M54.5", "S83.511A", "Z96.651"]
    assert parse_icd10_list("") == []
