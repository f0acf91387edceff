"""The import pages: upload, preview, map, dry run, import; the rejected rows download; who may use them."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from refloop.accounts.models import AuditEvent
from refloop.referrals.models import Patient, Referral, ReferralEvent
from tests.directory.factories import provider
from tests.referrals.test_import_referrals import HEADER, row

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def csv_bytes(rows: list[dict], header: list[str] | None = None) -> bytes:
    header = header or HEADER
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for item in rows:
        writer.writerow([item.get(name, "") for name in header])
    return buffer.getvalue().encode()


def upload(client, content: bytes, name: str = "referrals.csv"):
    return client.post("/referrals/import/", {"file": SimpleUploadedFile(name, content, content_type="text/csv")})


def counts() -> tuple[int, int, int]:
    return Patient.objects.count(), Referral.objects.count(), ReferralEvent.objects.count()


def uploaded_files(tmp_path) -> list[str]:
    folder = tmp_path / "imports" / "referrals"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_upload_preview_map_dry_run_then_import(client_as, tmp_path):
    source = provider()
    client = client_as("coordinator")
    assert "Upload and preview" in client.get("/referrals/import/").content.decode()

    header = ["First", "Last", "DOB", "referring_npi", "received_date", "reason", "Notes"]
    rows = [
        {"First": "Pat", "Last": "Doe", "DOB": "1970-01-02", "referring_npi": source.npi,
         "received_date": "2025-11-21", "reason": "Knee", "Notes": "call first"},
        {"First": "Sue", "Last": "Roe", "DOB": "1971-03-04", "referring_npi": source.npi,
         "received_date": "2025-11-20", "reason": "Hip", "Notes": ""},
    ]  # fmt: skip
    response = upload(client, csv_bytes(rows, header))
    assert response.status_code == 302
    url = response["Location"]
    token = url.rstrip("/").rsplit("/", 1)[-1]

    page = client.get(url).content.decode()
    assert "Pat · Sue" in page  # the first values of the column
    selected = re.findall(r'<option value="([a-z_]*)"( selected)?', page)
    chosen = [value for value, mark in selected if mark]
    assert chosen == ["", "", "", "referring_npi", "received_date", "reason", ""]  # named columns mapped themselves

    mapping = {"map-0": "patient_first_name", "map-1": "patient_last_name", "map-2": "patient_dob",
               "map-3": "referring_npi", "map-4": "received_date", "map-5": "reason", "map-6": ""}  # fmt: skip
    before = counts()
    dry = client.post(f"/referrals/import/{token}/dry-run/", mapping)
    assert dry.status_code == 200
    text = dry.content.decode()
    assert "Dry run: nothing was written" in text and re.search(r"Referrals to create</dt>\s*<dd>2\b", text)
    assert f'formaction="/referrals/import/{token}/run/"' in text
    assert counts() == before

    done = client.post(f"/referrals/import/{token}/run/", mapping)
    assert done.status_code == 200
    assert re.search(r"2 referrals\s+imported", done.content.decode())
    assert counts() == (before[0] + 2, before[1] + 2, before[2] + 2)
    assert set(Referral.objects.values_list("reason", flat=True)) == {"Knee", "Hip"}
    assert Referral.objects.filter(coordinator__username="coordinator").count() == 2
    assert uploaded_files(tmp_path) == []  # the patient data does not linger once imported
    assert AuditEvent.objects.filter(action="referral.import", actor__username="coordinator").count() == 1
    gone = client.get(url)
    assert gone.status_code == 302 and gone["Location"] == "/referrals/import/"


def test_rows_with_errors_import_nothing_then_the_valid_ones_with_a_neutralized_download(client_as, tmp_path):
    source = provider()
    client = client_as("manager")
    rows = [
        row(referring_npi=source.npi, patient_last_name="Good", external_id="1"),
        row(referring_npi=source.npi, patient_dob="13/45/2020", reason="=HYPERLINK(\"http://evil.example\")",
            external_id="2"),
        row(referring_npi="1000000012", patient_last_name="Unknown", external_id="3"),
    ]  # fmt: skip
    token = upload(client, csv_bytes(rows))["Location"].rstrip("/").rsplit("/", 1)[-1]
    before = counts()

    refused = client.post(f"/referrals/import/{token}/run/", {})
    text = refused.content.decode()
    assert refused.status_code == 200 and "Nothing was imported" in text
    assert "row 3, column patient_dob: &#x27;13/45/2020&#x27; is not a date (expected YYYY-MM-DD)" in text
    assert "Referring providers to review" in text and "1000000012" in text
    assert counts() == before

    accepted = client.post(f"/referrals/import/{token}/run/", {"accept_valid": "on"})
    text = accepted.content.decode()
    assert re.search(r"1 referral\s+imported, 2 rows left out", text)
    assert Referral.objects.get().external_id == "1"
    download = client.get(f"/referrals/import/{token}/rejected.csv")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    content = b"".join(download.streaming_content).decode()
    lines = list(csv.reader(io.StringIO(content)))
    assert [line[-2] for line in lines[1:]] == ["3", "4"]
    bad = dict(zip(lines[0], lines[1], strict=True))
    assert bad["reason"] == '\'=HYPERLINK("http://evil.example")'
    assert AuditEvent.objects.filter(action="referral.import_rejected_download").exists()


def test_a_file_that_is_not_a_spreadsheet_is_refused_on_upload(client_as, tmp_path):
    client = client_as("coordinator")
    response = upload(client, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, name="photo.csv")
    assert response.status_code == 400
    assert "The file is a PNG image, not a CSV or Excel (.xlsx) file." in response.content.decode()
    assert uploaded_files(tmp_path) == []


def test_an_upload_without_a_file_is_refused(client_as):
    response = client_as("coordinator").post("/referrals/import/", {})
    assert response.status_code == 400 and "Choose a CSV or Excel" in response.content.decode()


def test_an_xlsx_upload_is_previewed(client_as):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(HEADER)
    book.active.append(list(row(referring_npi=provider().npi, reason="=1+2").values()))
    buffer = io.BytesIO()
    book.save(buffer)
    client = client_as("coordinator")
    response = upload(client, buffer.getvalue(), name="referrals.xlsx")
    assert response.status_code == 302, response.content.decode()
    url = response["Location"]
    page = client.get(url).content.decode()
    assert "xlsx" in page and "=1+2" in page


def test_a_bad_date_format_is_reported_not_a_server_error(client_as):
    client = client_as("coordinator")
    token = upload(client, csv_bytes([row(referring_npi=provider().npi)]))["Location"].rstrip("/").rsplit("/", 1)[-1]
    response = client.post(f"/referrals/import/{token}/dry-run/", {"date_format": "%Y"})
    assert response.status_code == 400 and "does not give a whole date" in response.content.decode()


def test_an_upload_belongs_to_the_session_that_made_it(client_as):
    owner = client_as("coordinator")
    token = upload(owner, csv_bytes([row(referring_npi=provider().npi)]))["Location"].rstrip("/").rsplit("/", 1)[-1]
    other = client_as("manager")
    assert other.get(f"/referrals/import/{token}/").status_code == 404
    assert other.post(f"/referrals/import/{token}/run/", {}).status_code == 404
    assert Referral.objects.count() == 0
    assert owner.get("/referrals/import/not-a-token/").status_code == 404


def test_a_liaison_gets_403_and_nothing_changes(client_as):
    coordinator = client_as("coordinator")
    content = csv_bytes([row(referring_npi=provider().npi)])
    token = upload(coordinator, content)["Location"].rstrip("/").rsplit("/", 1)[-1]
    liaison = client_as("liaison")
    assert liaison.get("/referrals/import/").status_code == 403
    assert upload(liaison, content).status_code == 403
    assert liaison.get(f"/referrals/import/{token}/").status_code == 403
    assert liaison.post(f"/referrals/import/{token}/run/", {}).status_code == 403
    assert liaison.get(f"/referrals/import/{token}/rejected.csv").status_code == 403
    assert Referral.objects.count() == 0
