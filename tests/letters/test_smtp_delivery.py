"""A letter by email goes through a real SMTP server on loopback, sent by the worker, never by the page."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from pypdf import PdfReader

from refloop.accounts.models import AuditEvent
from refloop.letters import services
from refloop.letters.models import Delivery, DeliveryStatus, Letter, LetterKind
from tests.letters.conftest import run_worker
from tests.letters.factories import emailing_provider, letterhead, only_rules
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db(transaction=True)


def pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def received_referral(users):
    letterhead()
    only_rules("receive")
    return referral(
        by=users["coordinator"],
        source=emailing_provider(),
        patient_data={"first_name": "Mira", "last_name": "Quayle", "birth_date": dt.date(1961, 4, 9)},
        reason="Right knee pain; MRI shows a medial meniscus tear",
    )


def test_the_acknowledgement_waits_for_the_worker_then_arrives_with_its_pdf(users, smtp, settings):
    settings.LETTERS_EMAIL_ATTACH_PDF = True
    item = received_referral(users)
    delivery = Delivery.objects.get(letter__referral=item)
    assert delivery.status == DeliveryStatus.QUEUED and smtp.messages == []  # the page sent nothing

    run_worker()

    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["dr.castellanos@dublin-fm.example"]
    assert message["To"] == "dr.castellanos@dublin-fm.example"
    subject = message["Subject"]
    assert "Receipt acknowledgement" in subject and "Riverside Orthopaedics" in subject
    for phi in ("Mira", "Quayle", "1961", "knee"):
        assert phi not in subject
    assert message["Message-ID"] == Delivery.objects.get().message_id
    attachments = [part for part in message.walk() if part.get_content_type() == "application/pdf"]
    assert len(attachments) == 1
    content = attachments[0].get_payload(decode=True)
    assert content.startswith(b"%PDF-")
    text = pdf_text(content)
    assert "Mira Quayle" in text and "04/09/1961" in text
    assert "Riverside Orthopaedics" in text and "medial meniscus tear" in text
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and delivery.sent_at is not None
    assert delivery.answer.startswith("250")
    assert [a.outcome for a in delivery.attempt_log.all()] == ["sent"]
    assert AuditEvent.objects.filter(action="letters.delivery.sent", target_id=str(delivery.letter_id)).exists()


def test_by_default_an_email_carries_a_secure_expiring_link_not_the_pdf(users, smtp, client):
    item = received_referral(users)
    run_worker()

    _, message = smtp.messages[0]
    assert not [part for part in message.walk() if part.get_content_type() == "application/pdf"]
    body = message.get_payload(decode=True).decode() if not message.is_multipart() else message.get_body().get_content()
    assert "Quayle" not in body and "Mira" not in body
    link = re.search(r"https://refloop\.riverside-ortho\.example(/l/\S+/)", body).group(1)

    page = client.get(link)
    assert page.status_code == 200 and b"Receipt acknowledgement" in page.content
    download = client.get(link + "1/")
    assert download["Content-Type"] == "application/pdf"
    assert "Mira Quayle" in pdf_text(download.content)
    letter = Letter.objects.get(referral=item)
    assert AuditEvent.objects.filter(action="letters.letter.download", target_id=str(letter.pk)).count() == 1


def test_a_letter_a_person_writes_goes_the_same_way(users, smtp, settings):
    settings.LETTERS_EMAIL_ATTACH_PDF = True
    item = received_referral(users)
    run_worker()
    letter = services.letter_send(
        by=users["coordinator"],
        referral=item,
        kind=LetterKind.FREE,
        recipient="referring_provider",
        title="About your patient's imaging",
        text="Please send the MRI films to our Main campus.",
    )
    run_worker()
    assert len(smtp.messages) == 2
    _, message = smtp.messages[1]
    pdf = next(part for part in message.walk() if part.get_content_type() == "application/pdf")
    text = pdf_text(pdf.get_payload(decode=True))
    assert "About your patient's imaging" in text and "Please send the MRI films" in text
    assert letter.deliveries.get().status == DeliveryStatus.SENT
