"""The consult report: written by the clinician, signed with their name, credentials and time, then sent.
Unsigned reports cannot be sent; the final report moves the referral to report sent once delivered; an
interim report keeps the loop open."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pypdf import PdfReader

from refloop.accounts.models import AuditEvent
from refloop.letters import services
from refloop.letters.models import ConsultReport, Delivery, DeliveryStatus, LetterKind, ReportStatus
from refloop.referrals.workflow import State
from tests.letters.conftest import run_worker
from tests.letters.factories import only_rules, seen_referral
from tests.referrals.factories import clinician

pytestmark = pytest.mark.django_db(transaction=True)

REPORT = {
    "findings": "Medial joint line tenderness; McMurray positive.",
    "assessment": "Degenerative medial meniscus tear.",
    "plan": "Physical therapy for six weeks.",
    "recommendations": "Continue NSAIDs as tolerated.",
    "is_final": "on",
}


@pytest.fixture
def doctor(users):
    return clinician(user=users["clinician"])


def write(client, referral, data=None):
    return client.post(f"/letters/referrals/{referral.pk}/report/", data or REPORT)


def test_an_unsigned_report_cannot_be_sent(users, doctor, client_as, smtp):
    referral = seen_referral(by=users["coordinator"], doctor=doctor)
    assert write(client_as("clinician"), referral).status_code == 302
    report = ConsultReport.objects.get()
    assert report.status == ReportStatus.DRAFT

    response = client_as("coordinator").post(f"/letters/reports/{report.pk}/send/")
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.status == ReportStatus.DRAFT
    assert not Delivery.objects.filter(letter__kind=LetterKind.CONSULT_REPORT).exists()
    with pytest.raises(services.LetterRefused, match="not signed"):
        services.report_send(report=report, by=users["coordinator"])


def test_the_clinician_signs_and_the_final_report_closes_the_report_step_once_delivered(
    users, doctor, client_as, smtp, settings
):
    settings.LETTERS_EMAIL_ATTACH_PDF = True
    only_rules()
    referral = seen_referral(by=users["coordinator"], doctor=doctor)
    clinician_client = client_as("clinician")
    write(clinician_client, referral)
    report = ConsultReport.objects.get()
    assert clinician_client.post(f"/letters/reports/{report.pk}/sign/").status_code == 302
    report.refresh_from_db()
    assert report.status == ReportStatus.SIGNED and report.signed_by == users["clinician"]
    assert report.signature == "Ana Ortega, MD" and report.signed_at is not None
    assert report.content_sha256 == report.content_digest()

    assert clinician_client.post(f"/letters/reports/{report.pk}/send/").status_code == 302
    referral.refresh_from_db()
    assert referral.state == State.SEEN  # queued, not yet delivered
    run_worker()

    referral.refresh_from_db()
    assert referral.state == State.REPORT_SENT and referral.report_sent_at is not None
    event = referral.events.get(action="send_report")
    assert event.by == users["clinician"]
    _, message = smtp.messages[0]
    pdf = next(p for p in message.walk() if p.get_content_type() == "application/pdf").get_payload(decode=True)
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Degenerative medial meniscus tear" in text and "Electronically signed by Ana Ortega, MD" in text
    for action in ("letters.report.sign", "letters.report.send", "letters.delivery.sent"):
        assert AuditEvent.objects.filter(action=action).exists(), action


def test_an_interim_report_keeps_the_loop_open(users, doctor, client_as, smtp, settings):
    settings.LETTERS_EMAIL_ATTACH_PDF = True
    only_rules()
    referral = seen_referral(by=users["coordinator"], doctor=doctor)
    write(client_as("clinician"), referral, REPORT | {"is_final": ""})
    report = ConsultReport.objects.get()
    services.report_sign(report=report, by=users["clinician"])
    services.report_send(report=report, by=users["clinician"])
    run_worker()
    referral.refresh_from_db()
    assert referral.state == State.SEEN
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_only_a_clinician_with_a_login_signs(users, doctor, client_as):
    referral = seen_referral(by=users["coordinator"], doctor=doctor)
    write(client_as("coordinator"), referral)
    report = ConsultReport.objects.get()
    assert client_as("coordinator").post(f"/letters/reports/{report.pk}/sign/").status_code == 403
    with pytest.raises(services.LetterRefused, match="clinician"):
        services.report_sign(report=report, by=users["admin"])  # admin may sign, but only as a clinician
    report.refresh_from_db()
    assert report.status == ReportStatus.DRAFT


def test_a_signed_report_is_frozen(users, doctor, client_as):
    referral = seen_referral(by=users["coordinator"], doctor=doctor)
    write(client_as("clinician"), referral)
    report = ConsultReport.objects.get()
    services.report_sign(report=report, by=users["clinician"])
    with pytest.raises(services.LetterRefused, match="signed"):
        services.report_save(referral=referral, report=report, data=REPORT | {"plan": "Surgery"}, by=users["clinician"])


def test_a_pdf_from_the_ehr_is_checked_by_its_content(users, doctor, client_as):
    referral = seen_referral(by=users["coordinator"], doctor=doctor)
    fake = SimpleUploadedFile("report.pdf", b"<html>not a pdf</html>", content_type="application/pdf")
    response = write(client_as("clinician"), referral, {"ehr_pdf": fake, "is_final": "on"})
    assert response.status_code == 400 and not ConsultReport.objects.exists()
    from refloop.letters.rendering import pdf_bytes

    real = SimpleUploadedFile("report.pdf", pdf_bytes("<p>EHR consult note</p>"), content_type="application/pdf")
    response = write(client_as("clinician"), referral, {"ehr_pdf": real, "is_final": "on"})
    assert response.status_code == 302
    assert ConsultReport.objects.get().ehr_pdf_sha256


def test_a_report_before_the_visit_is_refused(users, doctor):
    from tests.referrals.factories import referral as received

    item = received(by=users["coordinator"])
    with pytest.raises(services.LetterRefused, match="after the patient was seen"):
        services.report_save(referral=item, data=REPORT, by=users["clinician"])
