"""A gateway that times out or refuses is retried with backoff, then the delivery waits for a person in the
failed queue, who can retry it or send it another way."""

from __future__ import annotations

import pytest

from refloop.accounts.models import AuditEvent
from refloop.letters.models import AttemptOutcome, Delivery, DeliveryChannel, DeliveryStatus
from tests.letters.conftest import free_port, run_worker
from tests.letters.factories import emailing_provider, letterhead, only_rules
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db(transaction=True)


def queued(users) -> Delivery:
    letterhead()
    only_rules("receive")
    referral(by=users["coordinator"], source=emailing_provider())
    return Delivery.objects.get()


def test_a_gateway_that_refuses_for_now_is_retried_then_the_delivery_fails(users, smtp):
    smtp.refuse_rcpt = "451 4.3.0 Mailbox temporarily unavailable"
    delivery = queued(users)
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.tries == 3  # the first attempt and one per wait in REFLOOP_DELIVERY_RETRY_SECONDS ("0,0")
    assert "Gave up after 3 attempts" in delivery.answer and "451" in delivery.answer
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == [AttemptOutcome.RETRY] * 3
    assert smtp.messages == []
    assert AuditEvent.objects.filter(action="letters.delivery.failed").count() == 1


def test_a_gateway_that_never_answers_times_out_and_is_retried(users, silent_port, settings):
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", silent_port, 1
    settings.LETTERS_EMAIL_ATTACH_PDF = True
    settings.LETTERS_RETRY_SECONDS = [0]
    delivery = queued(users)
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.tries == 2, delivery.answer
    assert "timed out" in delivery.answer


def test_a_closed_port_is_retried_with_the_configured_backoff(users, settings):
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.LETTERS_EMAIL_ATTACH_PDF = True
    settings.LETTERS_RETRY_SECONDS = [60, 300]
    delivery = queued(users)
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.tries == 1
    assert "could not reach" in delivery.answer
    wait = (delivery.next_attempt_at - delivery.attempt_log.get().started_at).total_seconds()
    assert 59 <= wait <= 62


def test_a_permanent_refusal_goes_straight_to_the_failed_queue(users, smtp):
    smtp.refuse_rcpt = "550 5.1.1 No such user"
    delivery = queued(users)
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.tries == 1
    assert "550" in delivery.answer


def test_a_person_retries_a_failed_delivery_from_the_failed_queue(users, smtp, client_as):
    smtp.refuse_rcpt = "550 5.1.1 No such user"
    delivery = queued(users)
    run_worker()
    client = client_as("coordinator")
    page = client.get("/letters/?queue=failed").content.decode()
    assert f'data-delivery="{delivery.pk}"' in page and "550 5.1.1 No such user" in page

    smtp.refuse_rcpt = ""
    response = client.post(f"/letters/deliveries/{delivery.pk}/retry/")
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and len(smtp.messages) == 1
    assert delivery.attempts == 2 and delivery.tries == 1
    assert AuditEvent.objects.filter(action="letters.delivery.retry", actor=users["coordinator"]).exists()


def test_a_person_redirects_a_failed_email_to_another_address(users, smtp, client_as):
    smtp.refuse_rcpt = "550 5.1.1 No such user"
    delivery = queued(users)
    run_worker()
    smtp.refuse_rcpt = ""
    response = client_as("coordinator").post(
        f"/letters/deliveries/{delivery.pk}/redirect/",
        {"channel": DeliveryChannel.EMAIL, "address": "frontdesk@dublin-fm.example"},
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.REDIRECTED
    replacement = delivery.replaced_by
    assert replacement.address == "frontdesk@dublin-fm.example" and replacement.letter_id == delivery.letter_id
    run_worker()
    replacement.refresh_from_db()
    assert replacement.status == DeliveryStatus.SENT
    assert [rcpt for rcpt, _ in smtp.messages] == [["frontdesk@dublin-fm.example"]]


def test_a_liaison_may_not_retry_deliveries(users, smtp, client_as):
    smtp.refuse_rcpt = "550 5.1.1 No such user"
    delivery = queued(users)
    run_worker()
    assert client_as("liaison").post(f"/letters/deliveries/{delivery.pk}/retry/").status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
