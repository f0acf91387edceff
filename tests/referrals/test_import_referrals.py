"""`refloop import-referrals`: canonical and mapped columns, matching, errors by row and column, all or nothing,
accepting the valid rows, idempotency, XLSX, formula cells, and files that are not spreadsheets."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from refloop.accounts.models import AuditEvent
from refloop.directory.models import ProviderPractice
from refloop.directory.services import affiliation_set
from refloop.referrals.importer import CANONICAL_FIELDS, ImportRefused, referral_import
from refloop.referrals.models import Channel, Patient, Referral, ReferralEvent
from refloop.referrals.workflow import State
from tests.directory.factories import next_npi, practice, provider
from tests.referrals.factories import clinician, location

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
ROOT = Path(__file__).resolve().parents[2]
HEADER = list(CANONICAL_FIELDS)


def row(**fields) -> dict:
    """One valid referral row with the canonical fields; `fields` overrides or adds values."""
    return {
        "patient_first_name": "Pat",
        "patient_last_name": "Doe",
        "patient_dob": "1970-01-02",
        "patient_sex": "F",
        "patient_phone": "(614) 555-0100",
        "mrn": "",
        "payer": "Aetna",
        "member_id": "AET123",
        "referring_npi": "",
        "referring_name": "",
        "referring_address": "",
        "referring_zip": "",
        "received_date": "2025-11-21",
        "reason": "Knee pain after a fall",
        "diagnosis_codes": "m25561",
        "urgency": "routine",
        "location": "",
        "clinician": "",
        "status": "",
        "external_id": "",
    } | fields


def write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or HEADER
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for item in rows:
            writer.writerow([item.get(name, "") for name in header])
    return path


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_referrals", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(path: Path, *args: str) -> str:
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_referrals", str(path), *args, stdout=io.StringIO(), stderr=err)
    return f"{caught.value}\n{err.getvalue()}"


def counts() -> tuple[int, int, int, int]:
    return Patient.objects.count(), Referral.objects.count(), ReferralEvent.objects.count(), AuditEvent.objects.count()


def test_a_file_with_the_canonical_header_needs_no_map(tmp_path, users):
    source = provider()
    office = practice()
    affiliation_set(provider=source, practice=office, is_primary=True)
    path = write_csv(tmp_path / "referrals.csv", [row(referring_npi=source.npi, mrn="A100", external_id="EHR-1")])
    out, _ = run(path)
    assert "created: 1 referrals" in out
    item = Referral.objects.get()
    assert item.referring_provider == source and item.referring_practice == office
    assert item.channel == Channel.IMPORT and item.state == State.RECEIVED
    assert item.diagnosis_codes == ["M25.561"]
    assert item.received_at == dt.datetime(2025, 11, 21, tzinfo=NY)
    assert item.external_id == "EHR-1" and item.idempotency_key == "import:EHR-1"
    assert item.patient.mrn == "A100" and item.patient.birth_date == dt.date(1970, 1, 2)
    assert item.patient.name_key == "doe|pat" and item.patient.payer == "Aetna"
    event = item.events.get()
    assert (event.action, event.from_state, event.to_state) == ("import", "", State.RECEIVED)
    source.refresh_from_db()
    office.refresh_from_db()
    assert source.last_referral_on == office.last_referral_on == dt.date(2025, 11, 21)


def test_map_renames_the_file_columns(tmp_path, users):
    source = provider()
    header = ["First", "Last", "Birth Date", "Referred By NPI", "Date Received", "Reason for Referral", "Notes"]
    path = tmp_path / "ehr.csv"
    path.write_text(
        ",".join(header) + "\nPat,Doe,1970-01-02," + source.npi + ",2025-11-21,Hip pain,call after 3pm\n",
        encoding="utf-8",
    )
    out, _ = run(
        path,
        "--map", "First=patient_first_name", "--map", "Last=patient_last_name",
        "--map", "Birth Date=patient_dob", "--map", "Referred By NPI=referring_npi",
        "--map", "Date Received=received_date", "--map", "Reason for Referral=reason",
    )  # fmt: skip
    assert "columns ignored: Notes" in out
    item = Referral.objects.get()
    assert item.reason == "Hip pain" and item.referring_provider == source


def test_a_map_to_an_unknown_field_or_column_is_refused(tmp_path, users):
    path = write_csv(tmp_path / "referrals.csv", [row(referring_npi=provider().npi)])
    assert "“dob” is not a field" in refused(path, "--map", "patient_dob=dob")
    assert "There is no column “Birthday”" in refused(path, "--map", "Birthday=patient_dob")


def test_missing_columns_are_named_and_nothing_is_written(tmp_path, users):
    path = tmp_path / "short.csv"
    path.write_text("patient_first_name,patient_last_name,reason\nPat,Doe,Knee\n", encoding="utf-8")
    before = counts()
    message = refused(path)
    assert "no column for patient_dob, received_date, referring_npi or referring_name" in message
    assert "Nothing was imported" in message
    assert counts() == before


def test_dates_in_another_format_need_date_format(tmp_path, users):
    source = provider()
    path = write_csv(
        tmp_path / "us.csv", [row(referring_npi=source.npi, patient_dob="01/02/1970", received_date="11/21/2025")]
    )
    assert "'01/02/1970' is not a date (expected YYYY-MM-DD)" in refused(path)
    run(path, "--date-format", "%m/%d/%Y")
    item = Referral.objects.get()
    assert item.patient.birth_date == dt.date(1970, 1, 2)
    assert item.received_at == dt.datetime(2025, 11, 21, tzinfo=NY)


def test_row_errors_name_the_row_and_the_column(tmp_path, users):
    source = provider()
    rows = [row(referring_npi=source.npi, mrn=f"M{i}") for i in range(5)]
    rows.append(row(referring_npi=source.npi, patient_dob="13/45/2020"))  # row 7: the header is row 1
    rows.append(row(referring_npi="1234567890", received_date="2099-01-01", urgency="soon", diagnosis_codes="XYZ"))
    path = write_csv(tmp_path / "bad.csv", rows)
    message = refused(path)
    assert "row 7, column patient_dob: '13/45/2020' is not a date (expected YYYY-MM-DD)" in message
    assert "row 8, column referring_npi: '1234567890' is not a valid NPI" in message
    assert "row 8, column received_date: '2099-01-01' is in the future" in message
    assert "row 8, column urgency: 'soon' is not an urgency" in message
    assert "row 8, column diagnosis_codes: 'XYZ' is not an ICD-10-CM code" in message
    assert "Nothing was imported: 2 rows have errors" in message


def test_a_mapped_column_is_named_as_in_the_file(tmp_path, users):
    path = tmp_path / "mapped.csv"
    path.write_text(
        "patient_first_name,patient_last_name,DOB,referring_npi,received_date,reason\n"
        f"Pat,Doe,1970-13-01,{provider().npi},2025-11-21,Knee\n",
        encoding="utf-8",
    )
    message = refused(path, "--map", "DOB=patient_dob")
    assert "row 2, column DOB (patient_dob): '1970-13-01' is not a date (expected YYYY-MM-DD)" in message


def test_one_bad_row_imports_nothing(tmp_path, users):
    source = provider()
    rows = [row(referring_npi=source.npi, patient_last_name=f"Doe{i}") for i in range(20)]
    rows[13]["patient_last_name"] = ""
    path = write_csv(tmp_path / "referrals.csv", rows)
    before = counts()
    message = refused(path)
    assert "row 15, column patient_last_name: is empty, and it is required" in message
    assert counts() == before
    source.refresh_from_db()
    assert source.last_referral_on is None


def test_dry_run_writes_nothing_and_reports_what_would_happen(tmp_path, users):
    source = provider()
    path = write_csv(
        tmp_path / "referrals.csv", [row(referring_npi=source.npi, patient_last_name=f"D{i}") for i in range(3)]
    )
    before = counts()
    out, _ = run(path, "--dry-run")
    assert "dry run" in out and "would create: 3 referrals" in out and "patients: 3 new" in out
    assert counts() == before
    source.refresh_from_db()
    assert source.last_referral_on is None


def test_providers_are_matched_by_npi_then_by_name_and_address(tmp_path, users):
    by_npi = provider(first_name="Bo", last_name="Chen")
    by_address = provider(
        first_name="Ana", last_name="Silvestri", npi="", address_line1="6800 Perimeter Drive", postal_code="43017"
    )
    provider(first_name="Ana", last_name="Silvestri", address_line1="1 Elsewhere Rd", postal_code="44101")
    path = write_csv(
        tmp_path / "referrals.csv",
        [
            row(referring_npi=by_npi.npi, patient_last_name="One"),
            row(referring_name="Silvestri, Ana MD", referring_address="6800 Perimeter Dr, Dublin, OH 43017",
                patient_last_name="Two"),
            row(referring_name="Dr. Ana Silvestri", referring_address="6800 PERIMETER DR.", referring_zip="43017",
                patient_last_name="Three"),
        ],
    )  # fmt: skip
    run(path)
    sources = dict(Referral.objects.values_list("patient__last_name", "referring_provider_id"))
    assert sources == {"One": by_npi.pk, "Two": by_address.pk, "Three": by_address.pk}


def test_a_provider_at_a_practice_location_is_matched_by_that_address(tmp_path, users):
    source = provider(first_name="Lee", last_name="Park")
    office = practice(location={"address_line1": "4100 Riverside Drive", "city": "Columbus", "postal_code": "43220"})
    affiliation_set(provider=source, practice=office, is_primary=True)
    path = write_csv(
        tmp_path / "referrals.csv",
        [row(referring_name="Lee Park", referring_address="4100 Riverside Dr Suite 200", referring_zip="43220")],
    )
    run(path)
    assert Referral.objects.get().referring_provider == source


def test_unknown_providers_are_listed_for_review_and_never_created(tmp_path, users):
    known = provider()
    unknown = next_npi()
    providers_before = ProviderPractice.objects.count(), type(known).objects.count()
    path = write_csv(
        tmp_path / "referrals.csv",
        [
            row(referring_npi=known.npi),
            row(referring_npi=unknown, patient_last_name="A"),
            row(referring_npi=unknown, patient_last_name="B"),
            row(referring_name="Zed Nobody", referring_zip="43017", patient_last_name="C"),
            row(referring_npi=unknown, patient_last_name="D", patient_dob="1970-02-31"),
        ],
    )
    message = refused(path)
    assert "row 6, column patient_dob: '1970-02-31' is not a date" in message  # every problem of a row is told
    assert f"row 6, column referring_npi: there is no referring provider with NPI {unknown}" in message
    assert f"row 3, column referring_npi: there is no referring provider with NPI {unknown} in the directory" in message
    assert "(listed for review)" in message
    assert "row 5, column referring_name: there is no referring provider named 'Zed Nobody'" in message
    assert "Referring providers to review" in message
    assert f"NPI {unknown}: 3 row(s), first row 3" in message
    assert "Zed Nobody, 43017: 1 row(s), first row 5" in message
    assert (ProviderPractice.objects.count(), type(known).objects.count()) == providers_before
    assert Referral.objects.count() == 0


def test_accept_valid_imports_the_good_rows_and_writes_the_rejected_ones(tmp_path, users):
    source = provider()
    rows = [row(referring_npi=source.npi, patient_last_name=f"Doe{i}", external_id=f"E{i}") for i in range(4)]
    rows[2].update(patient_dob="not a date", reason='=HYPERLINK("http://evil.example","click")')
    path = write_csv(tmp_path / "referrals.csv", rows)
    rejected = tmp_path / "out" / "rejected.csv"
    rejected.parent.mkdir()
    out, err = run(path, "--accept-valid", "--rejected", str(rejected))
    assert "created: 3 referrals" in out and "rejected: 1" in out
    assert "row 4, column patient_dob: 'not a date' is not a date" in err
    assert Referral.objects.count() == 3
    assert not Referral.objects.filter(external_id="E2").exists()
    lines = list(csv.reader(rejected.open(encoding="utf-8")))
    assert lines[0] == [*HEADER, "import_row", "import_errors"]
    assert len(lines) == 2
    bad = dict(zip(lines[0], lines[1], strict=True))
    assert bad["reason"] == '\'=HYPERLINK("http://evil.example","click")'  # neutralized for spreadsheets
    assert bad["import_row"] == "4" and "is not a date" in bad["import_errors"]
    audit = AuditEvent.objects.get(action="referral.import")
    assert audit.detail["created"] == 3 and audit.detail["rejected"] == 1
    assert "Doe" not in str(audit.detail)


def test_accept_valid_writes_the_rejected_rows_next_to_the_file_by_default(tmp_path, users):
    path = write_csv(tmp_path / "march.csv", [row(referring_npi=provider().npi), row(patient_dob="")])
    run(path, "--accept-valid")
    assert (tmp_path / "march-rejected.csv").exists()
    assert Referral.objects.count() == 1


def test_a_corrected_rejected_file_imports_the_formula_text_as_it_was(tmp_path, users):
    source = provider()
    rows = [row(referring_npi=source.npi, patient_dob="1970-02-30", reason="=SUM(A1:A2)", external_id="E9")]
    path = write_csv(tmp_path / "referrals.csv", rows)
    rejected = tmp_path / "rejected.csv"
    run(path, "--accept-valid", "--rejected", str(rejected))
    text = rejected.read_text(encoding="utf-8").replace("1970-02-30", "1970-02-28")
    rejected.write_text(text, encoding="utf-8")
    run(rejected)
    assert Referral.objects.get().reason == "=SUM(A1:A2)"


def test_importing_the_same_file_again_creates_nothing(tmp_path, users):
    source = provider()
    rows = [
        row(referring_npi=source.npi, external_id="EHR-7"),
        row(referring_npi=source.npi, patient_last_name="Roe", external_id=""),  # keyed by a hash of its fields
    ]
    path = write_csv(tmp_path / "referrals.csv", rows)
    run(path)
    before = counts()[:3]
    out, _ = run(path)
    assert "created: 0 referrals" in out and "already imported (skipped): 2" in out
    assert counts()[:3] == before
    hashed = Referral.objects.get(patient__last_name="Roe").idempotency_key
    assert hashed.startswith("import:sha256:") and len(hashed) == len("import:sha256:") + 64


def test_a_row_repeated_in_the_file_is_imported_once(tmp_path, users):
    source = provider()
    path = write_csv(tmp_path / "referrals.csv", [row(referring_npi=source.npi)] * 3)
    out, _ = run(path)
    assert "created: 1 referrals" in out and "already imported (skipped): 2" in out


def test_patients_are_matched_as_patient_resolve_does(tmp_path, users):
    source = provider()
    on_file = Patient.objects.create(first_name="Ann", last_name="Lee", birth_date=dt.date(1980, 5, 6), mrn="M1")
    no_mrn = Patient.objects.create(first_name="Bea", last_name="Kim", birth_date=dt.date(1981, 5, 6))
    path = write_csv(
        tmp_path / "referrals.csv",
        [
            row(referring_npi=source.npi, patient_first_name="Annie", patient_last_name="Lee", mrn="M1",
                external_id="1"),
            row(referring_npi=source.npi, patient_first_name="Bea", patient_last_name="Kim", patient_dob="1981-05-06",
                mrn="M2", external_id="2"),
            row(referring_npi=source.npi, patient_first_name="Ann", patient_last_name="Lee", patient_dob="1980-05-06",
                mrn="M3", external_id="3"),
            row(referring_npi=source.npi, patient_first_name="New", patient_last_name="Person", mrn="M4",
                external_id="4"),
            row(referring_npi=source.npi, patient_first_name="New", patient_last_name="Person", external_id="5"),
        ],
    )  # fmt: skip
    run(path)
    patient_of = {r.external_id: r.patient for r in Referral.objects.select_related("patient")}
    assert patient_of["1"] == on_file  # same MRN
    assert patient_of["2"] == no_mrn  # same name and date of birth, no MRN on file: the MRN is filled in
    no_mrn.refresh_from_db()
    assert no_mrn.mrn == "M2" and no_mrn.version == 2
    assert patient_of["3"] not in (on_file, no_mrn)  # same name and birth date but a conflicting MRN: a new patient
    assert patient_of["4"] == patient_of["5"]  # created by the file, then matched by name and date of birth
    assert Patient.objects.count() == 4


def test_history_rows_land_in_their_state_with_one_import_event_and_sla_owner_and_due(tmp_path, users):
    source = provider()
    doctor = clinician(user=users["clinician"])
    place = location()
    coordinator = users["coordinator"]
    path = write_csv(
        tmp_path / "history.csv",
        [
            row(referring_npi=source.npi, external_id="R", received_date="2025-11-21"),
            row(referring_npi=source.npi, external_id="S", status="Seen", clinician=doctor.npi, location="main campus"),
            row(referring_npi=source.npi, external_id="C", status="closed", clinician="Ortega, Ana"),
            row(referring_npi=source.npi, external_id="D", status="declined"),
            row(referring_npi=source.npi, external_id="L", status="lost"),
            row(referring_npi=source.npi, external_id="P", status="report sent"),
        ],
    )
    referral_import(path=path, by=coordinator)
    got = {r.external_id: r for r in Referral.objects.all()}
    assert got["R"].state == State.RECEIVED and got["R"].due_at == dt.datetime(2025, 11, 24, 17, tzinfo=NY)
    assert got["R"].owner == coordinator and got["R"].coordinator == coordinator
    assert got["S"].state == State.SEEN and got["S"].owner == users["clinician"] and got["S"].location == place
    assert got["S"].due_at is not None
    assert got["C"].state == State.CLOSED and got["C"].due_at is None and got["C"].clinician == doctor
    assert got["D"].state == State.DECLINED and got["D"].decline_reason
    assert got["L"].state == State.LOST and got["L"].lost_reason == "other"
    assert got["P"].state == State.REPORT_SENT
    for item in got.values():
        assert list(item.events.values_list("action", "to_state")) == [("import", item.state)]
        assert item.events.get().by == coordinator


def test_unknown_status_location_and_clinician_are_row_errors(tmp_path, users):
    path = write_csv(
        tmp_path / "referrals.csv",
        [row(referring_npi=provider().npi, status="pending", location="Mars office", clinician="Dr. Who")],
    )
    message = refused(path)
    assert "row 2, column status: 'pending' is not a status (expected received, accepted" in message
    assert "row 2, column location: there is no practice location named 'Mars office'" in message
    assert "row 2, column clinician: 'Dr. Who' is no clinician's NPI or name" in message


def test_formula_cells_are_kept_as_text(tmp_path, users):
    source = provider()
    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-3", "@SUM(A1)"]
    path = write_csv(
        tmp_path / "referrals.csv",
        [row(referring_npi=source.npi, reason=text, external_id=str(i)) for i, text in enumerate(formulas)],
    )
    run(path)
    assert sorted(Referral.objects.values_list("reason", flat=True)) == sorted(formulas)


def _workbook(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for values in rows:
        sheet.append(values)
    book.save(path)
    return path


def test_an_xlsx_workbook_imports_with_date_cells_numbers_and_formulas_as_text(tmp_path, users):
    source = provider()
    header = ["patient_first_name", "patient_last_name", "patient_dob", "mrn", "referring_npi", "received_date",
              "reason", "external_id"]  # fmt: skip
    path = _workbook(
        tmp_path / "referrals.xlsx",
        [
            header,
            ["Pat", "Doe", dt.datetime(1970, 1, 2), 1234, int(source.npi), dt.date(2025, 11, 21), "Knee", 11],
            ["Sue", "Roe", "1971-03-04", "M9", source.npi, "2025-11-20", "=1+2", "12"],
        ],
    )
    out, _ = run(path)
    assert "(XLSX)" in out and "created: 2 referrals" in out
    pat = Referral.objects.get(external_id="11")
    assert pat.patient.birth_date == dt.date(1970, 1, 2) and pat.patient.mrn == "1234"
    assert pat.referring_provider == source
    assert Referral.objects.get(external_id="12").reason == "=1+2"  # the formula's text, never its result


def test_an_xlsx_with_bad_rows_reports_them_by_sheet_row(tmp_path, users):
    path = _workbook(
        tmp_path / "referrals.xlsx",
        [HEADER, [], list(row(referring_npi=provider().npi).values()), list(row(patient_dob="31/31/1999").values())],
    )
    message = refused(path)
    assert "row 4, column patient_dob: '31/31/1999' is not a date (expected YYYY-MM-DD)" in message
    assert Referral.objects.count() == 0


def test_windows_1252_text_is_read(tmp_path, users):
    path = tmp_path / "excel.csv"
    text = "patient_first_name;patient_last_name;patient_dob;referring_npi;received_date;reason\r\n"
    text += f"José;Muñoz;1970-01-02;{provider().npi};2025-11-21;Rückenschmerzen\r\n"
    path.write_bytes(text.encode("cp1252"))
    run(path)
    item = Referral.objects.get()
    assert (item.patient.first_name, item.patient.last_name, item.reason) == ("José", "Muñoz", "Rückenschmerzen")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "a PNG image"),
        (b"%PDF-1.7\n", "a PDF document"),
        (b"\x00\x01\x02binary", "binary"),
        (b"", "empty"),
    ],
)
def test_a_file_that_is_not_a_spreadsheet_is_refused(tmp_path, users, content, said):
    path = tmp_path / "referrals.csv"
    path.write_bytes(content)
    message = refused(path)
    assert said in message and "Nothing was imported" in message


def test_a_zip_that_is_not_a_workbook_is_refused(tmp_path, users):
    path = tmp_path / "referrals.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert "ZIP archive that is not an Excel workbook" in refused(path)
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert "damaged ZIP" in refused(damaged)


def test_a_workbook_with_a_broken_sheet_is_refused(tmp_path, users):
    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<not-a-workbook")
    before = counts()
    message = refused(path)
    assert "The Excel workbook cannot be read" in message
    assert counts() == before


def test_a_header_without_rows_is_refused(tmp_path, users):
    path = write_csv(tmp_path / "empty.csv", [])
    assert "no referrals under it" in refused(path)


def test_the_import_audits_counts_only(tmp_path, users):
    path = write_csv(tmp_path / "referrals.csv", [row(referring_npi=provider().npi, mrn="SECRET-MRN")])
    run(path)
    audit = AuditEvent.objects.get(action="referral.import")
    assert audit.detail["created"] == 1 and audit.detail["patients_created"] == 1
    assert "SECRET-MRN" not in str(audit.detail) and "Doe" not in str(audit.detail)


def test_the_refloop_command_imports_in_its_own_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"REFLOOP_SECRET_KEY": "x" * 50, "REFLOOP_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)})

    def refloop(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "refloop.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    assert refloop("migrate", "-v0").returncode == 0
    npi = "1000000004"
    created = refloop("shell", "-c", f"from tests.directory.factories import provider; provider(npi='{npi}')")
    assert created.returncode == 0, created.stderr
    path = write_csv(tmp_path / "referrals.csv", [row(referring_npi=npi, external_id="X1")])
    unknown = write_csv(tmp_path / "unknown.csv", [row(referring_npi="1000000012")])

    result = refloop("import-referrals", str(unknown))
    assert result.returncode == 1
    assert "there is no referring provider with NPI 1000000012" in result.stderr
    assert "Nothing was imported" in result.stderr

    dry = refloop("import-referrals", str(path), "--dry-run")
    assert dry.returncode == 0 and "would create: 1 referrals" in dry.stdout
    first = refloop("import-referrals", str(path))
    assert first.returncode == 0 and "created: 1 referrals" in first.stdout, first.stderr
    again = refloop("import-referrals", str(path))
    assert again.returncode == 0 and "already imported (skipped): 1" in again.stdout


def test_the_page_refuses_a_50_mb_file_before_reading_it(client_as, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    line = ",".join(row(referring_npi="1000000004").values()) + "\n"
    body = ",".join(HEADER).encode() + b"\n" + line.encode() * (50 * 1024 * 1024 // len(line) + 1)
    assert len(body) > 50 * 1024 * 1024
    before = counts()
    response = client_as("coordinator").post(
        "/referrals/import/", {"file": SimpleUploadedFile("big.csv", body, content_type="text/csv")}
    )
    assert response.status_code == 413
    assert "files up to 25 MB can be imported here" in response.content.decode()
    assert counts() == before


def test_a_date_format_that_is_not_one_is_refused(tmp_path, users):
    path = write_csv(tmp_path / "referrals.csv", [row(referring_npi=provider().npi)])
    with pytest.raises(ImportRefused, match="does not give a whole date"):
        referral_import(path=path, date_format="%Y")


def test_verbose_output_says_how_long_each_part_took(tmp_path, users, monkeypatch):
    monkeypatch.setattr("refloop.referrals.importer.BULK_INDEX_MIN_ROWS", 2)  # indexes built again at the end
    source = provider()
    rows = [row(referring_npi=source.npi, external_id=f"T{i}", patient_last_name=f"Doe{i}") for i in range(3)]
    out, err = run(write_csv(tmp_path / "timed.csv", rows), "--verbosity", "2")
    assert "3 rows read, 3 referrals so far" in err
    (line,) = [line.strip() for line in out.splitlines() if line.strip().startswith("time:")]
    parts = [part.rsplit(" ", 2) for part in line.removeprefix("time: ").split("; ")]
    assert [name for name, _seconds, unit in parts] == [
        "rows read, checked and written", "indexes built", "dashboard sums", "committed",
    ] and {unit for _name, _seconds, unit in parts} == {"s"}  # fmt: skip
    assert all(float(seconds) >= 0 for _name, seconds, _unit in parts)
    quiet, _ = run(write_csv(tmp_path / "again.csv", rows))  # the same file: nothing written; and no time line
    assert "already imported (skipped): 3" in quiet and "time:" not in quiet
    _, again = run(write_csv(tmp_path / "again.csv", rows), "-v", "2")
    assert "3 rows read, 0 referrals so far" in again


def test_the_command_rests_the_garbage_collector_while_it_imports(tmp_path, users, monkeypatch):
    from refloop.referrals.management.commands import import_referrals as command

    collecting = []
    imported = command.referral_import

    def referral_import(**options):
        collecting.append(gc.isenabled())
        return imported(**options)

    monkeypatch.setattr(command, "referral_import", referral_import)
    source = provider()
    assert gc.isenabled()
    out, _ = run(write_csv(tmp_path / "ok.csv", [row(referring_npi=source.npi)]))
    assert "created: 1 referrals" in out and gc.isenabled()
    not_a_spreadsheet = tmp_path / "scan.csv"
    not_a_spreadsheet.write_bytes(b"%PDF-1.7\n" + bytes(range(256)))
    assert "Nothing was imported" in refused(not_a_spreadsheet)  # refused inside the import: the collector is back
    assert collecting == [False, False] and gc.isenabled()
    gc.disable()
    try:  # a process that had it off keeps it off
        run(write_csv(tmp_path / "more.csv", [row(referring_npi=source.npi, external_id="M")]))
        assert not gc.isenabled()
    finally:
        gc.enable()
