"""Writes for letters: templates, automatic letters, the consult report, deliveries, status links, web referrals.

Every function validates, writes in one transaction and queues its background work in that same transaction
(the task row is a database row too), so what the page said was done is exactly what the worker will do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, prefetch_related_objects
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.letters import channels, rendering
from refloop.letters import context as letter_context
from refloop.letters.delivery import delivery_succeeded, enqueue_send
from refloop.letters.models import (
    ConsultReport,
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    Letter,
    LetterKind,
    LetterRule,
    LetterTemplate,
    Recipient,
    ReportStatus,
    StatusLink,
    new_token,
    token_hash,
)
from refloop.lib.hot_settings import remembered
from refloop.referrals.models import Referral, ReferralEvent

log = logging.getLogger(__name__)

# Steps of the loop a rule can hang a letter on ("receive" is the referral's arrival).
RULE_STEPS = [
    ("receive", "Referral received"),
    ("accept", "Accepted"),
    ("decline", "Declined"),
    ("schedule", "Scheduled"),
    ("reschedule", "Rescheduled"),
    ("mark_no_show", "No-show"),
    ("cancel", "Appointment cancelled"),
    ("mark_seen", "Seen"),
    ("send_back", "Patient sent back"),
    ("return_to_referrer", "Returned to the referrer unseen"),
]
# The consult report is written and signed by a person, never sent by a rule.
RULE_KINDS = [(k.value, k.label) for k in LetterKind if k not in (LetterKind.CONSULT_REPORT, LetterKind.FREE)]


class LetterRefused(Exception):
    """What was asked cannot be done; the message says why in the words of the page."""


# Templates and rules


def template_save(*, template: LetterTemplate, title: str, body: str, by, expected_version: int | None = None):
    """Save a template only if it renders: broken syntax or an unknown field is refused here, not when due."""
    rendering.check_template(body)
    if not title.strip():
        raise ValidationError({"title": "Give the letter a heading."})
    with transaction.atomic():
        current = LetterTemplate.objects.select_for_update().get(pk=template.pk)
        if expected_version is not None and current.version != expected_version:
            raise LetterRefused("Someone else saved this template after you opened it. Reload it first.")
        current.title, current.body, current.updated_by = title.strip(), body, by
        current.version = F("version") + 1
        current.save()
        current.refresh_from_db()
        audit_record(actor=by, action="letters.template.save", target=current, detail={"kind": current.kind})
    return current


def rules_save(*, enabled_ids: set[int], by) -> None:
    with transaction.atomic():
        for rule in LetterRule.objects.select_for_update():
            on = rule.pk in enabled_ids
            if rule.enabled != on:
                rule.enabled = on
                rule.save(update_fields=["enabled"])
                audit_record(actor=by, action="letters.rule.set", target=rule, detail={"enabled": on})


def rule_add(*, step: str, kind: str, recipient: str, by) -> LetterRule:
    if step not in dict(RULE_STEPS) or kind not in dict(RULE_KINDS) or recipient not in Recipient.values:
        raise ValidationError("Choose a step, a kind of letter and a recipient from the lists.")
    rule, _ = LetterRule.objects.get_or_create(step=step, kind=kind, recipient=recipient, defaults={"enabled": True})
    audit_record(actor=by, action="letters.rule.add", target=rule)
    return rule


# Letters and deliveries

_UNKNOWN = object()  # letter_create(practice=...) not given: look the referring practice up


def letter_create(
    *,
    kind: str,
    recipient: str = Recipient.REFERRING_PROVIDER,
    referral: Referral | None = None,
    provider=None,
    event: ReferralEvent | None = None,
    report: ConsultReport | None = None,
    text: str = "",
    title: str = "",
    summary: dict[str, Any] | None = None,
    period: tuple[dt.date, dt.date] | None = None,
    by=None,
    template: LetterTemplate | None = None,
    practice=_UNKNOWN,
) -> Letter:
    """Write one letter from the practice's template for `kind` (its body is fixed from now on).

    `template` and `practice` (the referring practice, None for none) may be given by a caller that already read
    them (event_letters_queue), so that a referral intake does not read them twice.
    """
    template = template if template is not None else LetterTemplate.objects.filter(kind=kind).first()
    if template is None:
        raise LetterRefused(f"There is no template for {LetterKind(kind).label.lower()} letters.")
    patient = referral.patient if referral is not None else None
    if referral is not None and recipient == Recipient.REFERRING_PROVIDER:
        provider = referral.referring_provider
    if recipient == Recipient.REFERRING_PROVIDER and provider is None:
        raise LetterRefused("This referral has no referring provider to write to.")
    if recipient == Recipient.PATIENT and patient is None:
        raise LetterRefused("A letter to the patient needs a referral.")
    if practice is _UNKNOWN:
        practice = referral.referring_practice if referral is not None else None
        if practice is None and provider is not None:
            practice = provider.primary_practice()
    built = letter_context.build(
        referral=referral,
        recipient=recipient,
        provider=provider,
        practice=practice,
        patient=patient,
        event=event,
        report=report,
        text=text,
        summary=summary,
    )
    try:
        html = rendering.render_body(template.body, built.values)
    except Exception as exc:  # a template saved before its checks existed; the letter still goes out, marked
        log.exception("template %s failed for a %s letter", template.pk, kind)
        html = f"<p>This letter could not be written from its template ({exc}). Please call us.</p>"
    return Letter.objects.create(
        kind=kind,
        template=template,
        referral=referral,
        event=event,
        report=report,
        recipient=recipient,
        provider=provider if recipient == Recipient.REFERRING_PROVIDER else None,
        patient=patient if recipient == Recipient.PATIENT else None,
        recipient_name=built.recipient_name,
        recipient_address=built.recipient_address,
        title=(title.strip() or template.title)[:150],
        html=html,
        text=text,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        created_by=by if getattr(by, "pk", None) else None,
    )


def route_for(letter: Letter) -> channels.Route:
    if letter.recipient == Recipient.PATIENT:
        return channels.route_for_patient(letter.patient)
    practice = letter.referral.referring_practice if letter.referral_id else None
    if practice is None:
        practice = letter.provider.primary_practice()
    return channels.route_for_provider(letter.provider, practice)


def delivery_queue(*, letter: Letter, by=None, route: channels.Route | None = None) -> Delivery:
    """Queue a letter for the worker, by the recipient's channel (or the one given); the task is written in the
    same transaction, so the delivery and its work are committed together or not at all."""
    route = route or route_for(letter)
    # savepoint=False: inside a caller's transaction this joins it (an error still undoes the delivery with the
    # caller's block); a savepoint of its own cost two round trips on every automatic letter (issue 8).
    with transaction.atomic(savepoint=False):
        delivery = Delivery.objects.create(
            letter=letter,
            channel=route.channel,
            address=route.address,
            route_note=route.note,
            created_by=by if getattr(by, "pk", None) else None,
        )
        if route.channel != DeliveryChannel.MAIL:
            enqueue_send(delivery)
        elif not route.address:
            delivery.status = DeliveryStatus.FAILED
            delivery.failed_at = timezone.now()
            delivery.answer = route.note or "No postal address on file."
            delivery.save()
    return delivery


def letter_send(*, by, **fields) -> Letter:
    """Write a letter and queue it (a person's letter from the referral page)."""
    with transaction.atomic():
        letter = letter_create(by=by, **fields)
        delivery_queue(letter=letter, by=by)
        audit_record(actor=by, action="letters.letter.send", target=letter, detail={"kind": letter.kind})
    return letter


# The enabled rules of one step with their templates (LetterTemplate.kind is unique), in LetterRule's order. Plain
# SQL: the same query built by the ORM (three Subquery annotations) cost 0.85 ms of CPU, this 0.15 ms (issue 8).
_RULES_WITH_TEMPLATES = (
    "SELECT r.id, r.step, r.kind, r.recipient, r.enabled, t.id AS template_pk, t.title AS template_title, "
    "t.body AS template_body FROM letters_letterrule r LEFT JOIN letters_lettertemplate t ON t.kind = r.kind "
    "WHERE r.step = %s AND r.enabled ORDER BY r.id"
)


def event_letters_queue(*, event: ReferralEvent, fresh: bool = False) -> list[Letter]:
    """The letters the practice switched on for this step, written and queued in the step's own transaction.

    The unique constraint (event, kind, recipient) makes a second call for the same event write nothing.
    `fresh`: the event was created just now (the post_save receiver), so it has no letters yet to look for.

    Every referral intake comes through here, so it reads as little as it can (issue 8): the rules and their
    templates in one query, and the referring practice (with its locations, for the address and the route) once.
    """
    # Remembered per process like the settings rows (lib/hot_settings.py): a rule or template saved here is read at
    # once, elsewhere within seconds. A tuple: the rows are shared, read only.
    rules = remembered(
        f"letters.rules.{event.action}", lambda: tuple(LetterRule.objects.raw(_RULES_WITH_TEMPLATES, [event.action]))
    )
    if not rules:
        return []
    referral = event.referral
    found: list = []  # the referring provider's practice, looked up once and only if a rule needs it

    def provider_practice():
        if not found:
            practice = referral.referring_practice
            if practice is None and event.action != "receive":
                # At "receive" referral_receive has just set referring_practice to the provider's primary practice
                # in this transaction: None means they have none. Later steps look again (an affiliation may be new).
                practice = referral.referring_provider.primary_practice()
            if practice is not None:
                prefetch_related_objects([practice], "locations")  # primary_location: the letter's and the route's
            found.append(practice)
        return found[0]

    queued = []
    for rule in rules:
        if rule.recipient == Recipient.REFERRING_PROVIDER and referral.referring_provider_id is None:
            continue
        if rule.kind == LetterKind.THANK_YOU_FIRST and not _is_first_referral(referral):
            continue
        if not fresh and Letter.objects.filter(event=event, kind=rule.kind, recipient=rule.recipient).exists():
            continue
        template = None
        if rule.template_pk is not None:
            template = LetterTemplate(
                pk=rule.template_pk, kind=rule.kind, title=rule.template_title, body=rule.template_body
            )
        try:
            # A fresh event is not yet visible to any other transaction, so no one else can be writing its letters:
            # no savepoint is needed to survive that race (two round trips fewer per intake, issue 8).
            with transaction.atomic(savepoint=not fresh):
                to_provider = rule.recipient == Recipient.REFERRING_PROVIDER
                practice = provider_practice() if to_provider else referral.referring_practice
                letter = letter_create(
                    kind=rule.kind,
                    recipient=rule.recipient,
                    referral=referral,
                    event=event,
                    template=template,
                    practice=practice,
                )
                route = channels.route_for_provider(letter.provider, practice) if to_provider else None
                delivery_queue(letter=letter, route=route)
        except IntegrityError:  # the same event queued twice at once: the first one stands
            continue
        queued.append(letter)
    return queued


def _is_first_referral(referral: Referral) -> bool:
    return (
        not Referral.objects.filter(referring_provider_id=referral.referring_provider_id)
        .exclude(pk=referral.pk)
        .exists()
    )


def delivery_retry(*, delivery: Delivery, by) -> Delivery:
    """A person sends a failed delivery again (after checking, when it may have arrived)."""
    with transaction.atomic():
        current = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if current.status != DeliveryStatus.FAILED:
            raise LetterRefused("Only a failed delivery can be retried.")
        current.status = DeliveryStatus.QUEUED
        current.tries = 0
        current.handed_over_at = None
        current.next_attempt_at = None
        current.failed_at = None
        current.save()
        if current.channel != DeliveryChannel.MAIL:
            enqueue_send(current)
        audit_record(actor=by, action="letters.delivery.retry", target=current.letter, detail={"delivery": current.pk})
    return current


def delivery_redirect(*, delivery: Delivery, channel: str, address: str, by) -> Delivery:
    """Send a failed (or stuck) delivery's letter by another channel or to another address."""
    if channel not in DeliveryChannel.values:
        raise ValidationError({"channel": "Choose a channel."})
    address = address.strip()
    if channel == DeliveryChannel.FAX:
        address = channels.fax_digits(address)
        if not address:
            raise ValidationError({"address": "Give a 10-digit fax number."})
    elif channel in (DeliveryChannel.EMAIL, DeliveryChannel.DIRECT):
        from django.core.validators import validate_email

        validate_email(address)
    elif not address:
        raise ValidationError({"address": "Give the postal address."})
    with transaction.atomic():
        current = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if current.status not in (DeliveryStatus.FAILED, DeliveryStatus.QUEUED, DeliveryStatus.RETRYING):
            raise LetterRefused("This delivery is being sent or has been sent; it cannot be redirected now.")
        replacement = delivery_queue(
            letter=current.letter, by=by, route=channels.Route(channel, address, f"Redirected by {by}.")
        )
        current.status = DeliveryStatus.REDIRECTED
        current.replaced_by = replacement
        current.next_attempt_at = None
        current.save()
        audit_record(
            actor=by,
            action="letters.delivery.redirect",
            target=current.letter,
            detail={"from": current.pk, "to": replacement.pk, "channel": channel},
        )
    return replacement


def deliveries_mark_mailed(*, deliveries, by) -> int:
    """Print-and-mail: the printed letters went into the mail."""
    now = timezone.now()
    count = 0
    with transaction.atomic():
        for delivery in Delivery.objects.select_for_update().filter(
            pk__in=[d.pk for d in deliveries], channel=DeliveryChannel.MAIL, status=DeliveryStatus.QUEUED
        ):
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = now
            delivery.attempts += 1
            delivery.answer = f"Printed and mailed by {by}."
            delivery.save()
            delivery_succeeded(delivery, at=now, by=by)
            count += 1
    return count


def delivery_mark_delivered(*, delivery: Delivery, by) -> Delivery:
    """The office confirmed it has the letter (a call back, a fax confirmation page)."""
    with transaction.atomic():
        current = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if current.status != DeliveryStatus.SENT:
            raise LetterRefused("Only a sent delivery can be confirmed as delivered.")
        current.status = DeliveryStatus.DELIVERED
        current.delivered_at = timezone.now()
        current.answer = f"{current.answer}\nDelivery confirmed by {by}.".strip()
        current.save()
        audit_record(
            actor=by, action="letters.delivery.confirm", target=current.letter, detail={"delivery": current.pk}
        )
    return current


# The consult report


REPORT_FIELDS = ("findings", "assessment", "plan", "recommendations")


def report_save(
    *, referral: Referral, by, data: dict[str, Any], report: ConsultReport | None = None, ehr_pdf=None
) -> ConsultReport:
    """Create or change a draft report; a signed report is frozen."""
    if referral.seen_at is None:
        raise LetterRefused("A consult report is written after the patient was seen.")
    with transaction.atomic():
        if report is None:
            report = ConsultReport(referral=referral, created_by=by, clinician=referral.clinician)
        else:
            report = ConsultReport.objects.select_for_update().get(pk=report.pk, referral=referral)
            if report.status != ReportStatus.DRAFT:
                raise LetterRefused("This report is signed; write an addendum as a new report instead.")
            report.version += 1
        for name in REPORT_FIELDS:
            setattr(report, name, (data.get(name) or "").strip())
        report.is_final = bool(data.get("is_final"))
        if ehr_pdf is not None:
            _attach_ehr_pdf(report, ehr_pdf)
        if not any(getattr(report, name) for name in REPORT_FIELDS) and not report.ehr_pdf_sha256:
            raise ValidationError("Write the report, paste it, or attach the PDF from the EHR.")
        report.save()
        audit_record(actor=by, action="letters.report.save", target=report, detail={"referral": referral.pk})
    return report


def _attach_ehr_pdf(report: ConsultReport, upload) -> None:
    """The EHR's PDF, checked by its content: it must start like a PDF and end like one."""
    from refloop.referrals.uploads import check_upload

    checked = check_upload(upload)
    upload.seek(0)
    head = upload.read(1024)
    upload.seek(max(0, upload.size - 2048))
    tail = upload.read()
    upload.seek(0)
    if checked.content_type != "application/pdf" or b"%PDF-" not in head[:8] or b"%%EOF" not in tail:
        raise ValidationError({"ehr_pdf": "The EHR document must be a complete PDF file."})
    report.ehr_pdf_sha256 = checked.sha256
    report.ehr_pdf_name = (upload.name or "report.pdf")[:200]
    report.ehr_pdf.save(f"{checked.sha256[:16]}.pdf", upload, save=False)


def report_sign(*, report: ConsultReport, by) -> ConsultReport:
    """The clinician's signature: their name, credentials and the time, over a hash of the content."""
    from refloop.practice.models import Clinician

    clinician = Clinician.objects.filter(user=by, is_active=True).first() if getattr(by, "pk", None) else None
    if clinician is None:
        raise LetterRefused("Only a clinician with their own login can sign a consult report.")
    with transaction.atomic():
        current = ConsultReport.objects.select_for_update().get(pk=report.pk)
        if current.status != ReportStatus.DRAFT:
            raise LetterRefused("This report is already signed.")
        now = timezone.now()
        current.status = ReportStatus.SIGNED
        current.clinician = clinician
        current.signed_by = by
        current.signed_at = now
        current.signature = clinician.display_name
        current.content_sha256 = current.content_digest()
        current.save()
        audit_record(
            actor=by,
            action="letters.report.sign",
            target=current,
            detail={"referral": current.referral_id, "sha256": current.content_sha256},
        )
    return current


def report_send(*, report: ConsultReport, by) -> Letter:
    """Send a signed report to the referring provider. Unsigned reports are refused.

    The letter and its delivery are written now; the referral moves to "report sent" when the worker has
    delivered a final report (delivery.delivery_succeeded), so the loop closes on delivery, not on a click.
    """
    with transaction.atomic():
        current = ConsultReport.objects.select_for_update().select_related("referral").get(pk=report.pk)
        if current.status == ReportStatus.DRAFT or not current.signed_at:
            raise LetterRefused("The report is not signed; the clinician signs it before it can be sent.")
        if current.status == ReportStatus.SENT:
            raise LetterRefused("This report has already been sent.")
        if current.content_sha256 != current.content_digest():
            raise LetterRefused("The report changed after it was signed; it cannot be sent.")
        letter = letter_create(kind=LetterKind.CONSULT_REPORT, referral=current.referral, report=current, by=by)
        delivery_queue(letter=letter, by=by)
        current.status = ReportStatus.SENT
        current.save(update_fields=["status", "updated_at"])
        audit_record(actor=by, action="letters.report.send", target=current, detail={"letter": letter.pk})
    return letter


# Periodic thank-you summaries


def quarter_before(day: dt.date) -> tuple[dt.date, dt.date]:
    first_month = (day.month - 1) // 3 * 3 + 1
    this_start = dt.date(day.year, first_month, 1)
    end = this_start - dt.timedelta(days=1)
    return dt.date(end.year, (end.month - 1) // 3 * 3 + 1, 1), end


def thank_you_summaries_create(*, start: dt.date, end: dt.date, by) -> list[Letter]:
    """One "the N patients you sent us" letter per referring provider who sent any in the period; each
    provider gets at most one per period (unique constraint), so pressing twice sends nothing twice."""
    from django.db.models import Count

    begin = timezone.make_aware(dt.datetime.combine(start, dt.time.min))
    finish = timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min))
    referrals = Referral.objects.filter(
        received_at__gte=begin, received_at__lt=finish, referring_provider__isnull=False
    )
    counts = referrals.values("referring_provider").annotate(n=Count("pk")).order_by("referring_provider")
    from refloop.directory.models import ReferringProvider

    letters = []
    period_label = f"from {start:%B} {start.day} to {end:%B} {end.day}, {end:%Y}"
    for row in counts:
        provider = ReferringProvider.objects.get(pk=row["referring_provider"])
        if Letter.objects.filter(provider=provider, kind=LetterKind.THANK_YOU_SUMMARY, period_start=start).exists():
            continue
        patients = [
            {
                "initials": letter_context.initials(r.patient.first_name, r.patient.last_name),
                "received_on": timezone.localtime(r.received_at).date(),
                "status": r.get_state_display(),
            }
            for r in referrals.filter(referring_provider=provider).select_related("patient").order_by("received_at")
        ]
        summary = {"count": row["n"], "period": period_label, "patients": patients}
        try:
            with transaction.atomic():
                letter = letter_create(
                    kind=LetterKind.THANK_YOU_SUMMARY, provider=provider, summary=summary, period=(start, end), by=by
                )
                delivery_queue(letter=letter, by=by)
        except IntegrityError:
            continue
        letters.append(letter)
    audit_record(actor=by, action="letters.summaries.create", detail={"start": str(start), "letters": len(letters)})
    return letters


# Status links


def status_link_create(*, practice, by, note: str = "", days: int | None = None) -> tuple[StatusLink, str]:
    """A new link for a referring office; the token is returned once and only its hash is kept."""
    token = new_token()
    days = days or settings.LETTERS_STATUS_LINK_DAYS
    link = StatusLink.objects.create(
        practice=practice,
        token_hash=token_hash(token),
        hint=token[:6],
        note=note[:200],
        expires_at=timezone.now() + dt.timedelta(days=days),
        created_by=by if getattr(by, "pk", None) else None,
    )
    audit_record(actor=by, action="letters.status_link.create", target=link, detail={"practice": practice.pk})
    return link, token


def status_link_revoke(*, link: StatusLink, by) -> StatusLink:
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.revoked_by = by
        link.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(actor=by, action="letters.status_link.revoke", target=link, detail={"practice": link.practice_id})
    return link


# The public referral form


def web_referral_submit(*, data: dict[str, Any], attachments, form_token: str, practice=None):
    """A referral sent from the public form: the provider found by NPI (or added, marked as from a referral),
    the referral received through referral_receive (channel "web", which queues the acknowledgement), and the
    documents attached. The same form sent twice gives one referral."""
    from refloop.directory.models import ReferringProvider, ReportChannel, Source
    from refloop.directory.services import affiliation_set, provider_create
    from refloop.referrals.services import attachment_add, referral_receive

    key = "web:" + hashlib.sha256(form_token.encode()).hexdigest()[:40]
    with transaction.atomic():
        provider = ReferringProvider.objects.current().filter(npi=data["npi"]).first()
        if provider is None:
            provider = provider_create(
                source=Source.REFERRAL,
                npi=data["npi"],
                first_name=data["provider_first_name"],
                last_name=data["provider_last_name"],
                phone=data.get("phone", ""),
                fax=data.get("fax", ""),
                email=data.get("email", ""),
                report_channel=ReportChannel.FAX if data.get("fax") else ReportChannel.EMAIL,
                report_fax=data.get("fax", ""),
                report_email=data.get("email", ""),
            )
            if practice is not None:
                affiliation_set(provider=provider, practice=practice, is_primary=True)
        received = referral_receive(
            patient_data={
                "first_name": data["patient_first_name"],
                "last_name": data["patient_last_name"],
                "birth_date": data["patient_birth_date"],
                "phone": data.get("patient_phone", ""),
            },
            referring_provider=provider,
            reason=data["reason"],
            urgency=data["urgency"],
            channel="web",
            idempotency_key=key,
            notes=f"From the web form ({data.get('office_name') or (practice.name if practice else 'general link')})."
            f" Contact: {data.get('phone') or data.get('email') or data.get('fax') or 'none given'}.",
            by_label="web form",
        )
        if received.created:
            for upload in attachments:
                attachment_add(referral=received.referral, upload=upload, by=None)
    return received
