"""Outreach: what liaisons do for referring offices, and the compliance ledger that keeps gratitude lawful.

An activity is one touch (visit, lunch, call, gift, thank-you note...), planned or done. Items of value given
to referring physicians are written to the ledger (one row per physician per activity, the cost split to the
cent) and checked against the Stark non-monetary compensation limit of their calendar year (42 CFR
411.357(k)). Concerns are what a referring office asked or complained about, followed until resolved.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from refloop.directory.models import (
    PracticeLocation,
    ReferringPractice,
    ReferringProvider,
    StaffContact,
    Territory,
)
from refloop.lib.hot_settings import remembered
from refloop.practice.models import Clinician

USER = settings.AUTH_USER_MODEL


class ActivityKind(models.TextChoices):
    VISIT = "visit", "In-person visit"
    LUNCH = "lunch", "Lunch or in-service"
    CALL = "call", "Phone call"
    EMAIL = "email", "Email"
    GIFT = "gift", "Gift"
    THANK_YOU = "thank_you", "Thank-you note"
    EDUCATION = "education", "Education / CME event"
    DROP_OFF = "drop_off", "Drop-off"


# The touches that count as "seen in person" for the visit cadence.
IN_PERSON_KINDS = (ActivityKind.VISIT, ActivityKind.LUNCH)
# The touches a liaison drives to: stops on the day's route and events in the calendar export.
STOP_KINDS = (ActivityKind.VISIT, ActivityKind.LUNCH, ActivityKind.DROP_OFF, ActivityKind.EDUCATION)


class ActivityStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class Origin(models.TextChoices):
    MANUAL = "manual", "Logged by staff"
    AUTO = "auto", "Queued automatically"


class ActivityQuerySet(models.QuerySet):
    def planned(self):
        return self.filter(status=ActivityStatus.PLANNED)

    def done(self):
        return self.filter(status=ActivityStatus.DONE)

    def in_person(self):
        return self.filter(kind__in=IN_PERSON_KINDS)


def receipt_path(instance: Activity, filename: str) -> str:
    return f"outreach/receipts/{instance.receipt_sha256[:16]}"


class Activity(models.Model):
    """One touch with a referring office: who took part on both sides, what it cost, what came of it."""

    kind = models.CharField(max_length=12, choices=ActivityKind.choices)
    status = models.CharField(max_length=10, choices=ActivityStatus.choices, default=ActivityStatus.DONE)
    date = models.DateField(db_index=True)
    start_time = models.TimeField(null=True, blank=True)
    duration_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    practice = models.ForeignKey(
        ReferringPractice, null=True, blank=True, on_delete=models.CASCADE, related_name="outreach_activities"
    )
    location = models.ForeignKey(PracticeLocation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    providers = models.ManyToManyField(ReferringProvider, blank=True, related_name="outreach_activities")
    staff = models.ManyToManyField(StaffContact, blank=True, related_name="outreach_activities")
    liaison = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="outreach_activities"
    )
    clinicians = models.ManyToManyField(
        Clinician,
        blank=True,
        related_name="outreach_activities",
        help_text="The practice's own specialists who took part.",
    )
    cost = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    receipt = models.FileField(upload_to=receipt_path, blank=True)
    receipt_name = models.CharField(max_length=200, blank=True)
    receipt_content_type = models.CharField(max_length=100, blank=True)
    receipt_sha256 = models.CharField(max_length=64, blank=True)
    purpose = models.CharField(max_length=300, blank=True)
    talking_points = models.TextField(blank=True)
    outcome = models.TextField(blank=True)
    # A thank-you queued by a referral (letters render it later): the source thanked, the referral, its ordinal.
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    thanked_provider = models.ForeignKey(
        ReferringProvider, null=True, blank=True, on_delete=models.CASCADE, related_name="thank_yous"
    )
    referral = models.ForeignKey(
        "referrals.Referral", null=True, blank=True, on_delete=models.SET_NULL, related_name="thank_yous"
    )
    milestone = models.PositiveIntegerField(
        null=True, blank=True, help_text="The referral count thanked for (1 = the first referral)."
    )
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "-start_time", "-pk"]
        verbose_name_plural = "activities"
        constraints = [
            models.UniqueConstraint(
                fields=["thanked_provider", "milestone"],
                condition=Q(milestone__isnull=False),
                name="activity_one_thank_you_per_milestone",
            ),
            models.CheckConstraint(condition=Q(cost__gte=0), name="activity_cost_not_negative"),
        ]
        indexes = [
            models.Index(fields=["liaison", "status", "date"]),
            models.Index(fields=["practice", "date"]),
            models.Index(fields=["kind", "status", "date"]),
        ]

    def __str__(self) -> str:
        where = self.practice.name if self.practice_id else "—"
        return f"{self.get_kind_display()} · {where} · {self.date:%b} {self.date.day}, {self.date.year}"

    @property
    def is_planned(self) -> bool:
        return self.status == ActivityStatus.PLANNED

    @property
    def starts_at(self) -> dt.datetime | None:
        if self.start_time is None:
            return None
        return dt.datetime.combine(self.date, self.start_time, tzinfo=timezone.get_current_timezone())


class TaskKind(models.TextChoices):
    FOLLOW_UP = "follow_up", "Follow-up"
    THANK_YOU = "thank_you", "Thank-you note"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class OutreachTaskQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status=TaskStatus.OPEN)


class OutreachTask(models.Model):
    """Something a liaison owes a referring office by a date: a follow-up from a visit, a thank-you note."""

    kind = models.CharField(max_length=10, choices=TaskKind.choices, default=TaskKind.FOLLOW_UP)
    title = models.CharField(max_length=200)
    due_on = models.DateField(db_index=True)
    owner = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="outreach_tasks")
    activity = models.ForeignKey(Activity, null=True, blank=True, on_delete=models.CASCADE, related_name="follow_ups")
    practice = models.ForeignKey(
        ReferringPractice, null=True, blank=True, on_delete=models.CASCADE, related_name="outreach_tasks"
    )
    provider = models.ForeignKey(
        ReferringProvider, null=True, blank=True, on_delete=models.CASCADE, related_name="outreach_tasks"
    )
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OutreachTaskQuerySet.as_manager()

    class Meta:
        ordering = ["due_on", "pk"]
        indexes = [models.Index(fields=["owner", "status", "due_on"])]

    def __str__(self) -> str:
        return self.title


class ConcernCategory(models.TextChoices):
    COMPLAINT = "complaint", "Complaint"
    QUESTION = "question", "Question"
    REQUEST = "request", "Request"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ConcernStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"


OPEN_CONCERN_STATES = (ConcernStatus.OPEN, ConcernStatus.IN_PROGRESS)


class ConcernQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_CONCERN_STATES)

    def for_entry(self, entry):
        """Concerns about a provider, or about a practice (a concern always names the practice)."""
        if isinstance(entry, ReferringProvider):
            return self.filter(provider=entry)
        return self.filter(practice=entry)


class Concern(models.Model):
    """A referring office's complaint, question or request, owned by someone until it is resolved."""

    practice = models.ForeignKey(ReferringPractice, on_delete=models.CASCADE, related_name="concerns")
    provider = models.ForeignKey(
        ReferringProvider, null=True, blank=True, on_delete=models.SET_NULL, related_name="concerns"
    )
    raised_by = models.ForeignKey(
        StaffContact,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="concerns",
        help_text="The office's staff contact who raised it.",
    )
    category = models.CharField(max_length=10, choices=ConcernCategory.choices, default=ConcernCategory.COMPLAINT)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    summary = models.CharField(max_length=200)
    what_happened = models.TextField(blank=True)
    owner = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="concerns")
    raised_on = models.DateField(default=timezone.localdate)
    due_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ConcernStatus.choices, default=ConcernStatus.OPEN)
    resolution = models.TextField(blank=True)
    resolved_on = models.DateField(null=True, blank=True)
    resolved_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConcernQuerySet.as_manager()

    class Meta:
        ordering = ["raised_on", "pk"]
        indexes = [models.Index(fields=["status", "raised_on"]), models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return self.summary

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_CONCERN_STATES

    def days_outstanding(self, today: dt.date | None = None) -> int:
        end = self.resolved_on if self.resolved_on else (today or timezone.localdate())
        return max(0, (end - self.raised_on).days)

    def is_overdue(self, today: dt.date | None = None) -> bool:
        return self.is_open and self.due_on is not None and self.due_on < (today or timezone.localdate())


class TerritoryAssignment(models.Model):
    """One move of a practice between territories (and liaisons): the history a reassignment keeps."""

    practice = models.ForeignKey(ReferringPractice, on_delete=models.CASCADE, related_name="territory_history")
    from_territory = models.ForeignKey(Territory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_territory = models.ForeignKey(Territory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Names as they were, so the history reads right after a territory is renamed or removed.
    from_territory_name = models.CharField(max_length=100, blank=True)
    to_territory_name = models.CharField(max_length=100, blank=True)
    from_liaison = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_liaison = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.practice}: {self.from_territory_name or '—'} → {self.to_territory_name or '—'}"


def default_milestones() -> list[int]:
    return [10, 25, 50, 100]


class OutreachSettings(models.Model):
    """The practice's outreach policies. One row."""

    thank_you_on_first_referral = models.BooleanField("Thank a source for its first referral", default=True)
    thank_you_milestones = models.JSONField(
        "Referral milestones to thank for",
        default=default_milestones,
        blank=True,
        help_text="The nth referral from a source that queues a thank-you note, e.g. 10, 25, 50, 100.",
    )
    thank_you_due_days = models.PositiveSmallIntegerField("Thank-you note due within (days)", default=3)
    staff_share_meal_cost = models.BooleanField(
        "Office staff share a meal's cost",
        default=False,
        help_text="Off: the physicians who attended carry the whole cost (the cautious reading). "
        "On: everyone from the office who attended takes an equal share; only physicians' shares are counted "
        "against the Stark limit.",
    )
    warn_percent = models.PositiveSmallIntegerField(
        "Warn at (% of the yearly limit)", default=80, validators=[MinValueValidator(1)]
    )
    new_source_days = models.PositiveSmallIntegerField(
        "A source is new for (days)",
        default=180,
        help_text="Sources added, or first referring, within this many days and never visited are listed.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "outreach settings"

    def __str__(self) -> str:
        return "Outreach settings"

    @classmethod
    def current(cls) -> OutreachSettings:
        found, _ = cls.objects.get_or_create(pk=1)
        return found

    @classmethod
    def recent(cls) -> OutreachSettings:
        """As every intake reads it (the thank-you milestones): a per-process copy at most a few seconds old."""
        return remembered("outreach.settings", cls.current)


class LimitSource(models.TextChoices):
    CMS = "cms", "CMS CPI-U updates page"
    SECONDARY = "secondary", "Reported by health-law firms citing CMS"
    ADMIN = "admin", "Entered by an administrator"
    MISSING = "missing", "Not found in a primary source"


class StarkLimit(models.Model):
    """One calendar year's Stark figures; a year without an amount is flagged, never estimated."""

    year = models.PositiveSmallIntegerField(unique=True)
    amount = models.DecimalField(
        "Non-monetary compensation per physician per year", max_digits=8, decimal_places=2, null=True, blank=True
    )
    incidental_per_occurrence = models.DecimalField(
        "Medical staff incidental benefit, per occurrence (less than)",
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
    )
    limited_remuneration = models.DecimalField(
        "Limited remuneration (z)", max_digits=10, decimal_places=2, null=True, blank=True
    )
    source = models.CharField(max_length=10, choices=LimitSource.choices, default=LimitSource.ADMIN)
    source_note = models.TextField(blank=True)
    updated_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-year"]

    def __str__(self) -> str:
        return f"{self.year}: {self.amount if self.amount is not None else 'no figure'}"


class LedgerEntry(models.Model):
    """The value one physician received in one activity: their share of a meal, or a gift given to them."""

    physician = models.ForeignKey(ReferringProvider, on_delete=models.PROTECT, related_name="stark_ledger")
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="ledger_entries")
    year = models.PositiveSmallIntegerField()
    on = models.DateField()
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    item = models.CharField(max_length=300)
    shared_by = models.PositiveSmallIntegerField(default=1, help_text="How many people the cost was split among.")
    recorded_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["on", "pk"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["activity", "physician"], name="ledger_one_entry_per_physician"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="ledger_amount_not_negative"),
        ]
        indexes = [models.Index(fields=["physician", "year"]), models.Index(fields=["year"])]

    def __str__(self) -> str:
        return f"{self.physician} {self.on}: {self.amount}"


class ComplianceOverride(models.Model):
    """A compliance role let an item through that took a physician over the year's limit (or a year with no
    figure), with the reason in their words. Always audited."""

    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="overrides")
    physician = models.ForeignKey(ReferringProvider, on_delete=models.PROTECT, related_name="stark_overrides")
    year = models.PositiveSmallIntegerField()
    reason = models.TextField()
    total_after = models.DecimalField(max_digits=10, decimal_places=2)
    limit = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"Override for {self.physician} ({self.year})"


class Repayment(models.Model):
    """The 50% cure (42 CFR 411.357(k)(3)): the physician paid back the excess in time."""

    physician = models.ForeignKey(ReferringProvider, on_delete=models.PROTECT, related_name="stark_repayments")
    year = models.PositiveSmallIntegerField()
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    received_on = models.DateField(help_text="When the physician received the item that went over the limit.")
    repaid_on = models.DateField()
    note = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-year", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["physician", "year"], name="repayment_one_per_physician_year"),
        ]

    def __str__(self) -> str:
        return f"Repayment by {self.physician} for {self.year}"
