"""Integration credentials and the log of every message exchanged with another system.

The message log is what makes electronic intake safe to retry: a sender that resends the same HL7 message
control id or FHIR request is recognised and answered as before, and an outbound message is sent once even
if the worker dies halfway through.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApiKey(models.Model):
    """A per-integration credential. Only a hash of the secret is stored; the key is shown once, at creation."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, unique=True, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=128)
    scopes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class InterfaceMessage(models.Model):
    """One message in or out: HL7 v2, FHIR or API. Raw payloads are PHI and never leave the database."""

    class Direction(models.TextChoices):
        INBOUND = "in", "Inbound"
        OUTBOUND = "out", "Outbound"

    class Protocol(models.TextChoices):
        HL7V2 = "hl7v2", "HL7 v2"
        FHIR = "fhir", "FHIR R4"
        API = "api", "JSON API"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        ERROR = "error", "Error"
        REVIEW = "review", "Needs review"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    direction = models.CharField(max_length=3, choices=Direction.choices)
    protocol = models.CharField(max_length=10, choices=Protocol.choices)
    message_type = models.CharField(max_length=30, blank=True, help_text="REF^I12, SIU^S12, ServiceRequest...")
    control_id = models.CharField(max_length=64, blank=True, help_text="MSH-10, or the request's idempotency key.")
    sender = models.CharField(max_length=200, blank=True, help_text="Sending application/facility or API key name.")
    destination = models.CharField(max_length=200, blank=True)
    referral = models.ForeignKey(
        "referrals.Referral", null=True, blank=True, on_delete=models.SET_NULL, related_name="interface_messages"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    detail = models.TextField(blank=True, help_text="Why it was refused or failed; names the segment or element.")
    payload = models.TextField(blank=True)
    response = models.TextField(blank=True, help_text="The ACK or OperationOutcome answered, to answer a resend alike.")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="Outbound, while sending: when the attempt is taken to have died."
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["direction", "protocol", "sender", "control_id"],
                condition=~Q(control_id=""),
                name="interfacemessage_unique_control_id",
            )
        ]
        indexes = [models.Index(fields=["direction", "status"])]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.message_type} {self.control_id}"


# What waits for a person: FHIR referrals whose requester is unknown, HL7 referrals that failed after their ACK.
WAITING_STATUSES = (InterfaceMessage.Status.REVIEW, InterfaceMessage.Status.FAILED)


def waiting_count() -> int:
    """Inbound messages waiting for a person (the review page, and the notice on the referrals page)."""
    return InterfaceMessage.objects.filter(
        direction=InterfaceMessage.Direction.INBOUND, status__in=WAITING_STATUSES
    ).count()
