"""Letters to referring offices and patients, the consult report, and each letter's delivery.

A letter is written once (its body rendered from the practice's template when it is created, so what was sent
never changes when a template is edited later) and delivered by one or more deliveries: one per channel tried.
A delivery is a row the web request writes in the same transaction as the step that caused it; a background
task run by `refloop worker` reads it and talks to the gateway, so a slow gateway never blocks a page and a
crash never loses a letter.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from refloop.directory.models import ReferringPractice, ReferringProvider
from refloop.practice.models import Clinician
from refloop.referrals.models import Patient, Referral, ReferralEvent


class LetterKind(models.TextChoices):
    RECEIPT = "receipt", "Receipt acknowledgement"
    SCHEDULED = "scheduled", "Appointment scheduled"
    MISSED = "missed", "No-show or cancelled"
    DECLINED = "declined", "Referral declined"
    CONSULT_REPORT = "consult_report", "Consult / progress report"
    SENT_BACK = "sent_back", "Patient sent back"
    AFTER_VISIT = "after_visit", "After-visit instructions"
    THANK_YOU_FIRST = "thank_you_first", "Thank-you for a first referral"
    THANK_YOU_SUMMARY = "thank_you_summary", "Periodic thank-you summary"
    FREE = "free", "Free letter"


class Recipient(models.TextChoices):
    REFERRING_PROVIDER = "referring_provider", "Referring provider"
    PATIENT = "patient", "Patient"


def token_hash(token: str) -> str:
    """Public tokens are stored only as their SHA-256: a copy of the database gives no working link."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class LetterTemplate(models.Model):
    """The practice's wording for one kind of letter: HTML in the Django template language, checked on save."""

    kind = models.CharField(max_length=20, choices=LetterKind.choices, unique=True)
    title = models.CharField(max_length=150, help_text="The letter's heading (plain text).")
    body = models.TextField(help_text="HTML with {{ fields }} from the list beside the editor.")
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        return self.get_kind_display()


class LetterRule(models.Model):
    """Which letter a workflow step sends, and to whom: the practice switches each one on or off."""

    step = models.CharField(max_length=30, help_text="The workflow step: receive, schedule, decline...")
    kind = models.CharField(max_length=20, choices=LetterKind.choices)
    recipient = models.CharField(max_length=20, choices=Recipient.choices, default=Recipient.REFERRING_PROVIDER)
    enabled = models.BooleanField(default=False)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["step", "kind", "recipient"], name="letter_rule_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.step}: {self.get_kind_display()} to {self.get_recipient_display().lower()}"


class ReportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SIGNED = "signed", "Signed"
    SENT = "sent", "Sent"


def report_pdf_path(instance: ConsultReport, filename: str) -> str:
    return f"reports/{instance.referral_id}/{instance.ehr_pdf_sha256[:16]}.pdf"


class ConsultReport(models.Model):
    """The specialist's report to the referring provider: written or pasted (or an EHR PDF), signed, sent.

    Interim (progress) reports keep the loop open; the final one, once delivered, moves the referral to
    "report sent". The signature freezes the content: its hash is kept, and a signed report cannot be edited.
    """

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="consult_reports")
    clinician = models.ForeignKey(Clinician, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    is_final = models.BooleanField(
        "Final report", default=True, help_text="The final report closes the report step; interim ones do not."
    )
    findings = models.TextField(blank=True)
    assessment = models.TextField(blank=True)
    plan = models.TextField(blank=True)
    recommendations = models.TextField("Recommendations for the referring provider", blank=True)
    ehr_pdf = models.FileField(upload_to=report_pdf_path, blank=True)
    ehr_pdf_name = models.CharField(max_length=200, blank=True)
    ehr_pdf_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.DRAFT)
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signature = models.CharField(max_length=200, blank=True, help_text="Name and credentials as signed.")
    content_sha256 = models.CharField(max_length=64, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        kind = "Consult report" if self.is_final else "Progress report"
        return f"{kind} #{self.pk}"

    @property
    def is_signed(self) -> bool:
        return self.status in (ReportStatus.SIGNED, ReportStatus.SENT)

    def content_digest(self) -> str:
        parts = [self.findings, self.assessment, self.plan, self.recommendations, self.ehr_pdf_sha256]
        parts.append("final" if self.is_final else "interim")
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def letter_pdf_path(instance: Letter, filename: str) -> str:
    return f"letters/{instance.created_at:%Y}/{instance.pk}-{instance.pdf_sha256[:12]}.pdf"


class Letter(models.Model):
    """One letter to one recipient, its body fixed when it was written."""

    kind = models.CharField(max_length=20, choices=LetterKind.choices)
    template = models.ForeignKey(LetterTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.CASCADE, related_name="letters")
    event = models.ForeignKey(ReferralEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="letters")
    report = models.OneToOneField(ConsultReport, null=True, blank=True, on_delete=models.CASCADE, related_name="letter")
    recipient = models.CharField(max_length=20, choices=Recipient.choices)
    provider = models.ForeignKey(
        ReferringProvider, null=True, blank=True, on_delete=models.CASCADE, related_name="letters"
    )
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.CASCADE, related_name="letters")
    recipient_name = models.CharField(max_length=200)
    recipient_address = models.TextField(blank=True)
    title = models.CharField(max_length=150)
    html = models.TextField(help_text="The body as rendered when the letter was written.")
    text = models.TextField(blank=True, help_text="What the sender added (a free letter's words, instructions).")
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    pdf = models.FileField(upload_to=letter_pdf_path, blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One workflow step never sends the same kind of letter to the same recipient twice.
            models.UniqueConstraint(
                fields=["event", "kind", "recipient"],
                condition=Q(event__isnull=False),
                name="letter_once_per_event",
            ),
            models.UniqueConstraint(
                fields=["provider", "kind", "period_start"],
                condition=Q(kind="thank_you_summary"),
                name="letter_summary_once_per_period",
            ),
        ]
        indexes = [models.Index(fields=["referral", "kind"])]

    def __str__(self) -> str:
        return f"L-{self.pk}"

    @property
    def reference(self) -> str:
        return f"L-{self.pk}"

    @property
    def has_phi(self) -> bool:
        return self.referral_id is not None or self.patient_id is not None


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "Email"
    FAX = "fax", "Fax"
    DIRECT = "direct", "Direct secure message"
    MAIL = "mail", "Mail (print queue)"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"
    REDIRECTED = "redirected", "Redirected"


DONE_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


class DeliveryQuerySet(models.QuerySet):
    def failed(self):
        return self.filter(status=DeliveryStatus.FAILED)

    def waiting(self):
        return self.filter(status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.RETRYING]).exclude(
            channel=DeliveryChannel.MAIL
        )

    def print_queue(self):
        return self.filter(channel=DeliveryChannel.MAIL, status=DeliveryStatus.QUEUED)

    def done(self):
        return self.filter(status__in=DONE_STATUSES)


class Delivery(models.Model):
    """One try at getting a letter to its recipient by one channel, with the gateway's answers.

    `handed_over_at` is the idempotency marker: it is committed just before the last byte that would let the
    gateway accept the message. A send interrupted after it may have reached the recipient (see delivery.py).
    """

    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=DeliveryChannel.choices)
    address = models.TextField(blank=True, help_text="Email or Direct address, fax number, or postal address.")
    route_note = models.CharField(max_length=300, blank=True, help_text="Why this channel was chosen.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Attempts in all, numbering the log.")
    tries = models.PositiveSmallIntegerField(default=0, help_text="Attempts since a person last queued it.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    answer = models.TextField(blank=True, help_text="The gateway's last answer.")
    gateway_ref = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "channel"]), models.Index(fields=["status", "lease_until"])]

    def __str__(self) -> str:
        return f"{self.letter} by {self.get_channel_display().lower()}"

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES


class AttemptOutcome(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    RETRY = "retry", "Temporary failure"
    FAILED = "failed", "Refused"
    UNKNOWN = "unknown", "Outcome unknown"
    INTERRUPTED = "interrupted", "Worker stopped"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=AttemptOutcome.choices, blank=True)
    answer = models.TextField(blank=True)
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["number", "pk"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery}"


class ActiveTokenQuerySet(models.QuerySet):
    def active(self, now=None):
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())

    def by_token(self, token: str):
        return self.active().filter(token_hash=token_hash(token)).first()


class StatusLink(models.Model):
    """A referring office's own secure link to where its patients stand: no account, expiring, revocable."""

    practice = models.ForeignKey(ReferringPractice, on_delete=models.CASCADE, related_name="status_links")
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=8, help_text="The token's first characters, to tell links apart.")
    note = models.CharField(max_length=200, blank=True, help_text="Who it was given to.")
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    views = models.PositiveIntegerField(default=0)

    objects = ActiveTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"status link {self.hint}… for {self.practice}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class LetterLink(models.Model):
    """The secure, expiring link an email carries instead of the PDF itself."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    downloads = models.PositiveIntegerField(default=0)

    objects = ActiveTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return f"secure link for {self.delivery}"


class RateCounter(models.Model):
    """Requests to the public pages per key (client address, token) and time window, shared by all workers."""

    key = models.CharField(max_length=100)
    window = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window"], name="rate_counter_unique")]
        indexes = [models.Index(fields=["window"])]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window:%H:%M}: {self.count}"
