from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from refloop.accounts.roles import Role
from refloop.directory.models import PracticeLocation, ReferringPractice, ReferringProvider, StaffContact, Territory
from refloop.outreach.compliance import GivenAs
from refloop.outreach.models import (
    ActivityKind,
    ActivityStatus,
    Concern,
    ConcernStatus,
    OutreachSettings,
)
from refloop.outreach.services import ActivityInput
from refloop.practice.models import Clinician

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
MONEY = forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal", "placeholder": "0.00"})


def outreach_people():
    """Who can own an outreach task or a concern: liaisons, managers, administrators."""
    return get_user_model().objects.filter(is_active=True, role__in=[Role.LIAISON, Role.MANAGER, Role.ADMIN])


def liaisons():
    return get_user_model().objects.filter(is_active=True, role=Role.LIAISON)


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj} ({obj.get_role_display().lower()})"


class ActivityForm(forms.Form):
    """The phone form: kind, date, practice by type-ahead, attendees as checkboxes, cost; the rest folded."""

    kind = forms.ChoiceField(choices=ActivityKind.choices, initial=ActivityKind.VISIT)
    date = forms.DateField(widget=DATE)
    status = forms.ChoiceField(
        choices=[
            ("", "By the date (future = planned)"),
            (ActivityStatus.PLANNED, "Planned"),
            (ActivityStatus.DONE, "Done"),
        ],
        required=False,
    )
    start_time = forms.TimeField(required=False, widget=TIME, label="Time")
    duration_minutes = forms.IntegerField(required=False, min_value=1, max_value=24 * 60, label="Minutes")
    practice = forms.ModelChoiceField(queryset=ReferringPractice.objects.current(), required=False)
    location = forms.ModelChoiceField(queryset=PracticeLocation.objects.all(), required=False)
    providers = forms.ModelMultipleChoiceField(queryset=ReferringProvider.objects.current(), required=False)
    staff = forms.ModelMultipleChoiceField(queryset=StaffContact.objects.all(), required=False)
    clinicians = forms.ModelMultipleChoiceField(
        queryset=Clinician.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Our clinicians who took part",
    )
    liaison = UserChoiceField(queryset=liaisons(), required=False, label="Liaison")
    cost = forms.DecimalField(required=False, min_value=Decimal("0"), max_digits=10, decimal_places=2, widget=MONEY)
    given_as = forms.ChoiceField(choices=GivenAs.choices, initial=GivenAs.ITEM, label="What was given")
    purpose = forms.CharField(required=False, max_length=300, label="Purpose or item")
    talking_points = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    outcome = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    receipt = forms.FileField(required=False, help_text="A photo or PDF of the receipt (JPEG, PNG, PDF or TIFF).")
    follow_up_title = forms.CharField(required=False, max_length=200, label="Follow-up")
    follow_up_due = forms.DateField(required=False, widget=DATE, label="Follow-up due")
    follow_up_owner = UserChoiceField(queryset=outreach_people(), required=False, label="Follow-up owner")
    override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Compliance override: reason",
        help_text="Only for a compliance role: why this item may take a physician over the year's limit.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date"].initial = timezone.localdate()
        self.fields["liaison"].queryset = liaisons()
        self.fields["follow_up_owner"].queryset = outreach_people()

    def to_input(self) -> ActivityInput:
        data = self.cleaned_data
        return ActivityInput(
            kind=data["kind"],
            date=data["date"],
            status=data.get("status") or None,
            start_time=data.get("start_time"),
            duration_minutes=data.get("duration_minutes"),
            practice=data.get("practice"),
            location=data.get("location"),
            providers=list(data.get("providers") or []),
            staff=list(data.get("staff") or []),
            clinicians=list(data.get("clinicians") or []),
            liaison=data.get("liaison"),
            cost=data.get("cost") or Decimal("0.00"),
            given_as=data.get("given_as") or GivenAs.ITEM,
            purpose=data.get("purpose", ""),
            talking_points=data.get("talking_points", ""),
            outcome=data.get("outcome", ""),
            follow_up_title=data.get("follow_up_title", ""),
            follow_up_due=data.get("follow_up_due"),
            follow_up_owner=data.get("follow_up_owner"),
        )


class ActivityFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "Any kind"), *ActivityKind.choices], required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *ActivityStatus.choices], required=False)
    liaison = UserChoiceField(queryset=liaisons(), required=False, empty_label="Any liaison")
    q = forms.CharField(
        required=False, max_length=100, widget=forms.TextInput(attrs={"type": "search", "placeholder": "Practice"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["liaison"].queryset = liaisons()


class ConcernForm(forms.ModelForm):
    class Meta:
        model = Concern
        fields = [
            "category",
            "severity",
            "summary",
            "what_happened",
            "provider",
            "raised_by",
            "owner",
            "raised_on",
            "due_on",
        ]
        widgets = {"raised_on": DATE, "due_on": DATE, "what_happened": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, practice: ReferringPractice, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = ReferringProvider.objects.filter(affiliations__practice=practice).distinct()
        self.fields["raised_by"].queryset = StaffContact.objects.filter(practice=practice, is_active=True)
        self.fields["owner"] = UserChoiceField(queryset=outreach_people(), required=False, label="Owner")
        self.fields["raised_on"].initial = timezone.localdate()
        self.fields["raised_on"].required = False


class ConcernUpdateForm(forms.ModelForm):
    class Meta:
        model = Concern
        fields = ["status", "severity", "owner", "due_on", "resolution"]
        widgets = {"due_on": DATE, "resolution": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"] = UserChoiceField(queryset=outreach_people(), required=False, label="Owner")
        self.fields["status"].choices = ConcernStatus.choices


class ReassignForm(forms.Form):
    territory = forms.ModelChoiceField(queryset=Territory.objects.all(), required=False, empty_label="No territory")
    liaison = UserChoiceField(
        queryset=liaisons(), required=False, empty_label="The territory's liaison", label="Liaison"
    )
    note = forms.CharField(required=False, max_length=300, help_text="Why it moves (shown in the history).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["liaison"].queryset = liaisons()


class OutreachSettingsForm(forms.ModelForm):
    thank_you_milestones = forms.CharField(
        required=False,
        label="Referral milestones to thank for",
        help_text="Comma-separated: the nth referral from a source that queues a thank-you note, e.g. 10, 25, 50, 100.",
    )

    class Meta:
        model = OutreachSettings
        fields = [
            "thank_you_on_first_referral",
            "thank_you_milestones",
            "thank_you_due_days",
            "staff_share_meal_cost",
            "warn_percent",
            "new_source_days",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and not self.is_bound:
            self.initial["thank_you_milestones"] = ", ".join(str(m) for m in self.instance.thank_you_milestones or [])

    def clean_thank_you_milestones(self) -> list[int]:
        text = self.cleaned_data.get("thank_you_milestones") or ""
        values = []
        for part in text.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or int(part) < 2:
                raise forms.ValidationError(f"“{part}” is not a referral count of 2 or more.")
            values.append(int(part))
        return sorted(set(values))

    def clean_warn_percent(self) -> int:
        value = self.cleaned_data["warn_percent"]
        if not 1 <= value <= 100:
            raise forms.ValidationError("Give a percentage from 1 to 100.")
        return value


class LimitForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=8,
        decimal_places=2,
        widget=MONEY,
        label="Non-monetary compensation limit, per physician per year",
    )
    incidental_per_occurrence = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=8,
        decimal_places=2,
        widget=MONEY,
        label="Medical staff incidental benefit, per occurrence (less than)",
    )
    limited_remuneration = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=10,
        decimal_places=2,
        widget=MONEY,
        label="Limited remuneration (z)",
    )
    source_note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Source",
        help_text="Where the figure comes from: the CMS CPI-U Updates page, the Federal Register notice...",
    )


class RepaymentForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=10, decimal_places=2, widget=MONEY)
    repaid_on = forms.DateField(widget=DATE, label="Repaid on")
    received_on = forms.DateField(
        widget=DATE,
        required=False,
        label="Item received on",
        help_text="Leave empty to use the date of the item that took the total over the limit.",
    )
    note = forms.CharField(required=False, max_length=300)
