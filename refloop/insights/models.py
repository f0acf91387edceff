"""What the numbers remember between page views: early-warning alerts (and the rollups behind the dashboard)."""

from __future__ import annotations

import itertools

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


# Rollups behind the dashboard ---------------------------------------------------------------------------------
# Written only by refloop/insights/rollups.py; see its docstring for the design.

# Histogram edges: a value v falls in the first bucket whose edge is greater than v (the last bucket is open).
CONTACT_HOUR_EDGES = (1, 4, 8, 24, 48, 72, 120, 168)  # hours from receipt to first contact: 9 buckets
APPOINTMENT_DAY_EDGES = (3, 7, 14, 21, 30, 45, 60, 90)  # days from receipt to the appointment: 9 buckets
TURNAROUND_CAP = 15  # business days from visit to report: one bucket per day, 15 meaning "15 or more"
LOST_REASONS = ("went_elsewhere", "insurance", "could_not_reach", "patient_declined", "other")

ALL_ID = -1  # in a rollup row, "every value of this dimension" (the row sums over it); 0 means "none"
ALL_TEXT = "*"


MEMBER_LEVEL_FILTERS = ("location_id", "clinician_id", "payer")  # a referral's own, not its source's
MEMBER_FILTER_COLUMNS = ("location_id", "clinician_id", "payer", "urgency", "territory_id", "liaison_id", "specialty")


class RollupMember(models.Model):
    """What one referral contributes to the rollups, as last added: its dimensions and its outcome.

    Changing a referral subtracts this row's contribution and adds the new one in the same transaction, so
    the rollups never drift; the drill-down lists filter these rows, so a list always holds exactly the
    referrals a number counted. Ids are plain integers (0 = none): a rollup never blocks deleting a record.
    """

    referral = models.OneToOneField(
        "referrals.Referral", primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    month = models.DateField()
    source_kind = models.CharField(max_length=20)  # "provider" or an OtherSourceKind
    provider_id = models.BigIntegerField(default=0)
    practice_id = models.BigIntegerField(default=0)
    other_source_id = models.BigIntegerField(default=0)
    payer = models.CharField(max_length=120, blank=True)
    location_id = models.BigIntegerField(default=0)
    clinician_id = models.BigIntegerField(default=0)
    specialty = models.CharField(max_length=150, blank=True)
    territory_id = models.BigIntegerField(default=0)
    liaison_id = models.BigIntegerField(default=0)
    urgency = models.CharField(max_length=10)
    scheduled = models.BooleanField(default=False)
    seen = models.BooleanField(default=False)
    report_sent = models.BooleanField(default=False)
    closed_loop = models.BooleanField(default=False)
    declined = models.BooleanField(default=False)
    open = models.BooleanField(default=False)
    lost_reason = models.CharField(max_length=20, blank=True)
    contact_hours = models.FloatField(null=True)
    contact_bucket = models.SmallIntegerField(null=True)
    appointment_days = models.IntegerField(null=True)
    appointment_bucket = models.SmallIntegerField(null=True)
    turnaround_days = models.SmallIntegerField(null=True, help_text=f"Capped at {TURNAROUND_CAP}.")

    class Meta:
        indexes = [
            # Drill-down lists read newest first (month, then referral) along these indexes.
            models.Index(fields=["month", "referral"], name="rollupmember_month"),
            models.Index(fields=["provider_id", "month", "referral"], name="rollupmember_provider"),
            models.Index(fields=["practice_id", "month", "referral"], name="rollupmember_practice"),
            models.Index(fields=["other_source_id"], name="rollupmember_other"),
            # Covers the source lists under filter pairs SourceRollup does not keep (an index-only scan of the period).
            models.Index(
                fields=["month", *MEMBER_FILTER_COLUMNS, "provider_id", "practice_id"], name="rollupmember_sources"
            ),
        ] + [
            # The same, led by a member-level filter: with another one, a location's (clinician's, payer's) rows of the
            # period are one index range, not every row of the period checked one by one.
            models.Index(
                fields=[column, "month", *(c for c in MEMBER_FILTER_COLUMNS if c != column), "provider_id",
                        "practice_id"],
                name=f"rollupmember_sources_{column.removesuffix('_id')[:4]}",
            )
            for column in MEMBER_LEVEL_FILTERS
        ]

    def __str__(self) -> str:
        return f"Referral #{self.referral_id} counted in {self.month:%Y-%m}"


def _counts(prefix: str, n: int) -> dict[str, models.Field]:
    return {f"{prefix}{i}": models.IntegerField(default=0) for i in range(n)}


MEASURES = (
    ["received", "scheduled", "seen", "report_sent", "closed_loop", "declined", "open", "contacted"]
    + [f"lost_{reason}" for reason in LOST_REASONS]
    + ["contact_hours_sum", "appointment_days_sum"]
    + [f"c{i}" for i in range(len(CONTACT_HOUR_EDGES) + 1)]
    + [f"a{i}" for i in range(len(APPOINTMENT_DAY_EDGES) + 1)]
    + [f"t{i}" for i in range(TURNAROUND_CAP + 1)]
)
CUBE_DIMENSIONS = (
    "source_kind",
    "payer",
    "location_id",
    "clinician_id",
    "specialty",
    "territory_id",
    "liaison_id",
    "urgency",
)
# Cuboid number -> the filter dimensions it keeps besides month, source kind and payer (which every cuboid keeps):
# none, each one alone, each pair, and all of them. A page with at most two filters reads the cuboid keeping
# exactly those, so every dimension of its key is fixed (a filter value or ALL) and the key index leads to
# just the rows it sums; three filters or more read the full cuboid by its most selective dimension's index.
FILTER_DIMENSIONS = ("location_id", "clinician_id", "specialty", "territory_id", "liaison_id", "urgency")
CUBOIDS: dict[int, tuple[str, ...]] = dict(
    enumerate(
        [()]
        + [(d,) for d in FILTER_DIMENSIONS]
        + list(itertools.combinations(FILTER_DIMENSIONS, 2))
        + [FILTER_DIMENSIONS]
    )
)
FULL_CUBOID = len(CUBOIDS) - 1


class ReferralRollup(models.Model):
    """Referrals received in one month, summed over every referral that shares the row's dimensions.

    Rows come in cuboids (see rollups.CUBOIDS): each cuboid keeps month, source kind and payer plus some of
    the filter dimensions, the others stored as ALL_ID / ALL_TEXT. A page reads the smallest cuboid that holds
    the dimensions its filters name, so an unfiltered year is a few hundred rows, not 200,000 referrals.
    """

    cuboid = models.PositiveSmallIntegerField()
    month = models.DateField()
    source_kind = models.CharField(max_length=20)
    payer = models.CharField(max_length=120)
    location_id = models.BigIntegerField()
    clinician_id = models.BigIntegerField()
    specialty = models.CharField(max_length=150)
    territory_id = models.BigIntegerField()
    liaison_id = models.BigIntegerField()
    urgency = models.CharField(max_length=10)
    received = models.IntegerField(default=0)
    scheduled = models.IntegerField(default=0)
    seen = models.IntegerField(default=0)
    report_sent = models.IntegerField(default=0)
    closed_loop = models.IntegerField(default=0)
    declined = models.IntegerField(default=0)
    open = models.IntegerField(default=0)
    contacted = models.IntegerField(default=0)
    lost_went_elsewhere = models.IntegerField(default=0)
    lost_insurance = models.IntegerField(default=0)
    lost_could_not_reach = models.IntegerField(default=0)
    lost_patient_declined = models.IntegerField(default=0)
    lost_other = models.IntegerField(default=0)
    contact_hours_sum = models.FloatField(default=0)
    appointment_days_sum = models.BigIntegerField(default=0)
    locals().update(_counts("c", len(CONTACT_HOUR_EDGES) + 1))
    locals().update(_counts("a", len(APPOINTMENT_DAY_EDGES) + 1))
    locals().update(_counts("t", TURNAROUND_CAP + 1))

    class Meta:
        constraints = [
            # Filter dimensions before month: see CUBOIDS.
            models.UniqueConstraint(
                fields=["cuboid", *FILTER_DIMENSIONS, "month", "source_kind", "payer"], name="referralrollup_key"
            ),
        ]
        indexes = [
            models.Index(fields=[name, "month"], condition=Q(cuboid=FULL_CUBOID), name=f"referralrollup_full_{i}")
            for i, name in enumerate(FILTER_DIMENSIONS)
        ] + [models.Index(fields=["month"], condition=Q(received=0), name="referralrollup_empty")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} cuboid {self.cuboid}: {self.received} received"


class SourceKind(models.TextChoices):
    PROVIDER = "provider", "Referring provider"
    PRACTICE = "practice", "Referring practice"
    OTHER = "other", "Other source"


def running_column(month: int) -> str:
    """SourceRollup's column counting a year's referrals received from January to `month` (1-12)."""
    return f"to_{month:02d}"


RUNNING_COLUMNS = tuple(running_column(m) for m in range(1, 13))
SOURCE_KEY = (
    "kind", "source_id", "year", "territory_id", "liaison_id", "specialty", "urgency", "location_id", "clinician_id",
    "payer",
)  # fmt: skip
# SourceRollup counts each referral once under every urgency, location, clinician and payer, and once more under each
# of these of its own (the others ALL): a list filtered by at most one of them reads its rows.
SOURCE_SINGLE_FILTERS = ("urgency", *MEMBER_LEVEL_FILTERS)


class SourceRollup(models.Model):
    """Referrals one source sent in one calendar year (by the territory, liaison and specialty they were counted
    under): what the top-source lists and the new and growing sources read.

    A row holds running totals: `to_03` counts the referrals of January to March. A period's count is then, per
    year it touches, the total to its last month less the total before its first, so a source's 24 months and the
    24 before are a few rows whatever the months (monthly rows were nearly as many as the referrals, as most
    source-months hold one, and grouping them was most of a long list's time).

    Each referral is counted five times: under every urgency, location, clinician and payer (ALL_TEXT, ALL_ID),
    and under its own urgency, its own location, its own clinician and its own payer, each with the other three
    ALL (SOURCE_SINGLE_FILTERS). A list filtered by at most one of these (and any of territory, liaison and
    specialty, which belong to the source) reads only the rows of that value; two of them at once are narrow enough
    for the member rows, through an index led by one of them.

    `received` is the year's total: a row whose referrals all moved away is pruned on it."""

    kind = models.CharField(max_length=10, choices=SourceKind.choices)
    source_id = models.BigIntegerField()
    year = models.PositiveSmallIntegerField()
    territory_id = models.BigIntegerField()
    liaison_id = models.BigIntegerField()
    specialty = models.CharField(max_length=150)
    urgency = models.CharField(max_length=10)  # or ALL_TEXT: every urgency
    location_id = models.BigIntegerField(default=ALL_ID)  # or ALL_ID: every location (0: none)
    clinician_id = models.BigIntegerField(default=ALL_ID)  # or ALL_ID
    payer = models.CharField(max_length=120, default=ALL_TEXT)  # or ALL_TEXT ("": none)
    received = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=SOURCE_KEY, name="sourcerollup_key"),
        ]
        indexes = [
            # Covers every source-list query, in source order: the lists sum each source as they read, with no sort
            # (SQLite) and no table lookup.
            models.Index(
                fields=["kind", *SOURCE_SINGLE_FILTERS, "source_id", "year", "territory_id", "liaison_id",
                        "specialty", *RUNNING_COLUMNS],
                name="sourcerollup_sources",
            ),  # fmt: skip
            models.Index(fields=["year"], condition=Q(received=0), name="sourcerollup_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.source_id} in {self.year}: {self.received}"


for _column in RUNNING_COLUMNS:
    SourceRollup.add_to_class(_column, models.IntegerField(default=0))


class RollupPending(models.Model):
    """A referral changed by an intake or a step whose contribution to the sums is not folded in yet.

    Intakes and steps only queue their referral here (one insert, no lock on the shared sums); the next reader of
    the sums, or the worker every few seconds, folds the whole queue in at once (`rollups.rollup_catch_up`). A plain
    integer, not a foreign key: the queue never blocks deleting a referral.
    """

    referral_id = models.BigIntegerField(primary_key=True)

    def __str__(self) -> str:
        return f"Referral {self.referral_id} waiting for the rollups"


class MonthlyReportRecipient(models.Model):
    """A manager who asked for the monthly report by email (opted in on the monthly reports page)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Monthly report to {self.user}"


class MonthlyReportDelivery(models.Model):
    """One month's report emailed to one person: the worker sends a month at most once per person, even when
    the job runs twice (a retry, two workers)."""

    month = models.DateField(help_text="The first day of the month reported.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    address = models.EmailField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-month", "user_id"]
        constraints = [models.UniqueConstraint(fields=["month", "user"], name="monthlyreport_once_per_month")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} report to {self.address}"
