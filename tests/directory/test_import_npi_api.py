"""`refloop import-nppes --api-json FILE`: NPI Registry API answers, the real samples in shared/reference."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from refloop.accounts.models import AuditEvent
from refloop.directory import taxonomy
from refloop.directory.models import ProviderTaxonomy, ReferringPractice, ReferringProvider, Source
from refloop.directory.npi_api import npi_api_import
from refloop.directory.nppes import ImportRefused
from refloop.directory.services import provider_update

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def api_dir(reference_dir):
    return reference_dir / "nppes" / "api"


def _expected_name(result: dict) -> str:
    basic = result["basic"]
    return basic.get("organization_name") or basic["last_name"]


def test_every_sample_imports_or_is_refused_with_the_registry_s_own_error(api_dir):
    paths = sorted(api_dir.glob("*.json"))
    assert len(paths) >= 6
    for path in paths:
        answer = json.loads(path.read_text())
        if "Errors" in answer:
            with pytest.raises(ImportRefused, match=answer["Errors"][0]["description"]):
                npi_api_import(path=path)
            continue
        results = answer["results"]
        report = npi_api_import(path=path)
        assert (report.read, report.rejected) == (len(results), 0), path.name
        assert report.created + report.updated + report.unchanged == len(results)
        for result in results:
            npi = str(result["number"])
            model = ReferringPractice if result["enumeration_type"] == "NPI-2" else ReferringProvider
            record = model.objects.get(npi=npi)
            assert _expected_name(result) in (getattr(record, "name", "") or record.last_name)
            if model is ReferringProvider:
                primary = next(t for t in result["taxonomies"] if t["primary"])
                assert record.specialty == primary["desc"]
                assert record.taxonomies.get(is_primary=True).description == primary["desc"]
    assert ReferringPractice.objects.count() == 10  # the 8bdc8b answer repeats one of 1f9cef's
    assert ReferringProvider.objects.count() == 1


def test_a_provider_sample_imports_exactly(api_dir):
    report = npi_api_import(path=api_dir / "ropensci-npi_api-b2f594.json")

    assert report.created == 1
    provider = ReferringProvider.objects.get(npi="1720377294")
    assert (provider.first_name, provider.middle_name, provider.last_name) == ("ELISE", "AILEEN", "HIZA")
    assert provider.credentials == "M.D."
    assert (provider.address_line1, provider.address_line2) == ("111 VICTORIA RD", "")
    assert (provider.city, provider.state, provider.postal_code) == ("ASHEVILLE", "NC", "28801-4811")
    assert (provider.phone, provider.fax) == ("(828) 252-7331", "")
    assert (provider.taxonomy_code, provider.specialty) == ("207X00000X", "Orthopaedic Surgery")
    assert provider.source == Source.NPI_API and provider.is_active
    rows = list(
        provider.taxonomies.values_list(
            "code", "description", "is_primary", "license_number", "license_state"
        )
    )
    assert rows == [
        ("207X00000X", "Orthopaedic Surgery", True, "2017-01132", "NC"),
        ("390200000X", "Student in an Organized Health Care Education/Training Program", False, "", ""),
    ]


def test_a_practice_sample_imports_its_location_address_exactly(api_dir):
    npi_api_import(path=api_dir / "ropensci-npi_api-1f9cef.json")

    practice = ReferringPractice.objects.get(npi="1740355304")
    assert practice.name == "ATHLETIC SPINE REHABILITATION, LLC"
    assert (practice.phone, practice.fax) == ("(770) 792-7522", "(770) 792-7508")
    location = practice.locations.get()
    assert location.is_primary
    assert (location.address_line1, location.address_line2) == ("880 CANTON RD NE STE 100", "")
    assert (location.city, location.state, location.postal_code) == ("MARIETTA", "GA", "30060-7283")
    assert (location.phone, location.fax) == ("(770) 792-7522", "(770) 792-7508")
    assert not ProviderTaxonomy.objects.exists()  # a practice's taxonomies have no home in the directory


def test_the_api_description_wins_over_refloop_s_table(api_dir, tmp_path):
    answer = json.loads((api_dir / "ropensci-npi_api-b2f594.json").read_text())
    answer["results"][0]["taxonomies"][0]["desc"] = "Orthopaedic Surgery (as the registry names it)"
    answer["results"][0]["taxonomies"][1]["desc"] = ""
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answer))

    npi_api_import(path=path)

    provider = ReferringProvider.objects.get(npi="1720377294")
    assert taxonomy.describe("207X00000X") == "Orthopaedic Surgery"
    assert provider.specialty == "Orthopaedic Surgery (as the registry names it)"
    assert provider.taxonomies.get(code="390200000X").description == "390200000X"


def test_importing_the_same_answer_twice_changes_nothing(api_dir):
    path = api_dir / "ropensci-npi_api-1f9cef.json"
    npi_api_import(path=path)
    before = list(ReferringPractice.objects.order_by("pk").values())

    again = npi_api_import(path=path)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 10)
    assert list(ReferringPractice.objects.order_by("pk").values()) == before
    assert AuditEvent.objects.filter(action="directory.import_nppes", detail__source="npi_api").count() == 2


def test_a_hand_edited_field_survives_an_api_import(api_dir):
    path = api_dir / "ropensci-npi_api-b2f594.json"
    npi_api_import(path=path)
    provider = ReferringProvider.objects.get(npi="1720377294")
    provider_update(provider=provider, changes={"first_name": "Elise", "city": "Asheville"})
    ReferringProvider.objects.filter(pk=provider.pk).update(credentials="MD")

    report = npi_api_import(path=path)

    provider.refresh_from_db()
    assert report.updated == 1
    assert (provider.first_name, provider.city, provider.credentials) == ("Elise", "Asheville", "M.D.")


def _write(tmp_path, content: str | bytes):
    path = tmp_path / "answer.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<html>Service unavailable</html>", "is not JSON"),
        ('{"result_count": 1, "results": [', "is not JSON"),
        ('{"result_count": 0}', "no 'results' list"),
        ('[{"number": 1720377294}]', "expected a JSON object"),
        ('{"results": {"number": 1}}', "no 'results' list"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8|not JSON"),
    ],
)
def test_a_malformed_answer_is_refused_and_nothing_is_written(tmp_path, content, message):
    with pytest.raises(ImportRefused, match=message):
        npi_api_import(path=_write(tmp_path, content))
    assert not ReferringProvider.objects.exists() and not ReferringPractice.objects.exists()


def test_bad_results_are_reported_and_the_good_ones_import(api_dir, tmp_path):
    answer = json.loads((api_dir / "ropensci-npi_api-1f9cef.json").read_text())
    results = answer["results"][:3]
    results[1]["number"] = 1932668135  # check digit broken
    results += [
        "not an object",
        {"number": 1720377294, "enumeration_type": "NPI-3", "basic": {}},
        {"number": 1720377294, "enumeration_type": "NPI-1", "basic": "HIZA"},
        {"number": 1720377294, "enumeration_type": "NPI-1", "basic": {"first_name": "ELISE"}},
        {"number": 1720377294, "enumeration_type": "NPI-1", "basic": {"last_name": "HI\u0000ZA"}},
    ]
    answer["results"] = results
    report = npi_api_import(path=_write(tmp_path, json.dumps(answer)))

    assert (report.read, report.created, report.rejected) == (8, 2, 6)
    assert [str(row) for row in report.rejects] == [
        "result 2: NPI 1932668135: This NPI fails its check digit: a digit is mistyped.",
        "result 4: the result is not an object",
        "result 5: NPI 1720377294: enumeration_type 'NPI-3' is neither NPI-1 nor NPI-2",
        "result 6: NPI 1720377294: basic is not an object",
        "result 7: NPI 1720377294: an individual without a last name",
        "result 8: NPI 1720377294: 'basic.last_name' holds a control character",
    ]
    assert set(ReferringPractice.objects.values_list("npi", flat=True)) == {"1568946812", "1326083494"}


def test_the_command_imports_an_api_answer(api_dir):
    out = io.StringIO()
    call_command("import_nppes", "--api-json", str(api_dir / "ropensci-npi_api-b2f594.json"), stdout=out)

    assert "Imported NPI Registry API answer" in out.getvalue()
    assert "  created                1" in out.getvalue()
    with pytest.raises(CommandError, match="No valid search criteria provided"):
        call_command("import_nppes", "--api-json", str(api_dir / "ropensci-npi_api-8d2d52.json"))


def test_the_command_takes_a_file_or_an_api_answer_not_both(api_dir, tmp_path):
    path = str(api_dir / "ropensci-npi_api-b2f594.json")
    with pytest.raises(CommandError, match="either"):
        call_command("import_nppes", path, "--api-json", path)
    with pytest.raises(CommandError, match="not to --api-json"):
        call_command("import_nppes", "--api-json", path, "--state", "NC")
