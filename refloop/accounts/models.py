from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from refloop.accounts.roles import Role, role_can


class User(AbstractUser):
    """A member of the practice's staff. The role decides what they see and may do (accounts.roles)."""

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.COORDINATOR)
    phone = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["last_name", "first_name", "username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def can(self, action: str) -> bool:
        return self.is_active and role_can(self.role, action)


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event through the ORM."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events are append-only: they cannot be updated")

    def delete(self):
        raise AppendOnlyError("audit events are append-only: they cannot be deleted")

    def about_patient(self, patient_id) -> AuditEventQuerySet:
        return self.filter(patient_id=str(patient_id))


class AuditEvent(models.Model):
    """Append-only record of who did what to which record: security events, PHI access, merges, overrides.

    Events form a hash chain (accounts.chain): `seq` counts from 1 with no gap and `hash` covers the event's
    fields and the previous event's hash, so an edit or a deletion made behind the application's back (raw
    SQL, a restored copy) is found by `refloop audit verify`. Write only through accounts.audit.audit_record.
    """

    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(
        max_length=150, blank=True, help_text="Username, API key or system process."
    )
    action = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=60, blank=True)
    target_id = models.CharField(max_length=40, blank=True)
    patient_id = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="The patient whose data was read or written, if any."
    )
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return (
            f"#{self.seq} {self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_type}:{self.target_id}"
        )

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"audit event #{self.seq} is append-only: it cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"audit event #{self.seq} is append-only: it cannot be deleted")
