"""The practice that runs refloop: its profile (letterhead), locations, clinicians and holidays.

The practice is one row: refloop serves one specialty practice (or one service line) per installation.
Locations and clinicians are where and by whom referred patients are seen; holidays feed business-day SLAs.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from refloop.lib.business_time import BusinessCalendar
from refloop.lib.hot_settings import remembered
from refloop.lib.validators import validate_npi, validate_us_state


class PostalAddress(models.Model):
    address_line1 = models.CharField("Address", max_length=200, blank=True)
    address_line2 = models.CharField("Address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True, validators=[validate_us_state])
    postal_code = models.CharField("ZIP", max_length=10, blank=True)

    class Meta:
        abstract = True

    @property
    def one_line_address(self) -> str:
        city_line = " ".join(
            p for p in [f"{self.city}," if self.city else "", self.state, self.postal_code] if p
        )
        parts = [self.address_line1, self.address_line2, city_line.rstrip(",")]
        return ", ".join(p for p in parts if p)


class Practice(PostalAddress):
    name = models.CharField(max_length=200)
    specialty = models.CharField(max_length=100, help_text="e.g. Orthopaedics, Cardiology, Oral surgery")
    npi = models.CharField("Organization NPI", max_length=10, blank=True, validators=[validate_npi])
    phone = models.CharField(max_length=40, blank=True)
    fax = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    website = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def current(cls) -> Practice | None:
        return cls.objects.order_by("pk").first()

    @classmethod
    def recent(cls) -> Practice | None:
        """The letterhead as automatic letters read it: a per-process copy at most a few seconds old."""
        return remembered("practice.practice", cls.current)


class Location(PostalAddress):
    name = models.CharField(max_length=120, unique=True)
    phone = models.CharField(max_length=40, blank=True)
    fax = models.CharField(max_length=40, blank=True)
    hours = models.CharField(max_length=200, blank=True, help_text="e.g. Mon-Fri 8:00-17:00")
    is_active = models.BooleanField("Active", default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Clinician(models.Model):
    """A specialist of the practice who sees referred patients and signs consult reports."""

    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    credentials = models.CharField(max_length=40, blank=True, help_text="e.g. MD, DO, DDS, PA-C")
    npi = models.CharField("NPI", max_length=10, unique=True, validators=[validate_npi])
    specialty = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    locations = models.ManyToManyField(Location, related_name="clinicians", blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="clinician",
        help_text="The login this clinician uses to sign reports.",
    )
    is_active = models.BooleanField("Active", default=True)

    class Meta:
        ordering = ["last_name", "first_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}"
        return f"{name}, {self.credentials}" if self.credentials else name


class Holiday(models.Model):
    """A day the practice is closed; due times skip it like a weekend."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.name} ({self.date:%Y-%m-%d})"


class ServiceLevels(models.Model):
    """The practice's promises to referring offices: how fast each step of the loop must happen.

    One row. Business days skip weekends and the practice's holidays; "close" is the end of the business day.
    """

    first_contact_days_routine = models.PositiveSmallIntegerField(
        "First contact, routine (business days)", default=1
    )
    first_contact_days_urgent = models.PositiveSmallIntegerField(
        "First contact, urgent (business days; 0 = same day)", default=0
    )
    first_contact_hours_stat = models.PositiveSmallIntegerField("First contact, stat (business hours)", default=2)
    schedule_days_routine = models.PositiveSmallIntegerField("Scheduled, routine (business days)", default=5)
    schedule_days_urgent = models.PositiveSmallIntegerField("Scheduled, urgent (business days)", default=2)
    schedule_days_stat = models.PositiveSmallIntegerField("Scheduled, stat (business days)", default=1)
    report_days = models.PositiveSmallIntegerField("Consult report after the visit (business days)", default=2)
    send_back_days = models.PositiveSmallIntegerField("Patient sent back after the report (days)", default=7)
    follow_up_days = models.PositiveSmallIntegerField("Follow-up after a no-show (business days)", default=1)
    stalled_after_days = models.PositiveSmallIntegerField("Stalled after no change for (days)", default=5)
    opens = models.TimeField("Business day opens", default=dt.time(8, 0))
    closes = models.TimeField("Business day closes", default=dt.time(17, 0))
    default_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Owner of referrals that arrive with nobody assigned (web form, FHIR, HL7, import).",
    )

    class Meta:
        verbose_name_plural = "service levels"

    def __str__(self) -> str:
        return "Service levels"

    @classmethod
    def current(cls) -> ServiceLevels:
        levels, _ = cls.objects.get_or_create(pk=1)
        return levels

    @classmethod
    def recent(cls) -> ServiceLevels:
        """The levels as the intake paths read them: a per-process copy at most a few seconds old, with the default
        owner (lib/hot_settings.py; settings pages read `current()`)."""

        def load() -> ServiceLevels:
            cls.objects.get_or_create(pk=1)
            return cls.objects.select_related("default_owner").get(pk=1)

        return remembered("practice.service_levels", load)

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            tz=ZoneInfo(settings.TIME_ZONE),
            holidays=remembered("practice.holidays", lambda: frozenset(Holiday.objects.values_list("date", flat=True))),
            opens=self.opens,
            closes=self.closes,
        )


class SecuritySettings(models.Model):
    """The practice's security policy that staff may tune (one row); the rest is fixed in settings.py."""

    idle_logoff_minutes = models.PositiveSmallIntegerField(
        "Log off after inactivity (minutes)",
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(480)],
        help_text="A signed-in page left untouched this long logs its user off (1 to 480 minutes).",
    )
    liaisons_see_clinical_details = models.BooleanField(
        "Liaisons see clinical details",
        default=False,
        help_text="Off: on a source's page a liaison sees referral counts, dates and states only. On: also the "
        "patient, reason and diagnoses (minimum necessary: leave off unless liaisons need them).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "security settings"

    def __str__(self) -> str:
        return "Security settings"

    @classmethod
    def current(cls) -> SecuritySettings:
        found = cls.objects.filter(pk=1).first()
        return found if found is not None else cls(pk=1)
