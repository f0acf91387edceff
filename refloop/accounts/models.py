from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

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


class AuditEvent(models.Model):
    """Append-only record of who did what to which record: security events, PHI access, merges, overrides."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(
        max_length=150, blank=True, help_text="Username, API key or system process."
    )
    action = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=60, blank=True)
    target_id = models.CharField(max_length=40, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_type}:{self.target_id}"
        )
