"""`refloop import-nppes FILE`: the CMS data file, built here with the real 330-column header."""

from __future__ import annotations

import csv
import datetime
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from refloop.accounts.models import AuditEvent
from refloop.directory import nppes
from refloop.directory.management.commands.import_nppes import _ProgressLine
from refloop.directory.models import (
    PracticeLocation,
    ProviderTaxonomy,
    ReferringPractice,
    ReferringProvider,
    Source,
)
from refloop.directory.nppes import ImportProgress, ImportRefused, nppes_import
from refloop.directory.services import practice_update, provider_update
from refloop.lib.npi import make_npi

pytestmark = pytest.mark.django_db

HIZA = "1720377294"  # a real individual NPI (it is in the NPI Registry API samples too)
CSP = "1568946812"  # a real organization NPI
PEREZ = make_npi("100000001")
OHIO = make_npi("100000002")
DENTIST = make_npi("100000003")


@pytest.fixture(scope="session")
def header(reference_dir) -> list[str]:
    path = reference_dir / "nppes" / "npidata_pfile_header_June2025_V2.csv"
    with path.open(encoding="iso-8859-1", newline="") as handle:
        return next(csv.reader(handle))


def individual(npi: str, **overrides: str) -> dict[str, str]:
    values = {
        "NPI": npi,
        "Entity Type Code": "1",
        "Provider Last Name (Legal Name)": "HIZA",
        "Provider First Name": "ÉLISE",
        "Provider Middle Name": "AILEEN",
        "Provider Name Prefix Text": "DR.",
        "Provider Credential Text": "M.D.",
        "Provider First Line Business Practice Location Address": "111 VICTORIA RD",
        "Provider Second Line Business Practice Location Address": "SUITE 2",
        "Provider Business Practice Location Address City Name": "ASHEVILLE",
        "Provider Business Practice Location Address State Name": "NC",
        "Provider Business Practice Location Address Postal Code": "288014811",
        "Provider Business Practice Location Address Country Code (If outside U.S.)": "US",
        "Provider Business Practice Location Address Telephone Number": "8282527331",
        "Provider Business Practice Location Address Fax Number": "8282527332",
        "Provider Business Mailing Address City Name": "MAILTOWN",
        "Provider Enumeration Date": "04/05/2011",
        "Healthcare Provider Taxonomy Code_1": "390200000X",
        "Provider License Number_1": "",
        "Healthcare Provider Primary Taxonomy Switch_1": "N",
        "Healthcare Provider Taxonomy Code_2": "207X00000X",
        "Provider License Number_2": "2017-01132",
        "Provider License Number State Code_2": "NC",
        "Healthcare Provider Primary Taxonomy Switch_2": "Y",
    }
    return values | overrides


def organization(npi: str, **overrides: str) -> dict[str, str]:
    values = {
        "NPI": npi,
        "Entity Type Code": "2",
        "Provider Organization Name (Legal Business Name)": "CSP ANESTHESIA LLC",
        "Provider First Line Business Practice Location Address": "403 PERMIAN WAY STE D",
        "Provider Business Practice Location Address City Name": "VILLA RICA",
        "Provider Business Practice Location Address State Name": "GA",
        "Provider Business Practice Location Address Postal Code": "301803226",
        "Provider Business Practice Location Address Country Code (If outside U.S.)": "US",
        "Provider Business Practice Location Address Telephone Number": "8884080200",
        "Authorized Official Last Name": "BARTON",
        "Healthcare Provider Taxonomy Code_1": "207L00000X",
        "Healthcare Provider Primary Taxonomy Switch_1": "Y",
    }
    return values | overrides


def deactivated_only(npi: str, when: str = "03/15/2024") -> dict[str, str]:
    """What the monthly file holds for a deactivated NPI: the number and the date, nothing else."""
    return {"NPI": npi, "NPI Deactivation Date": when}


def line(header: list[str], values: dict[str, str]) -> str:
    unknown = set(values) - set(header)
    assert not unknown, unknown
    return '"' + '","'.join(values.get(name, "") for name in header) + '"'


def write_nppes(
    path: Path, header: list[str], rows: list[dict[str, str] | str], encoding="iso-8859-1"
) -> Path:
    """Every value quoted, CRLF line ends, ISO-8859-1: the shape CMS publishes. A str row is written as is."""
    lines = [line(header, {name: name for name in header})]
    lines += [row if isinstance(row, str) else line(header, row) for row in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


@pytest.fixture
def nppes_file(tmp_path, header):
    def make(rows, name="npidata_pfile.csv", **kwargs) -> Path:
        return write_nppes(tmp_path / name, header, rows, **kwargs)

    return make


def test_it_creates_a_provider_with_the_registry_facts(nppes_file):
    path = nppes_file([individual(HIZA)])
    report = nppes_import(path=path)

    assert report.counts() == {
        "read": 1, "matched": 1, "created": 1, "updated": 0, "unchanged": 0, "deactivated": 0, "rejected": 0,
    }  # fmt: skip
    provider = ReferringProvider.objects.get(npi=HIZA)
    assert (provider.first_name, provider.middle_name, provider.last_name) == ("ÉLISE", "AILEEN", "HIZA")
    assert (provider.name_prefix, provider.credentials) == ("DR.", "M.D.")
    assert (provider.address_line1, provider.address_line2) == ("111 VICTORIA RD", "SUITE 2")
    assert (provider.city, provider.state, provider.postal_code) == ("ASHEVILLE", "NC", "28801-4811")
    assert (provider.phone, provider.fax) == ("(828) 252-7331", "(828) 252-7332")
    assert (provider.taxonomy_code, provider.specialty) == ("207X00000X", "Orthopaedic Surgery")
    assert provider.source == Source.NPPES
    assert provider.is_active and provider.deactivated_on is None
    assert provider.manual_fields == []
    assert (
        "élise" in provider.search_text
        and HIZA in provider.search_text
        and "asheville" in provider.search_text
    )
    taxonomies = list(provider.taxonomies.order_by("code").values_list(
        "code", "description", "is_primary", "license_number", "license_state"
    ))  # fmt: skip
    assert taxonomies == [
        ("207X00000X", "Orthopaedic Surgery", True, "2017-01132", "NC"),
        ("390200000X", "390200000X", False, "", ""),  # not in refloop's table: the code, never a guess
    ]


def test_it_creates_a_practice_with_one_primary_location(nppes_file):
    path = nppes_file([organization(CSP)])
    report = nppes_import(path=path)

    assert report.created == 1
    practice = ReferringPractice.objects.get(npi=CSP)
    assert practice.name == "CSP ANESTHESIA LLC"
    assert (practice.phone, practice.fax) == ("(888) 408-0200", "")
    assert practice.source == Source.NPPES and practice.is_active
    [location] = practice.locations.all()
    assert location.is_primary
    assert (location.address_line1, location.city, location.state) == (
        "403 PERMIAN WAY STE D",
        "VILLA RICA",
        "GA",
    )
    assert (location.postal_code, location.phone) == ("30180-3226", "(888) 408-0200")
    assert "villa rica" in practice.search_text and "8884080200" in practice.search_text
    assert not ReferringProvider.objects.exists()
    assert not ProviderTaxonomy.objects.exists()


def test_a_foreign_practice_location_keeps_its_address_without_a_us_state(nppes_file):
    foreign = individual(PEREZ, **{
        "Provider Business Practice Location Address City Name": "TORONTO",
        "Provider Business Practice Location Address State Name": "ONTARIO",
        "Provider Business Practice Location Address Postal Code": "M5V 2T6",
        "Provider Business Practice Location Address Country Code (If outside U.S.)": "CA",
    })  # fmt: skip
    nppes_import(path=nppes_file([foreign]))

    provider = ReferringProvider.objects.get(npi=PEREZ)
    assert (provider.city, provider.state, provider.postal_code) == ("TORONTO", "", "M5V 2T6")


def test_a_taxonomy_listed_once_per_state_licence_becomes_one_row(nppes_file):
    licences = individual(PEREZ, **{
        "Healthcare Provider Taxonomy Code_1": "207Q00000X", "Provider License Number_1": "OH-1",
        "Provider License Number State Code_1": "OH", "Healthcare Provider Primary Taxonomy Switch_1": "N",
        "Healthcare Provider Taxonomy Code_2": "207Q00000X", "Provider License Number_2": "KY-2",
        "Provider License Number State Code_2": "KY", "Healthcare Provider Primary Taxonomy Switch_2": "Y",
    })  # fmt: skip
    nppes_import(path=nppes_file([licences]))

    rows = list(ProviderTaxonomy.objects.values_list("code", "is_primary", "license_number", "license_state"))
    assert rows == [("207Q00000X", True, "KY-2", "KY")]
    assert ReferringProvider.objects.get(npi=PEREZ).specialty == "Family Medicine"


def _mixed_states() -> list[dict[str, str]]:
    ohio = {
        "Provider Business Practice Location Address State Name": "OH",
        "Provider Business Practice Location Address Postal Code": "432101234",
    }
    return [
        individual(HIZA),  # NC, 288..., 207X orthopaedics
        individual(OHIO, **ohio, **{"Healthcare Provider Taxonomy Code_2": "207Q00000X"}),
        individual(DENTIST, **ohio | {
            "Provider Business Practice Location Address Postal Code": "441061000",
            "Healthcare Provider Taxonomy Code_1": "1223G0001X", "Healthcare Provider Taxonomy Code_2": "",
            "Healthcare Provider Primary Taxonomy Switch_1": "Y",
        }),
        organization(CSP),  # GA, 301..., 207L
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {HIZA, OHIO, DENTIST, CSP}),
        ({"states": ["OH"]}, {OHIO, DENTIST}),
        ({"states": ["oh", "GA"]}, {OHIO, DENTIST, CSP}),
        ({"zip_prefixes": ["432"]}, {OHIO}),
        ({"zip_prefixes": ["432", "2880"]}, {OHIO, HIZA}),
        ({"taxonomies": ["207X00000X"]}, {HIZA}),
        ({"taxonomies": ["1223"]}, {DENTIST}),
        ({"taxonomies": ["207"]}, {HIZA, OHIO, CSP}),
        ({"states": ["OH"], "taxonomies": ["207"]}, {OHIO}),
        ({"states": ["OH"], "zip_prefixes": ["441"], "taxonomies": ["1223G0001X"]}, {DENTIST}),
        ({"states": ["TX"]}, set()),
    ],
)
def test_filters_choose_the_rows_to_import(nppes_file, filters, expected):
    report = nppes_import(path=nppes_file(_mixed_states()), **filters)

    imported = set(ReferringProvider.objects.values_list("npi", flat=True))
    imported |= set(ReferringPractice.objects.values_list("npi", flat=True))
    assert imported == expected
    assert (report.read, report.matched, report.created) == (4, len(expected), len(expected))


def test_a_bad_filter_value_is_refused(nppes_file):
    path = nppes_file([individual(HIZA)])
    with pytest.raises(ImportRefused, match="two-letter"):
        nppes_import(path=path, states=["Ohio"])
    with pytest.raises(ImportRefused, match="ZIP"):
        nppes_import(path=path, zip_prefixes=["43a"])


def _snapshot() -> dict:
    return {
        "providers": list(ReferringProvider.objects.order_by("pk").values()),
        "practices": list(ReferringPractice.objects.order_by("pk").values()),
        "locations": list(PracticeLocation.objects.order_by("pk").values()),
        "taxonomies": list(ProviderTaxonomy.objects.order_by("pk").values()),
    }


def test_running_the_same_file_twice_changes_nothing(nppes_file):
    path = nppes_file([*_mixed_states(), deactivated_only(PEREZ)])
    first = nppes_import(path=path)
    before = _snapshot()
    second = nppes_import(path=path)

    assert first.created == 4
    assert (second.created, second.updated, second.unchanged, second.deactivated) == (0, 0, 4, 0)
    assert _snapshot() == before


def test_a_reimport_updates_the_registry_facts(nppes_file):
    nppes_import(path=nppes_file([individual(HIZA), organization(CSP)]))
    moved = individual(HIZA, **{
        "Provider Business Practice Location Address City Name": "BLACK MOUNTAIN",
        "Healthcare Provider Taxonomy Code_1": "207XS0114X",
    })  # fmt: skip
    renamed = organization(CSP, **{
        "Provider Organization Name (Legal Business Name)": "CSP ANESTHESIA GROUP LLC",
        "Provider First Line Business Practice Location Address": "1 NEW RD",
    })  # fmt: skip
    provider_before = ReferringProvider.objects.get(npi=HIZA)

    report = nppes_import(path=nppes_file([moved, renamed], name="next-month.csv"))

    assert (report.created, report.updated, report.unchanged) == (0, 2, 0)
    provider = ReferringProvider.objects.get(npi=HIZA)
    assert provider.city == "BLACK MOUNTAIN" and "black mountain" in provider.search_text
    assert provider.version == provider_before.version + 1
    assert provider.updated_at > provider_before.updated_at
    assert set(provider.taxonomies.values_list("code", flat=True)) == {"207X00000X", "207XS0114X"}
    practice = ReferringPractice.objects.get(npi=CSP)
    assert practice.name == "CSP ANESTHESIA GROUP LLC"
    assert practice.locations.get().address_line1 == "1 NEW RD"
    assert PracticeLocation.objects.count() == 1


def test_records_changing_different_fields_in_one_batch_keep_their_other_values(nppes_file):
    nppes_import(
        path=nppes_file([individual(HIZA), individual(PEREZ, **{"Provider Last Name (Legal Name)": "PEREZ"})])
    )
    moved = individual(HIZA, **{"Provider Business Practice Location Address City Name": "WEAVERVILLE"})
    retitled = individual(
        PEREZ, **{"Provider Last Name (Legal Name)": "PEREZ", "Provider Credential Text": "DO"}
    )

    report = nppes_import(path=nppes_file([moved, retitled], name="next-month.csv"))

    assert report.updated == 2
    hiza, perez = ReferringProvider.objects.get(npi=HIZA), ReferringProvider.objects.get(npi=PEREZ)
    assert (hiza.city, hiza.credentials, hiza.last_name) == ("WEAVERVILLE", "M.D.", "HIZA")
    assert (perez.city, perez.credentials, perez.last_name) == ("ASHEVILLE", "DO", "PEREZ")
    assert "weaverville" in hiza.search_text and "perez" in perez.search_text and " do " in perez.search_text


def test_a_field_edited_by_hand_survives_a_reimport_while_the_others_update(nppes_file):
    nppes_import(path=nppes_file([individual(HIZA), organization(CSP)]))
    provider = ReferringProvider.objects.get(npi=HIZA)
    provider_update(provider=provider, changes={"first_name": "Elise", "phone": "(828) 555-0000"})
    practice = ReferringPractice.objects.get(npi=CSP)
    practice_update(practice=practice, changes={"name": "CSP Anesthesia"})
    changed = individual(HIZA, **{
        "Provider First Name": "ELISA",
        "Provider Business Practice Location Address Telephone Number": "8280000000",
        "Provider Credential Text": "MD",
        "Provider Business Practice Location Address City Name": "WEAVERVILLE",
    })  # fmt: skip
    renamed = organization(CSP, **{
        "Provider Organization Name (Legal Business Name)": "CSP ANESTHESIA GROUP LLC",
        "Provider Business Practice Location Address Telephone Number": "8884080299",
    })  # fmt: skip

    report = nppes_import(path=nppes_file([changed, renamed], name="next-month.csv"))

    assert report.updated == 2
    provider.refresh_from_db()
    assert sorted(provider.manual_fields) == ["first_name", "phone"]
    assert (provider.first_name, provider.phone) == ("Elise", "(828) 555-0000")
    assert (provider.credentials, provider.city) == ("MD", "WEAVERVILLE")
    assert "elise" in provider.search_text and "weaverville" in provider.search_text
    practice.refresh_from_db()
    assert practice.name == "CSP Anesthesia"
    assert practice.phone == "(888) 408-0299"


def test_a_primary_location_staff_took_over_is_left_alone(nppes_file):
    nppes_import(path=nppes_file([organization(CSP)]))
    practice = ReferringPractice.objects.get(npi=CSP)
    location = practice.locations.get()
    location.address_line1, location.hours = "403 Permian Way, Suite D", "Mon-Fri 8-5"
    location.save()
    ReferringPractice.objects.filter(pk=practice.pk).update(manual_fields=[nppes.LOCATION_MANUAL_KEY])
    moved = organization(CSP, **{"Provider First Line Business Practice Location Address": "9 ELSEWHERE"})

    report = nppes_import(path=nppes_file([moved], name="next-month.csv"))

    assert report.unchanged == 1
    location.refresh_from_db()
    assert (location.address_line1, location.hours) == ("403 Permian Way, Suite D", "Mon-Fri 8-5")


def test_a_deactivated_npi_is_marked_inactive_and_a_reactivated_one_active_again(nppes_file):
    nppes_import(path=nppes_file(_mixed_states()))
    rows = [
        deactivated_only(OHIO, "03/15/2024"),  # no state in the row: matched because the directory has it
        individual(HIZA, **{"NPI Deactivation Date": "01/02/2020", "NPI Reactivation Date": "02/03/2021"}),
        deactivated_only(PEREZ),  # not in the directory: nothing is created for it
        organization(CSP, **{"NPI Deactivation Date": "05/06/2023"}),
    ]

    report = nppes_import(path=nppes_file(rows, name="next-month.csv"), states=["OH", "NC", "GA"])

    assert (report.matched, report.deactivated, report.updated, report.unchanged) == (3, 2, 2, 1)
    ohio = ReferringProvider.objects.get(npi=OHIO)
    assert ohio.deactivated_on == datetime.date(2024, 3, 15) and not ohio.is_active
    assert ohio.last_name == "HIZA"  # the bare row does not blank the names
    assert ReferringProvider.objects.get(npi=HIZA).is_active
    practice = ReferringPractice.objects.get(npi=CSP)
    assert practice.deactivated_on == datetime.date(2023, 5, 6) and not practice.is_active
    assert not ReferringProvider.objects.filter(npi=PEREZ).exists()

    back = individual(OHIO, **{"NPI Deactivation Date": "03/15/2024", "NPI Reactivation Date": "04/01/2024"})
    again = nppes_import(path=nppes_file([back], name="reactivated.csv"))
    ohio.refresh_from_db()
    assert ohio.is_active and ohio.deactivated_on is None
    assert again.deactivated == 0


def test_a_new_deactivated_row_with_data_is_created_inactive(nppes_file):
    report = nppes_import(path=nppes_file([individual(HIZA, **{"NPI Deactivation Date": "07/08/2019"})]))

    provider = ReferringProvider.objects.get(npi=HIZA)
    assert (report.created, report.deactivated) == (1, 1)
    assert not provider.is_active and provider.deactivated_on == datetime.date(2019, 7, 8)


def test_an_npi_listed_twice_is_created_once_and_then_updated(nppes_file):
    second = individual(HIZA, **{"Provider Credential Text": "MD, PHD"})
    report = nppes_import(path=nppes_file([individual(HIZA), second]))

    assert (report.created, report.updated) == (1, 1)
    assert ReferringProvider.objects.get(npi=HIZA).credentials == "MD, PHD"


def test_bad_rows_are_rejected_with_their_line_numbers_and_good_rows_import(nppes_file, header):
    bad_check_digit = _failing_check_digit(HIZA)
    rows = [
        individual(HIZA),  # line 2
        '"' + '","'.join([PEREZ, "1", "SHORT"]) + '"',  # line 3: three columns only
        individual(bad_check_digit),  # line 4
        "",  # line 5: blank, still a physical line
        individual(OHIO, **{"Provider First Name": "AN\x00NA"}),  # line 6: NUL byte
        organization(CSP),  # line 7
        individual(DENTIST, **{"Entity Type Code": "3"}),  # line 8
        individual(make_npi("100000004"), **{"NPI Deactivation Date": "2024-03-15"}),  # line 9
        individual(make_npi("100000005"), **{"Provider First Name": 'SAM"UEL'}),  # line 10: stray quote
        individual(make_npi("100000006"), **{"Provider Last Name (Legal Name)": ""}),  # line 11
        line(header, individual(make_npi("100000007"))) + ',"extra"',  # line 12
        individual(make_npi("100000008"), **{"Provider First Name": "X" * 101}),  # line 13
        individual(make_npi("100000009")),  # line 14
    ]
    report = nppes_import(path=nppes_file(rows))

    reasons = [str(row) for row in report.rejects]
    assert [reason.split(":")[0] for reason in reasons] == [
        "line 3", "line 4", "line 6", "line 8", "line 9", "line 10", "line 11", "line 12", "line 13",
    ]  # fmt: skip
    assert reasons[0].startswith("line 3: the row is short")
    assert (
        reasons[1] == f"line 4: NPI {bad_check_digit}: This NPI fails its check digit: a digit is mistyped."
    )
    assert reasons[2] == f"line 6: NPI {OHIO}: 'Provider First Name' holds a control character"
    assert "entity type code '3'" in reasons[3]
    assert "'NPI Deactivation Date' is '2024-03-15', not a MM/DD/YYYY date" in reasons[4]
    assert "stray double quote" in reasons[5]
    assert "without a last name" in reasons[6]
    assert "too many columns" in reasons[7]
    assert "first_name has 101 characters; at most 100 fit" in reasons[8]
    assert (report.read, report.matched, report.created, report.rejected) == (12, 9, 3, 9)
    imported = set(ReferringProvider.objects.values_list("npi", flat=True))
    assert imported == {HIZA, make_npi("100000009")}
    assert ReferringPractice.objects.filter(npi=CSP).exists()
    assert "SHORT" not in " ".join(reasons) and "ANNA" not in " ".join(reasons)


def _failing_check_digit(npi: str) -> str:
    return npi[:-1] + str((int(npi[-1]) + 1) % 10)


def test_identical_bad_rows_and_a_blank_npi_get_their_own_line_numbers(nppes_file):
    bad = individual(_failing_check_digit(PEREZ))
    rows = [individual(HIZA), individual(""), bad, organization(CSP), bad]

    report = nppes_import(path=nppes_file(rows))

    assert [row.where for row in report.rejects] == ["line 3", "line 4", "line 6"]
    assert str(report.rejects[0]) == "line 3: NPI (blank): An NPI has only digits."
    assert report.created == 2


def test_only_the_first_fifty_rejects_are_kept_but_all_are_counted(nppes_file):
    rows = [individual(_failing_check_digit(make_npi(f"1234567{n:02d}"))) for n in range(70)]
    report = nppes_import(path=nppes_file(rows))

    assert (report.matched, report.rejected, report.created) == (70, 70, 0)
    assert len(report.rejects) == nppes.MAX_REJECTS_SHOWN
    assert [row.where for row in report.rejects] == [f"line {n}" for n in range(2, 52)]
    out = io.StringIO()
    call_command("import_nppes", str(nppes_file(rows, name="again.csv")), stdout=out, stderr=io.StringIO())
    assert "  ... and 20 more (the first 50 are shown)" in out.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("utf-16", "UTF-16"),
        ("utf-8", "UTF-8"),
        (b"PK\x03\x04" + b"\x00" * 200, "compressed archive"),
        (b"\x00\x01\x02binary\n", "binary"),
        (b"", "empty"),
    ],
)
def test_a_file_in_the_wrong_encoding_or_format_is_refused(nppes_file, tmp_path, content, message):
    if content in ("utf-16", "utf-8"):
        path = nppes_file([individual(HIZA)], encoding=content)
    else:
        path = tmp_path / "odd.csv"
        path.write_bytes(content)

    with pytest.raises(ImportRefused, match=message):
        nppes_import(path=path)
    assert not ReferringProvider.objects.exists()


def test_a_wrong_header_is_refused_naming_the_missing_columns_and_nothing_is_written(tmp_path, header):
    kept = [name for name in header if name not in ("NPI Deactivation Date", "Provider First Name")]
    path = tmp_path / "cut.csv"
    values = individual(HIZA)
    rows = ['"' + '","'.join(kept) + '"', '"' + '","'.join(values.get(name, "") for name in kept) + '"']
    path.write_text("\r\n".join(rows) + "\r\n", encoding="iso-8859-1")

    with pytest.raises(ImportRefused) as refused:
        nppes_import(path=path)

    assert "'Provider First Name'" in str(refused.value) and "'NPI Deactivation Date'" in str(refused.value)
    assert not ReferringProvider.objects.exists()
    assert not AuditEvent.objects.filter(action="directory.import_nppes").exists()


def test_a_failure_mid_run_leaves_the_directory_as_it_was(nppes_file, monkeypatch):
    nppes_import(path=nppes_file([individual(HIZA)]))
    before = _snapshot()
    real = nppes.entry_from_row
    seen = []

    def failing(values):
        seen.append(values)
        if len(seen) == 3:
            raise RuntimeError("disk on fire")
        return real(values)

    monkeypatch.setattr(nppes, "entry_from_row", failing)
    moved = individual(HIZA, **{"Provider Business Practice Location Address City Name": "BLACK MOUNTAIN"})
    path = nppes_file([moved, organization(CSP), individual(OHIO)], name="next-month.csv")

    with pytest.raises(RuntimeError, match="disk on fire"):
        nppes_import(path=path, batch_size=1)  # the first two rows were written before the failure

    assert _snapshot() == before
    assert AuditEvent.objects.filter(action="directory.import_nppes").count() == 1


def test_each_run_records_one_audit_event_with_counts_only(nppes_file):
    nppes_import(path=nppes_file([individual(HIZA), organization(CSP)]), states=["NC"])

    event = AuditEvent.objects.get(action="directory.import_nppes")
    assert event.actor is None and event.actor_label == "import-nppes"
    assert event.detail["created"] == 1 and event.detail["read"] == 2
    assert event.detail["filters"] == {"states": ["NC"]}
    assert "HIZA" not in str(event.detail) and HIZA not in str(event.detail)


def test_the_command_prints_the_report(nppes_file):
    bad = _failing_check_digit(HIZA)
    path = nppes_file([individual(HIZA), organization(CSP), individual(bad)])
    out = io.StringIO()

    call_command("import_nppes", str(path), "--state", "NC", "GA", stdout=out, stderr=io.StringIO())

    text = out.getvalue()
    assert "(--state NC GA)" in text
    assert "  created                2" in text
    assert "  rejected               1" in text
    assert f"line 4: NPI {bad}: This NPI fails its check digit" in text
    assert "ÉLISE" not in text and "HIZA" not in text


def test_the_command_refuses_a_bad_file_with_one_line(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(CommandError, match="empty"):
        call_command("import_nppes", str(path))
    with pytest.raises(CommandError, match="either"):
        call_command("import_nppes")


def test_progress_is_one_line_with_rows_read_and_rate():
    stream = io.StringIO()
    from django.core.management.base import OutputWrapper

    show = _ProgressLine(OutputWrapper(stream))
    show(ImportProgress(fraction=0.25, rows_read=250_000, matched=900, seconds=2.0))

    assert stream.getvalue() == (
        "import-nppes:  25.0% of the file, ~250,000 rows read, 125,000 rows/s, 900 matched\n"
    )


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REFLOOP_", "DATABASE_URL", "DJANGO_"))}
    env = {**base, "REFLOOP_SECRET_KEY": "k" * 50, "REFLOOP_DATA_DIR": str(data_dir)}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "refloop.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_the_refloop_cli_imports_and_refuses(tmp_path, header):
    data_dir = tmp_path / "data"
    assert _cli("migrate", "--verbosity", "0", data_dir=data_dir).returncode == 0
    path = write_nppes(tmp_path / "npidata.csv", header, [individual(HIZA), organization(CSP)])

    result = _cli("import-nppes", str(path), "--state", "NC", data_dir=data_dir)
    again = _cli("import-nppes", str(path), "--state", "NC", data_dir=data_dir)
    refused = _cli("import-nppes", str(tmp_path / "missing.csv"), data_dir=data_dir)

    assert result.returncode == 0, result.stderr
    assert "  created                1" in result.stdout and "  matched                1" in result.stdout
    assert "  created                0" in again.stdout and "  unchanged              1" in again.stdout
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [f"CommandError: {tmp_path / 'missing.csv'}: no such file"]
