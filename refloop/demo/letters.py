"""The demo's letters: what the recent referrals would have produced, with their deliveries' outcomes.

The referral step writes its recent referrals through the services, and each step of the loop already queued
its automatic letters (letters.receivers). This step plays the worker of the demo's past for them: every
delivery gets the answer a gateway would have given at the time of its step (sent, delivered, or, for a few,
refused or given up after retries, so the failed queue has work for a person); letters by mail that are more
than two days old were printed and mailed, newer ones wait in the print queue. Consult reports are written,
signed and sent through the report services for the referrals the clinician with a login saw; a few of that
clinician's recent visits have a draft waiting for the signature. The busiest offices get a status link, whose
tokens are left in `ctx.objects["status_links"]` (they cannot be read back from the database).

Nothing here talks to a real gateway: outcomes go through `delivery.delivery_record`, the function the worker
calls with a gateway's answer, and the worker's tasks for these past deliveries are removed as done.
"""

from __future__ import annotations

import datetime as dt
import random

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from refloop.demo import DemoContext
from refloop.directory.models import ReferringPractice
from refloop.letters import services
from refloop.letters.delivery import delivery_record, message_id_for
from refloop.letters.models import (
    AttemptOutcome,
    ConsultReport,
    Delivery,
    DeliveryAttempt,
    DeliveryChannel,
    DeliveryStatus,
    Letter,
)
from refloop.letters.transports import Answer
from refloop.referrals.models import Referral
from refloop.referrals.workflow import State

REFUSALS = [
    (AttemptOutcome.FAILED, "RCPT TO: 550 5.1.1 <{address}>: Recipient address rejected: User unknown"),
    (AttemptOutcome.FAILED, "HTTP 422 Unprocessable Entity: number {address} is not a fax line"),
]
BUSY = {
    DeliveryChannel.FAX: "fax gateway: line busy, no answer after 60 s",
    DeliveryChannel.EMAIL: "SMTP 421 4.4.2 connection to the mail server timed out",
    DeliveryChannel.DIRECT: "HISP relay: 421 4.3.2 service not available, try later",
}
STATUS_LINK_OFFICES = 5


def build(ctx: DemoContext) -> None:
    now = ctx.objects.get("now") or timezone.now()
    rng = random.Random(ctx.seed * 7919 + 17)
    users = ctx.objects.get("users", {})
    _write_reports(ctx, rng, users, now)
    outcomes = _play_past_deliveries(rng, now, by=users.get("coordinator"))
    _forget_past_tasks()
    links = _status_links(users.get("coordinator"))
    ctx.objects["status_links"] = links
    ctx.count("letters", Letter.objects.count())
    ctx.count("deliveries", sum(outcomes.values()))
    ctx.count("status links", len(links))


def _write_reports(ctx: DemoContext, rng: random.Random, users: dict, now: dt.datetime) -> None:
    """Reports of the clinician who signs in refloop: sent for finished visits, drafts for some recent ones."""
    signer = users.get("clinician")
    clinician = getattr(signer, "clinician", None) if signer is not None else None
    if clinician is None:
        return
    seen = Referral.objects.filter(clinician=clinician, seen_at__isnull=False).select_related(
        "patient", "referring_provider", "referring_practice", "clinician", "location"
    )
    # Referrals written through the services (their steps queued letters); older history came in bulk.
    finished = seen.filter(state__in=[State.REPORT_SENT, State.CLOSED], letters__isnull=False).distinct()
    for referral in finished.order_by("seen_at"):
        report = services.report_save(referral=referral, data=_findings(rng, referral), by=signer)
        services.report_sign(report=report, by=signer)
        letter = services.report_send(report=report, by=signer)
        signed_at = referral.report_sent_at - dt.timedelta(minutes=rng.randint(20, 240))
        ConsultReport.objects.filter(pk=report.pk).update(created_at=signed_at - dt.timedelta(hours=1))
        ConsultReport.objects.filter(pk=report.pk).update(signed_at=signed_at)
        Letter.objects.filter(pk=letter.pk).update(created_at=referral.report_sent_at)
    for referral in seen.filter(state=State.SEEN).order_by("seen_at")[:4]:
        services.report_save(referral=referral, data=_findings(rng, referral), by=signer)


def _findings(rng: random.Random, referral: Referral) -> dict:
    side = rng.choice(["right", "left"])
    return {
        "findings": f"Examined the {side} side for: {referral.reason}. Range of motion reduced; neurovascularly "
        "intact. Imaging reviewed.",
        "assessment": rng.choice(
            [
                "Degenerative changes without instability.",
                "Partial tear, managed without surgery for now.",
                "Tendinopathy with reactive inflammation.",
            ]
        ),
        "plan": rng.choice(
            [
                "Physical therapy twice a week for six weeks, then review.",
                "Injection given today; review in 4 weeks.",
                "Bracing and activity change; MRI if no better in 6 weeks.",
            ]
        ),
        "recommendations": "Continue current medication; please send the patient back if symptoms worsen.",
        "is_final": True,
    }


def _moment(delivery: Delivery) -> dt.datetime:
    letter = delivery.letter
    if letter.event_id is not None:
        return letter.event.at
    if letter.report_id is not None and letter.referral.report_sent_at:
        return letter.referral.report_sent_at - dt.timedelta(minutes=5)
    return letter.created_at


def _play_past_deliveries(rng: random.Random, now: dt.datetime, *, by) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    queued = (
        Delivery.objects.filter(status=DeliveryStatus.QUEUED)
        .select_related("letter__event", "letter__referral")
        .order_by("pk")
    )
    for delivery in queued:
        at = min(_moment(delivery), now - dt.timedelta(minutes=2))
        Letter.objects.filter(pk=delivery.letter_id).update(created_at=at)
        if delivery.channel == DeliveryChannel.MAIL:
            if delivery.address and at < now - dt.timedelta(days=2):
                services.deliveries_mark_mailed(deliveries=[delivery], by=by)
                _backdate(delivery, at + dt.timedelta(days=1))
        elif not delivery.address:
            _answer(delivery, at, Answer(AttemptOutcome.FAILED, delivery.route_note or "No address on file."))
        else:
            roll = rng.random()
            if roll < 0.03:
                for wait in [0, *settings.LETTERS_RETRY_SECONDS]:  # every automatic retry, then a person
                    at += dt.timedelta(seconds=wait)
                    _answer(delivery, at, Answer(AttemptOutcome.RETRY, BUSY.get(delivery.channel, BUSY["fax"])))
            elif roll < 0.05:
                # A fax gateway refuses a number; a mail server or HISP refuses an address.
                outcome, text = REFUSALS[1] if delivery.channel == DeliveryChannel.FAX else REFUSALS[0]
                _answer(delivery, at, Answer(outcome, text.format(address=delivery.address)))
            elif delivery.channel == DeliveryChannel.FAX:
                _answer(
                    delivery,
                    at,
                    Answer(AttemptOutcome.DELIVERED, 'HTTP 200: {"status": "delivered"}', f"fx-{delivery.pk:06d}"),
                )
            else:
                _answer(delivery, at, Answer(AttemptOutcome.SENT, f"250 2.0.0 Ok: queued as D{delivery.pk:06d}"))
        delivery.refresh_from_db()
        outcomes[delivery.status] = outcomes.get(delivery.status, 0) + 1
    return outcomes


def _answer(delivery: Delivery, at: dt.datetime, answer: Answer) -> None:
    """One attempt, recorded the way the worker records it, then put at the time it happened."""
    current = Delivery.objects.get(pk=delivery.pk)
    if current.status not in (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING):
        return
    number = current.attempts + 1
    Delivery.objects.filter(pk=current.pk).update(
        status=DeliveryStatus.SENDING, attempts=number, tries=current.tries + 1, message_id=message_id_for(current)
    )
    DeliveryAttempt.objects.create(delivery=current, number=number, started_at=at, worker="demo")
    delivery_record(delivery_id=current.pk, number=number, answer=answer)
    DeliveryAttempt.objects.filter(delivery=current, number=number).update(finished_at=at + dt.timedelta(seconds=4))
    _backdate(current, at + dt.timedelta(seconds=4))


def _backdate(delivery: Delivery, at: dt.datetime) -> None:
    current = Delivery.objects.get(pk=delivery.pk)
    changes = {"created_at": min(current.created_at, at), "updated_at": at, "next_attempt_at": None}
    for name in ("sent_at", "delivered_at", "failed_at"):
        if getattr(current, name) is not None:
            changes[name] = at
    Delivery.objects.filter(pk=current.pk).update(**changes)


def _forget_past_tasks() -> None:
    """The demo's past worker ran these: remove the queued task rows of deliveries that are settled."""
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(task_path__startswith="refloop.letters.tasks.").delete()


def _status_links(by) -> list[tuple[str, str]]:
    busiest = (
        ReferringPractice.objects.current()
        .annotate(n=Count("referrals"))
        .filter(n__gt=0)
        .order_by("-n", "name")[:STATUS_LINK_OFFICES]
    )
    links = []
    for practice in busiest:
        _, token = services.status_link_create(practice=practice, by=by, note="Demo: the office manager")
        links.append((practice.name, token))
    return links
