"""The worker sends each HL7 status message over MLLP once: retries what did not arrive, under the same MSH-10,
gives up on a refusal, and survives being killed between sending and recording."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import time
from contextlib import closing
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.interop.models import InterfaceMessage
from refloop.referrals.services import referral_transition
from tests.interop.hl7_messages import Destination
from tests.letters.conftest import database_for_other_process, run_worker, worker_process
from tests.referrals.factories import referral


@pytest.fixture
def destination(settings):
    engine = Destination()
    settings.HL7_DESTINATION = engine.address
    settings.HL7_RETRY_SECONDS = [0, 0]
    settings.HL7_ACK_TIMEOUT = 5
    yield engine
    engine.stop()


def accepted(users) -> InterfaceMessage:
    ref = referral(by=users["coordinator"])
    referral_transition(referral=ref, name="accept", by=users["coordinator"])
    return InterfaceMessage.objects.get(direction="out")


@pytest.mark.django_db(transaction=True)  # the in-process worker closes connections between tasks
def test_an_accepted_message_is_sent_once(users, destination):
    message = accepted(users)

    run_worker()
    run_worker()

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)
    assert message.sent_at is not None
    assert "MSA|AA|" + message.control_id in message.response
    assert destination.received == [message.payload]
    sent = AuditEvent.objects.get(action="interop.hl7.sent")
    assert sent.patient_id == str(message.referral.patient_id)
    assert sent.detail["destination"] == destination.address


@pytest.mark.django_db(transaction=True)  # the in-process worker closes connections between tasks
def test_a_refusal_fails_at_once_with_the_destinations_reason(users, destination):
    destination.answer = "AE"
    message = accepted(users)

    run_worker()

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 1)
    assert "bad birth date" in message.detail


@pytest.mark.django_db(transaction=True)  # the in-process worker closes connections between tasks
def test_no_answer_is_retried_with_the_same_control_id_and_taken_once(users, destination, settings):
    from refloop.interop.hl7.sending import outbound_attempt

    settings.HL7_RETRY_SECONDS = [3600]
    destination.answer = "close"  # reads the message, hangs up without an ACK: it may have arrived
    message = accepted(users)
    run_worker()
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 1)
    assert "Waiting to retry (attempt 1 of 2)" in message.detail

    destination.answer = "AA"
    assert outbound_attempt(message.pk) == "sent"  # the retry, as the worker runs it an hour later

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 2)
    assert destination.received == [message.payload, message.payload]  # the same bytes, the same MSH-10
    assert list(destination.taken) == [message.control_id]


@pytest.mark.django_db(transaction=True)  # the in-process worker closes connections between tasks
def test_an_unreachable_destination_is_retried_then_given_up(users, settings):
    from tests.letters.conftest import free_port

    settings.HL7_DESTINATION = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings.HL7_RETRY_SECONDS = [0, 0]
    message = accepted(users)

    run_worker()

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 3)
    assert "Gave up after 3 attempts" in message.detail


@pytest.mark.django_db(transaction=True)  # the in-process worker closes connections between tasks
def test_messages_written_without_a_destination_are_sent_once_one_is_set(users, settings):
    settings.HL7_DESTINATION = ""
    message = accepted(users)
    run_worker()
    message.refresh_from_db()
    assert message.status == "queued" and message.attempts == 0

    engine = Destination()
    try:
        settings.HL7_DESTINATION = engine.address
        out = StringIO()
        call_command("hl7", "send-queued", stdout=out)
        run_worker()
    finally:
        engine.stop()

    assert "1 status message(s) queued" in out.getvalue()
    message.refresh_from_db()
    assert message.status == "sent"
    assert engine.received == [message.payload]


LEASE = 2


def _as_the_worker_left_it(url: str, pk: int) -> tuple[str, int, dt.datetime]:
    """(status, attempts, lease_until) of an outbound message in the database the worker processes use."""
    if url.startswith("sqlite:///"):  # a file copy of this process's in-memory test database
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            status, attempts, lease = db.execute(
                "SELECT status, attempts, lease_until FROM interop_interfacemessage WHERE id = ?", [pk]
            ).fetchone()
        return status, attempts, dt.datetime.fromisoformat(lease).replace(tzinfo=dt.UTC)
    message = InterfaceMessage.objects.get(pk=pk)
    return message.status, message.attempts, message.lease_until


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_between_sending_and_recording_leads_to_one_message_taken(users, destination, tmp_path):
    destination.answer = "silent"  # the engine has the message and has not answered when the worker dies
    message = accepted(users)
    env = {
        "REFLOOP_HL7_DESTINATION": destination.address,
        "REFLOOP_HL7_LEASE_SECONDS": str(LEASE),
        "REFLOOP_HL7_RETRY_SECONDS": "0,0",
        "REFLOOP_HL7_ACK_TIMEOUT": "60",
    }
    with database_for_other_process(tmp_path) as url:
        first = worker_process(url, env)
        try:
            assert destination.got_one.wait(60), "the worker never reached the destination"
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        # The dead worker's claim: sending, under a lease that has not run out yet.
        status, attempts, lease_until = _as_the_worker_left_it(url, message.pk)
        assert (status, attempts) == ("sending", 1)
        assert timezone.now() < lease_until <= timezone.now() + dt.timedelta(seconds=LEASE)
        destination.answer = "AA"
        destination.release.set()
        time.sleep(LEASE + 1.5)
        second = worker_process(url, env)
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 0, output

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 2)
    assert destination.received == [message.payload, message.payload]
    assert list(destination.taken) == [message.control_id]  # the receiver took it once
