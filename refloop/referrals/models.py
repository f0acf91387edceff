"""Patients and referrals: the closed loop from receipt to the patient sent back to the referring provider.

Patient rows are protected health information: pages show the minimum needed, and every read and write of
them goes through services that record it in the audit trail.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from refloop.directory.models import OtherSource, ReferringPractice, ReferringProvider
from refloop.practice.models import Clinician, Location, PostalAddress
from refloop.referrals.workflow import OPEN_STATES, LostReason, State


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "U", "Unknown"


class Patient(PostalAddress):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    birth_date = models.DateField("Date of birth")
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    mrn = models.CharField("MRN", max_length=40, blank=True, help_text="The patient's number in the practice's EHR.")
    payer = models.CharField(max_length=120, blank=True)
    plan = models.CharField(max_length=120, blank=True)
    member_id = models.CharField("Member ID", max_length=60, blank=True)
    preferred_language = models.CharField(max_length=40, blank=True, default="English")
    name_key = models.CharField(max_length=210, db_index=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [models.UniqueConstraint(fields=["mrn"], condition=~Q(mrn=""), name="patient_unique_mrn")]
        indexes = [models.Index(fields=["name_key", "birth_date"])]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @staticmethod
    def make_name_key(first: str, last: str) -> str:
        return f"{last.strip().lower()}|{first.strip().lower()}"

    @staticmethod
    def name_key_prefix(prefix: str) -> Q:
        """Patients whose name key starts with `prefix`, in a form the index on name_key answers.

        SQLite's LIKE ignores case, so `startswith` there cannot use the index and scans every patient (0.5 s at
        a million); the key is already lower case, so a range over it is the same set and uses the index.
        """
        if connection.vendor == "sqlite":
            return Q(name_key__gte=prefix, name_key__lt=prefix + "\U0010ffff")
        return Q(name_key__startswith=prefix)

    def save(self, *args, **kwargs):
        self.name_key = self.make_name_key(self.first_name, self.last_name)
        super().save(*args, **kwargs)


class Urgency(models.TextChoices):
    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent"
    STAT = "stat", "Stat"


class Channel(models.TextChoices):
    FAX = "fax", "Fax"
    PHONE = "phone", "Phone"
    WEB = "web", "Web form"
    FHIR = "fhir", "E-referral (FHIR)"
    HL7 = "hl7", "HL7 v2"
    EMAIL = "email", "Email"
    IMPORT = "import", "Import"
    WALK_IN = "walk_in", "Walk-in"


class ReferralQuerySet(models.QuerySet):
    def open(self):
        return self.filter(state__in=OPEN_STATES)

    def overdue(self, now: dt.datetime | None = None):
        return self.open().filter(due_at__lt=now or timezone.now())

    def for_source(self, provider: ReferringProvider):
        return self.filter(referring_provider=provider)


class Referral(models.Model):
    """One patient sent by one source, followed until the patient is back with the referring provider."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="referrals")
    # Exactly one primary source: a referring provider, or another kind of source (patient, campaign, ED...).
    # The source and owner keys are indexed by the composite indexes in Meta that lead with them; an index of
    # the key alone would be one more to update on each of a million imported rows, and never chosen.
    referring_provider = models.ForeignKey(
        ReferringProvider, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals", db_index=False
    )
    referring_practice = models.ForeignKey(
        ReferringPractice, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals", db_index=False
    )
    other_source = models.ForeignKey(
        OtherSource, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals"
    )
    secondary_source = models.ForeignKey(
        OtherSource, null=True, blank=True, on_delete=models.PROTECT, related_name="secondary_referrals"
    )
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    clinician = models.ForeignKey(Clinician, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    diagnosis_codes = models.JSONField(default=list, blank=True)
    urgency = models.CharField(max_length=10, choices=Urgency.choices, default=Urgency.ROUTINE)
    received_at = models.DateTimeField(db_index=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.FAX)
    authorization_number = models.CharField(max_length=60, blank=True)
    visits_approved = models.PositiveSmallIntegerField(null=True, blank=True)
    visits_used = models.PositiveSmallIntegerField(default=0)
    notes = models.TextField(blank=True)
    # Unique and indexed through Meta, not unique=True/db_index=True: PostgreSQL then gets no second
    # "_like" index for prefix searches, which nothing makes on these keys.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    external_id = models.CharField(max_length=100, blank=True)

    state = models.CharField(max_length=12, choices=State.choices, default=State.RECEIVED)
    coordinator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="coordinated_referrals",
        help_text="The coordinator responsible for this referral from intake to send-back.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_referrals",
        db_index=False,  # (owner, state, due_at) in Meta
    )
    due_at = models.DateTimeField(null=True, blank=True)
    first_contact_at = models.DateTimeField(null=True, blank=True)
    appointment_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    report_sent_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.CharField(max_length=300, blank=True)
    lost_reason = models.CharField(max_length=20, choices=LostReason.choices, blank=True)
    follow_up = models.TextField("Follow-up instructions for the referring provider", blank=True)
    last_event_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReferralQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(referring_provider__isnull=False, other_source__isnull=True)
                | Q(referring_provider__isnull=True, other_source__isnull=False),
                name="referral_exactly_one_primary_source",
            ),
            models.UniqueConstraint(fields=["idempotency_key"], name="referral_unique_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["state", "due_at"]),
            models.Index(fields=["state", "appointment_at"]),
            models.Index(fields=["owner", "state", "due_at"]),
            models.Index(fields=["state", "last_event_at"]),
            models.Index(fields=["referring_provider", "received_at"]),
            models.Index(fields=["referring_practice", "received_at"]),
            models.Index(fields=["external_id"], name="referral_external_id"),
        ]

    def __str__(self) -> str:
        return f"Referral #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def source_label(self) -> str:
        if self.referring_provider_id:
            return str(self.referring_provider)
        return str(self.other_source)


class ReferralEvent(models.Model):
    """One step of a referral's history: who moved it, when, from which state to which, and why."""

    referral = models.ForeignKey(
        Referral,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,  # (referral, at) in Meta
    )
    at = models.DateTimeField(db_index=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    by_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=30)
    from_state = models.CharField(max_length=12, choices=State.choices, blank=True)
    to_state = models.CharField(max_length=12, choices=State.choices)
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["referral", "at"])]

    def __str__(self) -> str:
        return f"{self.action}: {self.from_state or '—'} → {self.to_state}"


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"referrals/{instance.referral_id}/{instance.sha256[:16]}"


class Attachment(models.Model):
    """A document that came with a referral (faxed pages, images, a PDF from the EHR)."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at"]

    def __str__(self) -> str:
        return self.original_name
