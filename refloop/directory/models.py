"""The referral-source directory: who sends patients to the practice.

Referring providers (keyed by NPI) work at referring practices (the offices, each with one or more
locations); the office staff who often decide where a patient goes are first-class contacts; and sources
that are not doctors (a patient who refers a friend, a campaign, an insurer, the ED) are kept beside them.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.db import connection, models
from django.db.models import Q

from refloop.lib.plain_sql import rows_from
from refloop.lib.validators import validate_npi
from refloop.practice.models import PostalAddress


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


class Tier(models.Model):
    """How much a source matters (A/B/C or the practice's own labels), and how often to visit it."""

    code = models.CharField(max_length=10, unique=True)
    label = models.CharField(max_length=60)
    target_visit_days = models.PositiveIntegerField(help_text="Target days between liaison visits.")
    rank = models.PositiveSmallIntegerField(default=0, help_text="Lower ranks first.")

    class Meta:
        ordering = ["rank", "code"]

    def __str__(self) -> str:
        return self.code


class Source(models.TextChoices):
    MANUAL = "manual", "Entered by staff"
    NPPES = "nppes", "NPPES file"
    NPI_API = "npi_api", "NPI Registry API"
    REFERRAL = "referral", "Created from a referral"
    IMPORT = "import", "Bulk import"


class ReportChannel(models.TextChoices):
    FAX = "fax", "Fax"
    EMAIL = "email", "Email"
    DIRECT = "direct", "Direct secure message"
    PORTAL = "portal", "Portal"
    MAIL = "mail", "Mail"


class DirectoryEntryQuerySet(models.QuerySet):
    def current(self):
        """Entries not merged into another (merged ones are kept only so a merge can be reversed)."""
        return self.filter(merged_into__isnull=True)

    def search(self, text: str):
        qs = self
        for term in text.lower().split()[:6]:
            qs = qs.filter(search_text__contains=term)
        return qs


class DirectoryEntry(models.Model):
    """Fields shared by providers and practices: ownership, tier, import bookkeeping, merge state."""

    npi = models.CharField("NPI", max_length=10, blank=True, validators=[validate_npi])
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    territory = models.ForeignKey(
        Territory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    liaison = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"role": "liaison"},
        help_text="The liaison who owns this relationship.",
    )
    phone = models.CharField(max_length=40, blank=True)
    fax = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    notes = models.TextField(blank=True)
    is_active = models.BooleanField("Active", default=True)
    deactivated_on = models.DateField(null=True, blank=True, help_text="NPI deactivation date from NPPES.")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    # Fields a person edited by hand: the NPPES import never overwrites them.
    manual_fields = models.JSONField(default=list, blank=True)
    last_referral_on = models.DateField(null=True, blank=True)
    search_text = models.CharField(max_length=400, blank=True, db_index=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DirectoryEntryQuerySet.as_manager()

    class Meta:
        abstract = True


class ReferringPractice(DirectoryEntry):
    """A referring office: one organization, often with several locations."""

    name = models.CharField(max_length=200)
    website = models.CharField(max_length=200, blank=True)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["npi"], condition=~Q(npi=""), name="referring_practice_unique_npi"
            ),
        ]
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return self.name

    @property
    def primary_location(self) -> PracticeLocation | None:
        locations = list(self.locations.all())
        return next((loc for loc in locations if loc.is_primary), locations[0] if locations else None)


class PracticeLocation(PostalAddress):
    """One address of a referring practice, with its own phone, fax and hours."""

    practice = models.ForeignKey(ReferringPractice, on_delete=models.CASCADE, related_name="locations")
    label = models.CharField(max_length=100, blank=True, help_text="e.g. Main office, Hilliard clinic")
    phone = models.CharField(max_length=40, blank=True)
    fax = models.CharField(max_length=40, blank=True)
    hours = models.CharField(max_length=200, blank=True)
    is_primary = models.BooleanField("Primary location", default=False)

    class Meta:
        ordering = ["-is_primary", "label", "pk"]

    def __str__(self) -> str:
        return self.label or self.one_line_address


class ReferringProvider(DirectoryEntry, PostalAddress):
    """A clinician who refers patients. The address is the practice location NPPES lists for them."""

    first_name = models.CharField(max_length=100, blank=True)
    middle_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100)
    name_prefix = models.CharField(max_length=20, blank=True)
    name_suffix = models.CharField(max_length=20, blank=True)
    credentials = models.CharField(max_length=60, blank=True, help_text="e.g. MD, DO, NP, PA-C, DDS")
    taxonomy_code = models.CharField("Primary taxonomy", max_length=10, blank=True)
    specialty = models.CharField(max_length=150, blank=True)
    report_channel = models.CharField(
        "Preferred report channel", max_length=10, choices=ReportChannel.choices, default=ReportChannel.FAX
    )
    report_fax = models.CharField("Fax for reports", max_length=40, blank=True)
    report_email = models.EmailField("Email for reports", blank=True)
    direct_address = models.EmailField("Direct address", blank=True)
    target_visit_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides the tier's visit cadence for this provider."
    )
    practices = models.ManyToManyField(
        ReferringPractice, through="ProviderPractice", related_name="providers"
    )
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["npi"], condition=~Q(npi=""), name="referring_provider_unique_npi"
            ),
        ]
        indexes = [models.Index(fields=["last_name", "first_name"])]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in [self.first_name, self.last_name] if p)
        return f"{name}, {self.credentials}" if self.credentials else name

    def primary_affiliation(self) -> ProviderPractice | None:
        """Where the provider mainly works: the affiliation flagged primary, else the oldest one."""
        return self.affiliations.select_related("practice").order_by("-is_primary", "pk").first()

    def primary_practice(self) -> ReferringPractice | None:
        """The practice of `primary_affiliation()`. Every intake from a provider asks: plain SQL (lib/plain_sql.py), as
        the ORM spent 0.8 ms of CPU building the same query (issue 8)."""
        found = rows_from(ReferringPractice, "p", _primary_practice_sql(), [self.pk])
        return found[0] if found else None


@functools.cache
def _primary_practice_sql() -> str:
    q = connection.ops.quote_name
    practice, affiliation = q(ReferringPractice._meta.db_table), q(ProviderPractice._meta.db_table)
    return (
        f"{practice} p JOIN {affiliation} a ON a.{q('practice_id')} = p.{q('id')} "
        f"WHERE a.{q('provider_id')} = %s ORDER BY a.{q('is_primary')} DESC, a.{q('id')} LIMIT 1"
    )


class Weekday(models.TextChoices):
    MON = "mon", "Mon"
    TUE = "tue", "Tue"
    WED = "wed", "Wed"
    THU = "thu", "Thu"
    FRI = "fri", "Fri"
    SAT = "sat", "Sat"
    SUN = "sun", "Sun"


class ProviderPractice(models.Model):
    """A provider works at a practice (at one of its locations, on some days of the week)."""

    provider = models.ForeignKey(ReferringProvider, on_delete=models.CASCADE, related_name="affiliations")
    practice = models.ForeignKey(ReferringPractice, on_delete=models.CASCADE, related_name="affiliations")
    location = models.ForeignKey(
        PracticeLocation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    days = models.JSONField(default=list, blank=True, help_text="Weekdays the provider is in this office.")
    is_primary = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "practice", "location"], name="provider_practice_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} at {self.practice}"

    @property
    def days_display(self) -> str:
        labels = dict(Weekday.choices)
        return ", ".join(labels[d] for d in Weekday.values if d in self.days)


class ProviderTaxonomy(models.Model):
    """A NUCC taxonomy (specialty) code a provider holds; exactly one is flagged primary by NPPES."""

    provider = models.ForeignKey(ReferringProvider, on_delete=models.CASCADE, related_name="taxonomies")
    code = models.CharField(max_length=10)
    description = models.CharField(max_length=200, blank=True)
    is_primary = models.BooleanField(default=False)
    license_number = models.CharField(max_length=40, blank=True)
    license_state = models.CharField(max_length=2, blank=True)

    class Meta:
        ordering = ["-is_primary", "code"]
        constraints = [models.UniqueConstraint(fields=["provider", "code"], name="provider_taxonomy_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.description}".strip()


class StaffRole(models.TextChoices):
    REFERRAL_COORDINATOR = "referral_coordinator", "Referral coordinator"
    OFFICE_MANAGER = "office_manager", "Office manager"
    MEDICAL_ASSISTANT = "medical_assistant", "Medical assistant"
    NURSE = "nurse", "Nurse"
    FRONT_DESK = "front_desk", "Front desk"
    SCHEDULER = "scheduler", "Scheduler"
    BILLING = "billing", "Billing"
    PRACTICE_ADMINISTRATOR = "practice_administrator", "Practice administrator"
    OTHER = "other", "Other"


class ContactPreference(models.TextChoices):
    PHONE = "phone", "Phone"
    EMAIL = "email", "Email"
    TEXT = "text", "Text message"
    IN_PERSON = "in_person", "In person"
    FAX = "fax", "Fax"


class StaffContact(models.Model):
    """Someone on a referring office's staff: often the person who decides where a patient is sent."""

    practice = models.ForeignKey(ReferringPractice, on_delete=models.CASCADE, related_name="staff")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True)
    role = models.CharField(max_length=30, choices=StaffRole.choices, default=StaffRole.FRONT_DESK)
    title = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    birthday_month = models.PositiveSmallIntegerField(null=True, blank=True)
    birthday_day = models.PositiveSmallIntegerField(null=True, blank=True)
    work_anniversary = models.DateField(
        null=True, blank=True, help_text="The day they started at this office."
    )
    contact_preference = models.CharField(
        max_length=10, choices=ContactPreference.choices, default=ContactPreference.PHONE
    )
    interests = models.CharField(
        max_length=300, blank=True, help_text="Likes, hobbies, family: what matters."
    )
    notes = models.TextField(blank=True)
    is_active = models.BooleanField("Active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(birthday_month__isnull=True) & Q(birthday_day__isnull=True))
                | (
                    Q(birthday_month__gte=1, birthday_month__lte=12)
                    & Q(birthday_day__gte=1, birthday_day__lte=31)
                ),
                name="staff_contact_birthday_valid",
            ),
        ]

    def __str__(self) -> str:
        return " ".join(p for p in [self.first_name, self.last_name] if p)


class OtherSourceKind(models.TextChoices):
    PATIENT = "patient", "Existing patient"
    SELF = "self", "Self-referral"
    CAMPAIGN = "campaign", "Marketing campaign"
    INSURER = "insurer", "Insurer"
    HOSPITAL = "hospital", "Hospital / ED"
    OTHER = "other", "Other"


class OtherSource(models.Model):
    """A referral source that is not a referring provider: a campaign, an insurer, the ED, word of mouth."""

    kind = models.CharField(max_length=20, choices=OtherSourceKind.choices)
    name = models.CharField(max_length=200)
    detail = models.CharField(max_length=300, blank=True)
    is_active = models.BooleanField("Active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="other_source_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class Merge(models.Model):
    """One merge of a duplicate into the record kept, with everything needed to reverse it."""

    class Kind(models.TextChoices):
        PROVIDER = "provider", "Provider"
        PRACTICE = "practice", "Practice"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    kept_id = models.BigIntegerField()
    removed_id = models.BigIntegerField()
    # {"moved": [[app_label.model, pk, field], ...], "filled": {field: old}, "deleted": [serialized rows]}
    changes = models.JSONField(default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_at = models.DateTimeField(auto_now_add=True)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reversed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.removed_id} merged into {self.kept_id}"
