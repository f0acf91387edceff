"""What the numbers remember between page views: early-warning alerts (and the rollups behind the dashboard)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class AlertKind(models.TextChoices):
    SLIPPING = "slipping", "Slipping"
    DORMANT = "dormant", "Dormant"
    RISING = "rising", "Rising"


class SourceAlert(models.Model):
    """A referral source whose referrals changed beyond the noise of its own history, found by the scan.

    One open alert per source and kind: a nightly scan that finds the same drop again refreshes it rather than
    crying wolf twice; an alert the source has recovered from is resolved, not deleted, so the history stays.
    """

    kind = models.CharField(max_length=10, choices=AlertKind.choices)
    provider = models.ForeignKey(
        "directory.ReferringProvider", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    practice = models.ForeignKey(
        "directory.ReferringPractice", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    since = models.DateField(help_text="When the change began, as the detector estimates it.")
    usual_per_month = models.FloatField()
    recent_per_month = models.FloatField()
    drop = models.FloatField(help_text="Estimated relative change: -0.7 is a 70% drop, +0.5 a 50% rise.")
    confidence = models.FloatField(help_text="How sure, 0 to 1.")
    evidence = models.JSONField(default=dict, blank=True, help_text="Expected vs actual series for the chart.")
    as_of = models.DateField(help_text="The day the scan evaluated.")
    detected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    follow_up = models.ForeignKey(
        "outreach.OutreachTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    followed_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-as_of", "-confidence"]
        constraints = [
            models.CheckConstraint(
                condition=Q(provider__isnull=False, practice__isnull=True)
                | Q(provider__isnull=True, practice__isnull=False),
                name="sourcealert_exactly_one_source",
            ),
            models.UniqueConstraint(
                fields=["kind", "provider"],
                condition=Q(resolved_at__isnull=True, provider__isnull=False),
                name="sourcealert_one_open_per_provider",
            ),
            models.UniqueConstraint(
                fields=["kind", "practice"],
                condition=Q(resolved_at__isnull=True, practice__isnull=False),
                name="sourcealert_one_open_per_practice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.provider or self.practice} since {self.since}"
