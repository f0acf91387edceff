"""The referral-source directory: who sends patients to the practice."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Territory(models.Model):
    """A group of referring offices that one liaison looks after (by geography or by health system)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    liaison = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="territories",
        limit_choices_to={"role": "liaison"},
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "territories"

    def __str__(self) -> str:
        return self.name
