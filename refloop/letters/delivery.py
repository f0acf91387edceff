"""The worker's side of a delivery: claim it, send it, record the gateway's answer, retry or give up.

Run by `refloop worker` (tasks.py), never in a web request. The rules that keep a letter from being lost or sent
twice:

- The Delivery row is written in the same transaction as the step that caused it, with its task; the task
  only reads it. A claimed delivery is "sending" under a lease, and the claim enqueues a lease check that
  runs when the lease ends: if the worker died mid-send the check finds the delivery still "sending" and
  takes it back (on restart, or on any other worker).
- Before the point of no return (SMTP: the final "." of DATA; HTTP: the request) the worker commits
  `handed_over_at`, under a Message-ID derived from the delivery id. Taken back *without* that marker, the
  send is retried: nothing can have reached the gateway. Taken back *with* it, the gateway may hold the
  message, and what happens depends on the gateway:
  * an HTTP fax gateway dedupes by the Idempotency-Key (the Message-ID), so the send is retried:
    at-least-once, made exactly-once by the gateway;
  * an SMTP server cannot be asked, so refloop does not resend by itself: the delivery goes to the failed
    queue saying it may have arrived, and a person checks with the office before pressing Retry. That is
    at-most-once for the worker, with a person closing the gap; the same Message-ID on the resend lets a
    receiving system that dedupes by it drop the copy.
- A temporary failure (connection refused, timeout, 4xx) is retried after the waits in
  REFLOOP_DELIVERY_RETRY_SECONDS; a refusal (5xx), an exhausted budget, or a missing gateway or address
  puts the delivery in the failed queue, with the gateway's answer, for a person to retry or redirect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import socket

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.letters import channels, rendering, transports
from refloop.letters.models import (
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryChannel,
    DeliveryStatus,
    LetterKind,
    LetterLink,
    new_token,
    token_hash,
)

log = logging.getLogger(__name__)
SENDABLE = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING)


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def max_tries() -> int:
    return len(settings.LETTERS_RETRY_SECONDS) + 1


def message_id_for(delivery: Delivery) -> str:
    """Stable for the delivery across attempts and unique to this installation."""
    mac = hmac.new(settings.SECRET_KEY.encode(), f"delivery:{delivery.pk}".encode(), hashlib.sha256)
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "refloop.invalid"
    return f"<refloop.delivery.{delivery.pk}.{mac.hexdigest()[:12]}@{domain}>"


def gateway_dedupes(delivery: Delivery) -> bool:
    return delivery.channel == DeliveryChannel.FAX and settings.LETTERS_FAX_GATEWAY.startswith(("http://", "https://"))


def enqueue_send(delivery: Delivery, *, at: dt.datetime | None = None) -> None:
    from refloop.letters.tasks import delivery_send

    task = delivery_send.using(run_after=at) if at is not None else delivery_send
    task.enqueue(delivery.pk)


def delivery_attempt(delivery_id: int) -> str:
    """One attempt at one delivery (the body of the `delivery_send` task)."""
    from refloop.letters.tasks import delivery_lease_check

    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            return "no such delivery"
        if delivery.status not in SENDABLE:
            return f"nothing to do: {delivery.status}"
        if delivery.channel == DeliveryChannel.MAIL:
            return "waits in the print queue"
        if delivery.next_attempt_at and delivery.next_attempt_at > now + dt.timedelta(seconds=1):
            return "not due yet"
        problem = channels.channel_is_configured(delivery.channel)
        if not delivery.address:
            problem = delivery.route_note or "No address to send to."
        if problem:
            _fail(delivery, problem, now)
            return "failed: " + problem
        delivery.status = DeliveryStatus.SENDING
        delivery.attempts += 1
        delivery.tries += 1
        delivery.lease_until = now + dt.timedelta(seconds=settings.LETTERS_LEASE_SECONDS)
        delivery.handed_over_at = None
        delivery.next_attempt_at = None
        delivery.message_id = delivery.message_id or message_id_for(delivery)
        delivery.save()
        number = delivery.attempts
        DeliveryAttempt.objects.create(delivery=delivery, number=number, started_at=now, worker=worker_label())
        check_at = delivery.lease_until + dt.timedelta(seconds=1)
        delivery_lease_check.using(run_after=check_at).enqueue(delivery.pk, number)
    answer = _send(delivery, number)
    return delivery_record(delivery_id=delivery.pk, number=number, answer=answer)


def _handover(delivery: Delivery, number: int) -> None:
    """Commit the idempotency marker; the caller sends the last byte only after this returns."""
    marked = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=number).update(
        handed_over_at=timezone.now()
    )
    if not marked:
        raise RuntimeError("this attempt no longer holds the delivery (its lease ran out)")


def _send(delivery: Delivery, number: int) -> transports.Answer:
    letter = delivery.letter
    try:
        documents = rendering.letter_documents(letter)
    except Exception as exc:
        log.exception("letter %s could not be rendered", letter.pk)
        return transports.Answer(AttemptOutcome.FAILED, f"The letter could not be made into a PDF: {exc}")
    try:
        return _by_channel(delivery, documents, lambda: _handover(delivery, number))
    except Exception as exc:  # a bug or a database error: never leave the delivery "sending" for the lease
        log.exception("delivery %s failed unexpectedly", delivery.pk)
        marked = Delivery.objects.filter(pk=delivery.pk, handed_over_at__isnull=False).exists()
        outcome = AttemptOutcome.UNKNOWN if marked else AttemptOutcome.RETRY
        return transports.Answer(outcome, f"refloop could not send: {exc}")


def _subject(letter) -> str:
    """No PHI in a subject line: the kind of letter, the practice and the reference only."""
    practice = rendering.letter_context.practice_values()["name"] or "the practice"
    return f"{letter.get_kind_display()} from {practice} (ref. {letter.reference})"


def _by_channel(delivery: Delivery, documents, on_handover) -> transports.Answer:
    letter = delivery.letter
    if delivery.channel == DeliveryChannel.FAX:
        number = channels.fax_digits(delivery.address)
        gateway = settings.LETTERS_FAX_GATEWAY
        if gateway.startswith(("http://", "https://")):
            return transports.http_fax_send(
                url=gateway,
                token=settings.LETTERS_FAX_GATEWAY_TOKEN,
                timeout=settings.LETTERS_FAX_GATEWAY_TIMEOUT,
                number=number,
                key=delivery.message_id,
                documents=documents,
                on_handover=on_handover,
            )
        to = gateway.removeprefix("email:").format(number=number)
        body = f"Fax to {number}: {len(documents)} document(s), ref. {letter.reference}."
        return _smtp(
            _mail_server(),
            settings.DEFAULT_FROM_EMAIL,
            to,
            f"Fax ref. {letter.reference}",
            body,
            delivery,
            documents,
            on_handover,
        )
    if delivery.channel == DeliveryChannel.DIRECT:
        server = transports.SmtpServer(
            host=settings.LETTERS_DIRECT_HOST,
            port=settings.LETTERS_DIRECT_PORT,
            user=settings.LETTERS_DIRECT_USER,
            password=settings.LETTERS_DIRECT_PASSWORD,
            use_tls=settings.LETTERS_DIRECT_USE_TLS,
            timeout=settings.EMAIL_TIMEOUT,
        )
        body = f"{letter.get_kind_display()} attached (ref. {letter.reference})."
        return _smtp(
            server,
            settings.LETTERS_DIRECT_FROM,
            delivery.address,
            _subject(letter),
            body,
            delivery,
            documents,
            on_handover,
        )
    # Email: the PDF itself only when the practice chose that, or when the letter carries no PHI.
    if settings.LETTERS_EMAIL_ATTACH_PDF or not letter.has_phi:
        body = f"Please find the {letter.get_kind_display().lower()} attached (ref. {letter.reference})."
        return _smtp(
            _mail_server(),
            settings.DEFAULT_FROM_EMAIL,
            delivery.address,
            _subject(letter),
            body,
            delivery,
            documents,
            on_handover,
        )
    if not settings.PUBLIC_URL:
        return transports.Answer(AttemptOutcome.FAILED, "No secure link can be made: REFLOOP_PUBLIC_URL is not set.")
    link = _secure_link(delivery)
    days = settings.LETTERS_LINK_DAYS
    body = (
        f"A {letter.get_kind_display().lower()} from {rendering.letter_context.practice_values()['name']} is ready "
        f"for you (ref. {letter.reference}).\n\nOpen it here (the link works for {days} days):\n{link}\n\n"
        "It holds protected health information; please do not forward this message."
    )
    return _smtp(
        _mail_server(), settings.DEFAULT_FROM_EMAIL, delivery.address, _subject(letter), body, delivery, [], on_handover
    )


def _mail_server() -> transports.SmtpServer:
    return transports.SmtpServer(
        host=settings.EMAIL_HOST,
        port=settings.EMAIL_PORT,
        user=settings.EMAIL_HOST_USER,
        password=settings.EMAIL_HOST_PASSWORD,
        use_tls=settings.EMAIL_USE_TLS,
        use_ssl=settings.EMAIL_USE_SSL,
        timeout=settings.EMAIL_TIMEOUT,
    )


def _smtp(server, sender, to, subject, body, delivery, documents, on_handover) -> transports.Answer:
    message = transports.build_message(
        sender=sender, to=to, subject=subject, body=body, message_id=delivery.message_id, documents=documents
    )
    return transports.smtp_send(server, sender=sender, to=to, message=message, on_handover=on_handover)


def _secure_link(delivery: Delivery) -> str:
    from django.urls import reverse

    token = new_token()
    LetterLink.objects.create(
        delivery=delivery,
        token_hash=token_hash(token),
        expires_at=timezone.now() + dt.timedelta(days=settings.LETTERS_LINK_DAYS),
    )
    return settings.PUBLIC_URL + reverse("letters_public:letter", args=[token])


def delivery_record(*, delivery_id: int, number: int, answer: transports.Answer) -> str:
    """Write down what the gateway said for attempt `number`, and decide what happens next."""
    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        DeliveryAttempt.objects.filter(delivery=delivery, number=number).update(
            finished_at=now, outcome=answer.outcome, answer=answer.text[:4000]
        )
        if delivery.status != DeliveryStatus.SENDING or delivery.attempts != number:
            return f"late answer for attempt {number}: {answer.outcome}"
        delivery.answer = answer.text[:4000]
        delivery.lease_until = None
        if answer.outcome in (AttemptOutcome.SENT, AttemptOutcome.DELIVERED):
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = now
            if answer.outcome == AttemptOutcome.DELIVERED:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = now
            delivery.gateway_ref = answer.ref[:200]
            delivery.save()
            delivery_succeeded(delivery, at=now)
        elif answer.outcome == AttemptOutcome.UNKNOWN and not gateway_dedupes(delivery):
            _fail(delivery, _unknown_note(delivery, answer.text), now)
        elif answer.outcome in (AttemptOutcome.RETRY, AttemptOutcome.UNKNOWN):
            _retry_or_fail(delivery, now)
        else:
            _fail(delivery, answer.text, now)
        return f"{delivery.status}: {answer.text[:200]}"


def _unknown_note(delivery: Delivery, detail: str) -> str:
    return (
        f"Outcome unknown: the message was handed to the gateway ({detail}) and no answer came back. It may have "
        f"arrived (Message-ID {delivery.message_id}); check with the recipient before retrying."
    )


def delivery_lease_expired(delivery_id: int, number: int) -> str:
    """The lease check: take back a delivery whose worker stopped mid-send (see the module docstring)."""
    from refloop.letters.tasks import delivery_lease_check

    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or delivery.status != DeliveryStatus.SENDING or delivery.attempts != number:
            return "the attempt finished in time"
        if delivery.lease_until and delivery.lease_until > now:
            delivery_lease_check.using(run_after=delivery.lease_until).enqueue(delivery.pk, number)
            return "the lease is still running"
        DeliveryAttempt.objects.filter(delivery=delivery, number=number).update(
            finished_at=now, outcome=AttemptOutcome.INTERRUPTED, answer="The worker stopped mid-send (lease expired)."
        )
        delivery.lease_until = None
        if delivery.handed_over_at is not None and not gateway_dedupes(delivery):
            _fail(delivery, _unknown_note(delivery, "the worker stopped while waiting for its answer"), now)
            return "interrupted after the hand-over: left for a person"
        _retry_or_fail(delivery, now, wait=0)
        return f"interrupted before the hand-over: {delivery.status}"


def _retry_or_fail(delivery: Delivery, now: dt.datetime, *, wait: int | None = None) -> None:
    if delivery.tries >= max_tries():
        _fail(delivery, f"Gave up after {delivery.tries} attempts. Last answer: {delivery.answer}", now)
        return
    if wait is None:
        wait = settings.LETTERS_RETRY_SECONDS[min(delivery.tries, max_tries() - 1) - 1]
    delivery.status = DeliveryStatus.RETRYING
    delivery.next_attempt_at = now + dt.timedelta(seconds=wait)
    delivery.save()
    enqueue_send(delivery, at=delivery.next_attempt_at)


def _fail(delivery: Delivery, note: str, now: dt.datetime) -> None:
    delivery.status = DeliveryStatus.FAILED
    delivery.failed_at = now
    delivery.lease_until = None
    delivery.next_attempt_at = None
    delivery.answer = note[:4000]
    delivery.save()
    audit_record(
        actor=None,
        actor_label="refloop worker",
        action="letters.delivery.failed",
        target=delivery.letter,
        detail={"delivery": delivery.pk, "channel": delivery.channel},
    )


def delivery_succeeded(delivery: Delivery, *, at: dt.datetime, by=None) -> None:
    """After a letter got out: the audit trail, and a final consult report moves the referral to report sent."""
    letter = delivery.letter
    audit_record(
        actor=by,
        actor_label="" if by else "refloop worker",
        action="letters.delivery.sent",
        target=letter,
        detail={"delivery": delivery.pk, "channel": delivery.channel, "status": delivery.status},
    )
    if letter.kind != LetterKind.CONSULT_REPORT or not letter.report_id or not letter.report.is_final:
        return
    from refloop.referrals.services import referral_transition
    from refloop.referrals.workflow import State, TransitionRefused

    referral = letter.referral
    if referral is None or referral.state != State.SEEN:
        return
    sender = letter.created_by
    try:
        referral_transition(
            referral=referral,
            name="send_report",
            by=sender,
            role=getattr(sender, "role", None) or "clinician",
            at=at,
            note=f"Consult report {letter.reference} {delivery.get_status_display().lower()} by "
            f"{delivery.get_channel_display().lower()}",
        )
    except TransitionRefused:
        log.warning("referral %s could not move to report sent after %s", referral.pk, letter.reference)
