"""Fax through an HTTP gateway (deduped by the Idempotency-Key) and through email-to-fax."""

from __future__ import annotations

import pytest

from refloop.letters.models import Delivery, DeliveryStatus
from tests.directory.factories import provider
from tests.letters.conftest import run_worker
from tests.letters.factories import letterhead, only_rules
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db(transaction=True)


def faxed(users):
    letterhead()
    only_rules("receive")
    referral(by=users["coordinator"], source=provider(report_channel="fax", fax="(614) 555-0143"))
    return Delivery.objects.get()


def test_the_http_gateway_gets_the_pdf_and_its_answer_is_kept(users, fax_gateway):
    delivery = faxed(users)
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.gateway_ref == "fx-1"
    request = fax_gateway.received[0]
    assert request["key"] == delivery.message_id and request["auth"] == "Bearer fax-token"
    assert b'name="to"\r\n\r\n6145550143' in request["body"] and b"%PDF-" in request["body"]


def test_a_busy_gateway_is_retried_and_its_dedupe_makes_a_resend_safe(users, fax_gateway):
    fax_gateway.status = 503
    delivery = faxed(users)
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "HTTP 503" in delivery.answer and delivery.tries == 3
    fax_gateway.status = 200
    from refloop.letters.services import delivery_retry

    delivery_retry(delivery=delivery, by=users["coordinator"])
    run_worker()
    delivery_retry_again = Delivery.objects.get(pk=delivery.pk)
    assert delivery_retry_again.status == DeliveryStatus.DELIVERED and len(fax_gateway.received) == 1


def test_email_to_fax_sends_the_pdf_to_the_number_at_the_gateway(users, smtp, settings):
    settings.LETTERS_FAX_GATEWAY = "email:{number}@fax.example"
    delivery = faxed(users)
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    recipients, message = smtp.messages[0]
    assert recipients == ["6145550143@fax.example"]
    assert [p.get_content_type() for p in message.walk()].count("application/pdf") == 1
