import pytest
from django.core.exceptions import ImproperlyConfigured

from refloop.lib.env import env_bool, env_int, env_list, env_secret


def test_it_reads_booleans_in_the_usual_spellings(monkeypatch):
    for raw, expected in [
        ("1", True),
        ("yes", True),
        ("ON", True),
        ("0", False),
        ("false", False),
        ("", False),
    ]:
        monkeypatch.setenv("X_FLAG", raw)
        assert env_bool("X_FLAG") is expected


def test_it_names_the_variable_when_a_boolean_is_mistyped(monkeypatch):
    monkeypatch.setenv("REFLOOP_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="REFLOOP_DEBUG.*'maybe'"):
        env_bool("REFLOOP_DEBUG")


def test_it_uses_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("X_FLAG", raising=False)
    assert env_bool("X_FLAG", True) is True
    assert env_int("X_INT", 7) == 7
    assert env_list("X_LIST", ["a"]) == ["a"]


def test_it_refuses_a_non_number_and_an_out_of_range_number(monkeypatch):
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_INT must be a whole number"):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="X_INT must be at least 1"):
        env_int("X_INT", 1, minimum=1)


def test_it_splits_lists_on_commas(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example , b.example,,")
    assert env_list("X_LIST") == ["a.example", "b.example"]


def test_it_reads_a_secret_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret-from-file\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_secret("X_SECRET", required=True) == "s3cret-from-file"


def test_it_requires_a_secret_when_asked(monkeypatch):
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.delenv("X_SECRET_FILE", raising=False)
    with pytest.raises(ImproperlyConfigured, match="X_SECRET .*is required"):
        env_secret("X_SECRET", required=True)
    assert env_secret("X_SECRET", required=False) == ""


def test_it_refuses_a_secret_given_twice(monkeypatch, tmp_path):
    monkeypatch.setenv("X_SECRET", "a")
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "key"))
    with pytest.raises(ImproperlyConfigured, match="either X_SECRET or X_SECRET_FILE"):
        env_secret("X_SECRET", required=False)


def test_it_names_an_unreadable_secret_file(monkeypatch, tmp_path):
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="X_SECRET_FILE: cannot read"):
        env_secret("X_SECRET", required=False)
