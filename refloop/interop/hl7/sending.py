"""The worker's side of an outbound HL7 message: claim it, send it over MLLP, record the ACK, retry or give up.

Sent once, even when the worker dies between sending and recording. The ordering that makes it so:
1. The message (its MSH-10 and its bytes) is committed with the step that caused it (outbound.py), before
   any attempt; every attempt sends exactly those bytes.
2. The claim commits the attempt number and a lease, and enqueues a lease check, before the first byte goes out.
3. Only the ACK moves the message to "sent". A worker that dies after sending and before recording leaves it
   claimed; when the lease ends the check sends it again, under the same MSH-10, and the receiver (HL7 v2
   requires it to recognise a repeated message control id, as refloop's own listener does) answers with its
   first ACK instead of acting twice. So delivery is at least once on the wire and once at the receiver.
The same holds for an ACK that never comes (timeout): the message may have arrived, and the resend is safe.

AA/CA: sent. AE/CE: the receiver refused the content; resending the same bytes cannot help, so it fails
for a person to look at. AR/CR, a refused connection or a timeout: retried after REFLOOP_HL7_RETRY_SECONDS,
then failed.

A claimed message is "sending" until its lease (`lease_until`) ends; the answer moves it to "sent", "failed" or
back to "queued" for a retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.interop.hl7.ack import ack_code_of
from refloop.interop.hl7.mllp import MllpClient, split_destination
from refloop.interop.models import InterfaceMessage

log = logging.getLogger(__name__)
Status = InterfaceMessage.Status
CLAIMED = "Sending: attempt"


def _outbound():
    return InterfaceMessage.objects.filter(
        direction=InterfaceMessage.Direction.OUTBOUND, protocol=InterfaceMessage.Protocol.HL7V2
    )


def enqueue_send(message: InterfaceMessage, *, at: dt.datetime | None = None) -> None:
    from refloop.interop.hl7.tasks import hl7_send

    task = hl7_send.using(run_after=at) if at is not None else hl7_send
    task.enqueue(message.pk)


def _claimed(message: InterfaceMessage, now: dt.datetime) -> bool:
    return message.status == Status.SENDING and message.lease_until is not None and message.lease_until > now


def outbound_attempt(message_id: int) -> str:
    """One attempt at one outbound message (the body of the hl7_send task)."""
    from refloop.interop.hl7.tasks import hl7_lease_check

    now = timezone.now()
    destination = settings.HL7_DESTINATION
    with transaction.atomic():
        message = _outbound().select_for_update().filter(pk=message_id).first()
        if message is None:
            return "no such message"
        if message.status not in (Status.QUEUED, Status.SENDING):
            return f"nothing to do: {message.status}"
        if _claimed(message, now):
            return "another attempt holds it"
        if not destination:
            message.status, message.lease_until = Status.QUEUED, None
            message.detail = "Not sent: no destination (REFLOOP_HL7_DESTINATION is not set)."
            message.save(update_fields=["status", "lease_until", "detail", "updated_at"])
            return "no destination"
        message.attempts += 1
        message.destination = destination
        message.status = Status.SENDING
        message.lease_until = now + dt.timedelta(seconds=settings.HL7_LEASE_SECONDS)
        message.detail = f"{CLAIMED} {message.attempts} by {socket.gethostname()}:{os.getpid()}"
        message.save(update_fields=["attempts", "destination", "status", "lease_until", "detail", "updated_at"])
        number = message.attempts
        hl7_lease_check.using(run_after=message.lease_until + dt.timedelta(seconds=1)).enqueue(message.pk, number)
    code, text = _send(message, destination)
    return outbound_record(message_id=message.pk, number=number, code=code, text=text)


def _send(message: InterfaceMessage, destination: str) -> tuple[str, str]:
    """(ACK code, or "" when none came; the ACK or what went wrong)."""
    host, port = split_destination(destination)
    try:
        with MllpClient(host, port, timeout=settings.HL7_ACK_TIMEOUT) as client:
            answer = client.send(message.payload.encode("utf-8")).decode("utf-8", errors="replace")
    except (OSError, ConnectionError) as exc:
        return "", f"{destination}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
    return ack_code_of(answer), answer


def outbound_record(*, message_id: int, number: int, code: str, text: str) -> str:
    """Write down the destination's answer to attempt `number`, and decide what happens next."""
    now = timezone.now()
    with transaction.atomic():
        message = _outbound().select_for_update().get(pk=message_id)
        if message.status != Status.SENDING or message.attempts != number:
            return f"late answer for attempt {number}: {code or 'none'}"
        message.lease_until = None
        if code in ("AA", "CA"):
            message.status = Status.SENT
            message.sent_at = now
            message.response = text[:10000]
            message.detail = f"Accepted by {message.destination} (attempt {number})."
            message.save()
            audit_record(  # patient data left refloop: the disclosure is in the audit trail
                actor=None,
                actor_label="refloop worker",
                action="interop.hl7.sent",
                target=message.referral,
                detail={"message": message.pk, "type": message.message_type, "destination": message.destination},
            )
            return "sent"
        if code in ("AE", "CE"):
            message.response = text[:10000]
            _fail(message, f"Refused by {message.destination}: {_err_text(text)}")
            return "refused"
        why = f"{message.destination} answered {code}: {_err_text(text)}" if code else text
        return _retry_or_fail(message, why, now)


def _err_text(ack: str) -> str:
    for line in ack.replace("\n", "\r").split("\r"):
        if line.startswith(("ERR", "MSA")) and len(line) > 4:
            parts = line.split(line[3])
            text = parts[8] if line.startswith("ERR") and len(parts) > 8 else (parts[3] if len(parts) > 3 else "")
            if text:
                return text[:500]
    return "no reason given"


def _retry_or_fail(message: InterfaceMessage, why: str, now: dt.datetime, *, wait: int | None = None) -> str:
    waits = settings.HL7_RETRY_SECONDS
    if message.attempts > len(waits):
        _fail(message, f"Gave up after {message.attempts} attempts. Last: {why}")
        return "failed"
    wait = waits[message.attempts - 1] if wait is None else wait
    message.status, message.lease_until = Status.QUEUED, None
    message.detail = f"Waiting to retry (attempt {message.attempts} of {len(waits) + 1}): {why}"[:4000]
    message.save(update_fields=["status", "lease_until", "detail", "updated_at"])
    enqueue_send(message, at=now + dt.timedelta(seconds=wait))
    return "retrying"


def _fail(message: InterfaceMessage, note: str) -> None:
    message.status, message.lease_until = Status.FAILED, None
    message.detail = note[:4000]
    message.save()


def outbound_lease_expired(message_id: int, number: int) -> str:
    """The lease check: an attempt whose worker stopped is sent again (same bytes, same MSH-10)."""
    from refloop.interop.hl7.tasks import hl7_lease_check

    now = timezone.now()
    with transaction.atomic():
        message = _outbound().select_for_update().filter(pk=message_id).first()
        if message is None or message.status != Status.SENDING or message.attempts != number:
            return "the attempt finished in time"
        if message.lease_until is not None and message.lease_until > now:
            hl7_lease_check.using(run_after=message.lease_until + dt.timedelta(seconds=1)).enqueue(message.pk, number)
            return "the lease is still running"
        return _retry_or_fail(message, "the worker stopped before recording the answer", now, wait=0)


def outbound_requeue() -> int:
    """Queue for sending every outbound message still waiting (written while no destination was set)."""
    count = 0
    now = timezone.now()
    for message in _outbound().filter(status__in=(Status.QUEUED, Status.SENDING)).order_by("pk"):
        if not _claimed(message, now):
            enqueue_send(message)
            count += 1
    return count
