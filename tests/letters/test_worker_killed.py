"""A worker killed mid-send (SIGKILL: no cleanup, no goodbye) loses no letter and sends none twice.

The worker is its own process (`refloop worker --batch`) against the test database, the SMTP server stalls on
loopback, the test kills the worker while it waits, and a second worker run finishes the job after the lease.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pytest
from django.utils import timezone

from refloop.letters.models import AttemptOutcome, Delivery, DeliveryStatus
from tests.letters.conftest import database_for_other_process, worker_process
from tests.letters.factories import emailing_provider, letterhead, only_rules
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = 2


def worker_env(smtp) -> dict[str, str]:
    return {
        "REFLOOP_EMAIL_HOST": "127.0.0.1",
        "REFLOOP_EMAIL_PORT": str(smtp.port),
        "REFLOOP_EMAIL_TIMEOUT": "30",
        "REFLOOP_EMAIL_FROM": "letters@riverside-ortho.example",
        "REFLOOP_LETTERS_EMAIL_ATTACH_PDF": "1",
        "REFLOOP_DELIVERY_LEASE_SECONDS": str(LEASE),
        "REFLOOP_DELIVERY_RETRY_SECONDS": "0,0",
    }


def queued_acknowledgement(users) -> Delivery:
    letterhead()
    only_rules("receive")
    referral(by=users["coordinator"], source=emailing_provider())
    return Delivery.objects.get()


def kill_while_stalled(smtp, database_url: str) -> None:
    first = worker_process(database_url, worker_env(smtp))
    try:
        assert smtp.stalled.wait(60), "the worker never reached the SMTP server"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    smtp.release.set()


def wait_out_the_lease(database_url: str) -> None:
    time.sleep(LEASE + 1.5)


def test_killed_before_the_hand_over_it_is_sent_once_by_the_next_run(users, smtp, tmp_path):
    delivery = queued_acknowledgement(users)
    smtp.stall_at = "rcpt"  # the worker is waiting for RCPT TO's answer: nothing handed over yet
    with database_for_other_process(tmp_path) as url:
        kill_while_stalled(smtp, url)
        assert smtp.messages == []
        wait_out_the_lease(url)
        second = worker_process(url, worker_env(smtp))
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 0, output

    assert len(smtp.messages) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    outcomes = list(delivery.attempt_log.values_list("outcome", flat=True))
    assert outcomes == [AttemptOutcome.INTERRUPTED, AttemptOutcome.SENT]
    assert smtp.messages[0][1]["Message-ID"] == delivery.message_id


def test_killed_after_the_hand_over_it_is_not_sent_again_but_left_for_a_person(users, smtp, tmp_path, client_as):
    delivery = queued_acknowledgement(users)
    smtp.stall_at = "data"  # the server has the whole message and has not answered yet
    with database_for_other_process(tmp_path) as url:
        kill_while_stalled(smtp, url)
        assert len(smtp.messages) == 1
        wait_out_the_lease(url)
        second = worker_process(url, worker_env(smtp))
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 0, output

    assert len(smtp.messages) == 1  # at most once: never resent by the worker on its own
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.handed_over_at is not None
    assert "may have arrived" in delivery.answer and delivery.message_id in delivery.answer
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == [AttemptOutcome.INTERRUPTED]
    page = client_as("coordinator").get("/letters/?queue=failed")
    assert f'data-delivery="{delivery.pk}"' in page.content.decode()


def test_a_lease_that_has_not_run_out_is_left_alone(users, smtp, settings):
    """The lease check of a send that is only slow does nothing: one worker never steals from another."""
    from refloop.letters.delivery import delivery_lease_expired

    delivery = queued_acknowledgement(users)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.SENDING, attempts=1, lease_until=timezone.now() + dt.timedelta(minutes=5)
    )
    assert delivery_lease_expired(delivery.pk, 1) == "the lease is still running"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENDING
