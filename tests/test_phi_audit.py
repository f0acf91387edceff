"""Every page and download that shows patient data leaves an audit record naming what was read.

The walk runs on the demo practice (tiny scale): each entry of INVENTORY below is one page a person can open
(the referral page, the work queue, the patient type-ahead, attachments, consult reports and their documents,
letters and their PDFs, the delivery queue, the referring office's status page and its documents, the secure
letter link, the referral import preview and run, the insights drill-down, the search box, a source's page).
A list page writes ONE record (not one per row) naming the action, its filter and the referrals it showed, and
never a patient's name. The JSON API and FHIR are walked by their own tests under tests/interop/.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from refloop.accounts.models import AuditEvent
from refloop.letters import services as letter_services
from refloop.letters.models import Delivery, Letter, LetterKind, LetterLink, new_token, token_hash
from refloop.letters.selectors import sent_report_for_office
from refloop.referrals import services as referral_services
from refloop.referrals.importer import CANONICAL_FIELDS
from refloop.referrals.models import Patient, Referral
from refloop.referrals.workflow import OPEN_STATES, State
from tests.conftest import shared_demo

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@dataclass(frozen=True)
class Read:
    """One page of the inventory: who opens it, how, and the audit action it must leave."""

    page: str
    who: str  # a demo login, or "public" for a page reached by a token
    url: str
    action: str
    method: str = "get"
    data: dict | None = None
    lists: bool = False  # a list page: its record names the referrals shown


def _client(username: str) -> Client:
    client = Client()
    if username == "public":
        return client
    user = get_user_model().objects.get(username=username)
    device, _ = TOTPDevice.objects.get_or_create(user=user, confirmed=True, defaults={"name": "Test"})
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _head() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


demo_loaded = shared_demo(seed=11)


@pytest.fixture
def practice(db, demo_loaded, settings, tmp_path):
    """The tiny demo practice (seed 11), loaded once for this module; each test's writes are rolled back."""
    settings.DATA_DIR = tmp_path  # import uploads
    settings.MEDIA_ROOT = tmp_path / "media"


def _import_csv() -> bytes:
    provider_npi = Referral.objects.exclude(referring_provider=None).first().referring_provider.npi
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = list(CANONICAL_FIELDS)
    writer.writerow(header)
    good = {
        "patient_first_name": "Imogen",
        "patient_last_name": "Varga",
        "patient_dob": "1966-05-04",
        "referring_npi": provider_npi,
        "received_date": timezone.localdate().isoformat(),
        "reason": "Shoulder pain",
    }
    bad = good | {"patient_last_name": "Wexley", "patient_dob": "31/31/1999"}
    for row in (good, bad):
        writer.writerow([row.get(name, "") for name in header])
    return buffer.getvalue().encode()


def _inventory() -> list[Read]:
    """The pages, built on what the demo practice holds (a few records made here where the demo has none)."""
    open_referral = Referral.objects.filter(state__in=OPEN_STATES).select_related("patient").first()
    coordinator = get_user_model().objects.get(username="coordinator")
    attachment = referral_services.attachment_add(
        referral=open_referral,
        upload=SimpleUploadedFile("fax.pdf", PDF, content_type="application/pdf"),
        by=coordinator,
    )
    patient = open_referral.patient
    report = Letter.objects.filter(kind=LetterKind.CONSULT_REPORT).exclude(report=None).first().report
    letter = Letter.objects.exclude(referral=None).order_by("pk").first()
    delivery = Delivery.objects.order_by("pk").first()
    seen = Referral.objects.filter(state=State.SEEN).first()
    office_referral = (
        Referral.objects.exclude(referring_practice=None).filter(letters__kind=LetterKind.CONSULT_REPORT).first()
    )
    office = office_referral.referring_practice
    _, status_token = letter_services.status_link_create(practice=office, by=None)
    sent = next(
        (sent_report_for_office(office, pk) for pk in office_referral.letters.values_list("pk", flat=True)),
        None,
    )
    letter_token = new_token()
    LetterLink.objects.create(
        delivery=delivery, token_hash=token_hash(letter_token), expires_at=timezone.now() + dt.timedelta(days=7)
    )
    provider = open_referral.referring_provider or Referral.objects.exclude(referring_provider=None).first()
    start, end = (timezone.localdate() - dt.timedelta(days=330)), timezone.localdate()
    reads = [
        Read("work queue", "coordinator", "/referrals/?scope=all", "referral.list", lists=True),
        Read("work queue, page 2", "coordinator", "/referrals/?scope=all&page=2", "referral.list", lists=True),
        Read("referral page", "coordinator", f"/referrals/{open_referral.pk}/", "referral.view"),
        Read(
            "patient type-ahead on the intake form",
            "coordinator",
            "/referrals/new/patients/",
            "patient.search",
            method="post",
            data={"patient_last_name": patient.last_name, "patient_birth_date": patient.birth_date.isoformat()},
        ),
        Read(
            "attachment download",
            "coordinator",
            f"/referrals/{open_referral.pk}/attachments/{attachment.pk}/",
            "referral.attachment.download",
        ),
        Read("consult report page", "clinician", f"/letters/reports/{report.pk}/", "letters.report.view"),
        Read(
            "consult report as C-CDA",
            "clinician",
            f"/letters/reports/{report.pk}/consult-note.xml",
            "letters.report.download",
        ),
        Read("reports waiting and due", "clinician", "/letters/reports/", "letters.reports.list", lists=True),
        Read(
            "consult report editor",
            "clinician",
            f"/letters/referrals/{seen.pk}/report/",
            "letters.report.edit_view",
        ),
        Read("letter page", "coordinator", f"/letters/letters/{letter.pk}/", "letters.letter.view"),
        Read("letter PDF", "coordinator", f"/letters/letters/{letter.pk}/pdf/", "letters.letter.download"),
        Read(
            "new letter for a referral",
            "coordinator",
            f"/letters/referrals/{open_referral.pk}/new/",
            "letters.letter.compose",
        ),
        Read("delivery queue", "coordinator", "/letters/?queue=sent", "letters.delivery.list", lists=True),
        Read("delivery page", "coordinator", f"/letters/deliveries/{delivery.pk}/", "letters.delivery.view"),
        Read("referrer status page", "public", f"/r/{status_token}/", "letters.status_link.view", lists=True),
        Read("secure letter link", "public", f"/l/{letter_token}/", "letters.letter_link.view"),
        Read("secure letter link document", "public", f"/l/{letter_token}/1/", "letters.letter.download"),
        Read(
            "insights drill-down",
            "manager",
            f"/insights/referrals/?start={start:%Y-%m}&end={end:%Y-%m}",
            "referral.list",
            lists=True,
        ),
        Read("search box", "coordinator", f"/search/?q={patient.last_name}", "patient.search"),
        Read("source page timeline", "coordinator", f"/directory/providers/{provider.pk}/", "referral.list"),
        Read(
            "source page referral summary", "manager", f"/directory/providers/{provider.pk}/", "referral.source_summary"
        ),
        Read("source page referral summary (owner liaison)", "liaison", "", "referral.source_summary"),
    ]
    if sent is not None:
        reads.append(
            Read(
                "referrer status page document",
                "public",
                f"/r/{status_token}/reports/{sent.pk}/1/",
                "letters.report.download",
            )
        )
    if Delivery.objects.print_queue().exists():
        reads.append(Read("print batch PDF", "coordinator", "/letters/print/batch.pdf", "letters.print_batch"))
    return reads


def _liaison_source_url() -> str:
    from refloop.directory.models import ReferringProvider, Territory

    liaison = get_user_model().objects.get(username="liaison")
    owned = ReferringProvider.objects.filter(liaison=liaison).first()
    if owned is None:
        territories = Territory.objects.filter(liaison=liaison)
        owned = ReferringProvider.objects.filter(territory__in=territories).first()
    return f"/directory/providers/{owned.pk}/" if owned else ""


def test_every_page_that_shows_patient_data_leaves_an_audit_record(practice):
    missing, broken = [], []
    for read in _inventory():
        url = read.url or _liaison_source_url()
        if not url:
            continue
        before = _head()
        client = _client(read.who)
        response = client.post(url, read.data) if read.method == "post" else client.get(url, read.data)
        if response.status_code != 200:
            broken.append(f"{read.page}: HTTP {response.status_code}")
            continue
        events = list(AuditEvent.objects.filter(seq__gt=before, action=read.action))
        if not events:
            missing.append(f"{read.page} ({read.action})")
        elif read.lists:
            detail = events[0].detail
            shown = detail.get("shown", detail.get("referrals"))
            if not isinstance(shown, list):
                missing.append(f"{read.page}: the record does not list the referrals shown")
    assert broken == []
    assert missing == []


def test_the_referral_import_preview_run_and_rejected_rows_are_audited(practice):
    client = _client("coordinator")
    upload = client.post(
        "/referrals/import/", {"file": SimpleUploadedFile("referrals.csv", _import_csv(), content_type="text/csv")}
    )
    token = upload["Location"].rstrip("/").rsplit("/", 1)[-1]
    before = _head()
    assert client.get(f"/referrals/import/{token}/").status_code == 200
    assert AuditEvent.objects.filter(seq__gt=before, action="referral.import.preview").count() == 1
    before = _head()
    result = client.post(f"/referrals/import/{token}/run/", {"accept_valid": "on"})
    assert result.status_code == 200
    assert AuditEvent.objects.filter(seq__gt=before, action="referral.import").count() == 1
    assert Patient.objects.filter(last_name="Varga").exists()
    before = _head()
    assert client.get(f"/referrals/import/{token}/rejected.csv").status_code == 200
    assert AuditEvent.objects.filter(seq__gt=before, action="referral.import_rejected_download").count() == 1


def test_a_list_page_writes_one_record_with_the_referral_ids_and_no_patient_name(practice):
    client = _client("coordinator")
    before = _head()
    response = client.get("/referrals/", {"scope": "all", "queue": "not_contacted"})
    assert response.status_code == 200
    events = list(AuditEvent.objects.filter(seq__gt=before))
    assert [e.action for e in events] == ["referral.list"]  # one INSERT for the page, not one per row
    detail = events[0].detail
    shown = [row.pk for row in response.context["page"].object_list]
    assert len(shown) > 1 and detail["referrals"] == shown
    assert detail["filter"]["scope"] == "all" and detail["queue"] == response.context["queue"]
    text = json.dumps(detail)
    for patient in Patient.objects.filter(referrals__pk__in=shown).distinct():
        assert patient.last_name not in text and patient.first_name not in text


def test_the_status_page_record_names_the_referrals_the_office_saw(practice):
    office_referral = Referral.objects.exclude(referring_practice=None).first()
    _, token = letter_services.status_link_create(practice=office_referral.referring_practice, by=None)
    response = Client().get(f"/r/{token}/")
    assert response.status_code == 200
    event = AuditEvent.objects.filter(action="letters.status_link.view").first()
    assert event.actor is None
    assert set(event.detail["shown"]) == {row.referral.pk for row in response.context["rows"]}
    assert office_referral.pk in event.detail["shown"]
