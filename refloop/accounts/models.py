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
