from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from refloop.accounts.roles import Role
from refloop.directory.models import (
    OtherSource,
    PracticeLocation,
    ReferringPractice,
    ReferringProvider,
    ReportChannel,
    StaffContact,
    Territory,
    Tier,
    Weekday,
)
from refloop.directory.selectors import DirectoryFilters, Status
from refloop.practice.forms import StateCodeMixin


def _liaisons():
    return get_user_model().objects.filter(role=Role.LIAISON, is_active=True)


class VersionedForm(forms.ModelForm):
    """Carries the record's version so a save over someone else's newer change is refused, not silent."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version
        if "liaison" in self.fields:
            self.fields["liaison"].queryset = _liaisons()

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self._meta.fields if name in self.cleaned_data}


class ProviderForm(StateCodeMixin, VersionedForm):
    class Meta:
        model = ReferringProvider
        fields = [
            "npi",
            "name_prefix",
            "first_name",
            "middle_name",
            "last_name",
            "name_suffix",
            "credentials",
            "taxonomy_code",
            "specialty",
            "phone",
            "fax",
            "email",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "postal_code",
            "report_channel",
            "report_fax",
            "report_email",
            "direct_address",
            "tier",
            "target_visit_days",
            "territory",
            "liaison",
            "is_active",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def clean(self):
        data = super().clean()
        channel = data.get("report_channel")
        needs = {
            ReportChannel.FAX: ("report_fax", "fax", "a fax number"),
            ReportChannel.EMAIL: ("report_email", "email", "an email address"),
            ReportChannel.DIRECT: ("direct_address", None, "a Direct address"),
        }
        if channel in needs:
            own, fallback, what = needs[channel]
            if not data.get(own) and not (fallback and data.get(fallback)):
                self.add_error(own, f"Reports go by {ReportChannel(channel).label.lower()}: give {what}.")
        if channel == ReportChannel.MAIL and not (data.get("address_line1") and data.get("city")):
            self.add_error("address_line1", "Reports go by mail: give the mailing address.")
        return data


class PracticeForm(VersionedForm):
    class Meta:
        model = ReferringPractice
        fields = [
            "name",
            "npi",
            "phone",
            "fax",
            "email",
            "website",
            "tier",
            "territory",
            "liaison",
            "is_active",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class LocationForm(StateCodeMixin, forms.ModelForm):
    class Meta:
        model = PracticeLocation
        fields = [
            "label",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "postal_code",
            "phone",
            "fax",
            "hours",
            "is_primary",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("address_line1", "city", "state", "postal_code"):
            self.fields[name].required = True


class NewPracticeForm(PracticeForm):
    """A new practice is entered with its first location in one form."""

    address_line1 = forms.CharField(label="Address", max_length=200)
    city = forms.CharField(max_length=100)
    state = forms.CharField(max_length=2)
    postal_code = forms.CharField(label="ZIP", max_length=10)

    def clean_state(self) -> str:
        return self.cleaned_data["state"].strip().upper()

    def location(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("address_line1", "city", "state", "postal_code")} | {
            "phone": self.cleaned_data.get("phone", ""),
            "fax": self.cleaned_data.get("fax", ""),
        }


class StaffContactForm(forms.ModelForm):
    class Meta:
        model = StaffContact
        fields = [
            "first_name",
            "last_name",
            "role",
            "title",
            "phone",
            "email",
            "birthday_month",
            "birthday_day",
            "work_anniversary",
            "contact_preference",
            "interests",
            "notes",
            "is_active",
        ]
        widgets = {
            "notes": forms.Textarea(attrs={"rows": 3}),
            "work_anniversary": forms.DateInput(attrs={"type": "date"}),
            "birthday_month": forms.Select(choices=[("", "—")] + [(m, m) for m in range(1, 13)]),
            "birthday_day": forms.Select(choices=[("", "—")] + [(d, d) for d in range(1, 32)]),
        }

    def clean(self):
        data = super().clean()
        month, day = data.get("birthday_month"), data.get("birthday_day")
        if (month is None) != (day is None):
            self.add_error("birthday_day", "Give both the month and the day of the birthday, or neither.")
        elif month is not None:
            import datetime as dt

            try:
                dt.date(2024, month, day)  # 2024 is a leap year, so 29 February is allowed
            except (ValueError, OverflowError):
                self.add_error("birthday_day", f"Month {month} has no day {day}.")
        return data


class OtherSourceForm(forms.ModelForm):
    class Meta:
        model = OtherSource
        fields = ["kind", "name", "detail", "is_active"]


class AffiliationForm(forms.Form):
    practice = forms.ModelChoiceField(queryset=ReferringPractice.objects.current(), widget=forms.HiddenInput)
    location = forms.ModelChoiceField(queryset=PracticeLocation.objects.all(), required=False)
    days = forms.MultipleChoiceField(
        choices=Weekday.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    is_primary = forms.BooleanField(required=False, label="Primary office")


class FilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=100)
    specialty = forms.CharField(required=False, max_length=100)
    tier = forms.ChoiceField(required=False)
    territory = forms.ModelChoiceField(queryset=Territory.objects.all(), required=False)
    liaison = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)
    place = forms.CharField(required=False, label="City or ZIP", max_length=60)
    status = forms.ChoiceField(choices=[("", "Any status")] + Status.CHOICES, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", "Any tier")] + [
            (t.code, f"{t.code} · {t.label}") for t in Tier.objects.all()
        ]
        self.fields["liaison"].queryset = _liaisons()
        self.fields["territory"].empty_label = "Any territory"
        self.fields["liaison"].empty_label = "Any liaison"

    def filters(self) -> DirectoryFilters:
        """The valid filters; the page shows the errors of the others (e.g. a territory since deleted)."""
        self.is_valid()
        data = self.cleaned_data
        territory, liaison = data.get("territory"), data.get("liaison")
        return DirectoryFilters(
            q=data.get("q", "").strip(),
            specialty=data.get("specialty", "").strip(),
            tier=data.get("tier", ""),
            territory=territory.pk if territory else None,
            liaison=liaison.pk if liaison else None,
            place=data.get("place", "").strip(),
            status=data.get("status", ""),
        )
