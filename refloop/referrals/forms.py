from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from refloop.accounts.roles import Role
from refloop.directory.models import OtherSource, ReferringProvider
from refloop.lib.icd10 import parse_icd10_list
from refloop.practice.models import Clinician, Location
from refloop.referrals.models import Channel, Patient, Referral, Sex, Urgency
from refloop.referrals.selectors import QUEUE_KEYS, QUEUES, QueueFilters
from refloop.referrals.uploads import ALLOWED_KINDS, attachment_max_bytes, check_upload, megabytes
from refloop.referrals.workflow import LostReason, Transition

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
ACCEPT = "application/pdf,image/png,image/jpeg,image/tiff,.pdf,.png,.jpg,.jpeg,.tif,.tiff"
# Channels a person logs by hand; FHIR, HL7 and imports arrive through their own doors.
STAFF_CHANNELS = [(c.value, c.label) for c in (Channel.FAX, Channel.PHONE, Channel.EMAIL, Channel.WEB, Channel.WALK_IN)]


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format=DATETIME_LOCAL)


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Several files in one input, each checked by its content (referrals.uploads)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT}))
        kwargs.setdefault("help_text", f"{ALLOWED_KINDS}, up to {megabytes(attachment_max_bytes())} each.")
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        items = data if isinstance(data, list | tuple) else [data] if data else []
        if not items and self.required:
            raise ValidationError("Choose a file to attach.")
        files = [super(AttachmentsField, self).clean(item, initial) for item in items]
        problems = []
        for upload in files:
            try:
                check_upload(upload)
            except ValidationError as exc:
                problems.extend(exc.messages)
        if problems:
            raise ValidationError(problems)
        return files


def coordinators():
    return get_user_model().objects.filter(role=Role.COORDINATOR, is_active=True).order_by("first_name", "last_name")


def active_locations():
    return Location.objects.filter(is_active=True)


def active_clinicians():
    return Clinician.objects.filter(is_active=True)


class QueueFilterForm(forms.Form):
    queue = forms.ChoiceField(choices=[(q.key, q.label) for q in QUEUES], required=False)
    scope = forms.ChoiceField(choices=[("mine", "Mine"), ("all", "Everyone's")], required=False)
    location = forms.ModelChoiceField(queryset=Location.objects.none(), required=False, empty_label="Any location")
    urgency = forms.ChoiceField(choices=[("", "Any urgency"), *Urgency.choices], required=False)

    def __init__(self, data, *, user):
        self.user = user
        data = data.copy()
        data["queue"] = data.get("queue") or "new"
        data["scope"] = data.get("scope") or self.default_scope()  # so the select shows the scope in force
        super().__init__(data)
        self.fields["location"].queryset = active_locations()
        self.fields["scope"].widget.attrs["aria-label"] = "Whose referrals"
        self.fields["location"].widget.attrs["aria-label"] = "Location"
        self.fields["urgency"].widget.attrs["aria-label"] = "Urgency"

    def default_scope(self) -> str:
        """Coordinators and clinicians work their own referrals; managers look over everybody's."""
        return "mine" if self.user.role in (Role.COORDINATOR, Role.CLINICIAN) else "all"

    def values(self) -> tuple[str, str, QueueFilters]:
        """(queue, scope, filters) from the valid parameters; a stale or mistyped one falls back to its default."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        queue = data.get("queue") or "new"
        queue = queue if queue in QUEUE_KEYS else "new"
        scope = data.get("scope") or self.default_scope()
        location = data.get("location")
        filters = QueueFilters(
            owner_id=self.user.pk if scope == "mine" else None,
            location_id=location.pk if location else None,
            urgency=data.get("urgency") or "",
        )
        return queue, scope, filters


class BulkAssignForm(forms.Form):
    referral = forms.ModelMultipleChoiceField(
        queryset=Referral.objects.open(),
        error_messages={"required": "Tick the referrals to assign first."},
    )
    coordinator = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), empty_label="Assign to…", label="Coordinator"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["coordinator"].queryset = coordinators()
        self.fields["coordinator"].widget.attrs["aria-label"] = "Coordinator to assign the selected referrals to"

    def clean_referral(self):
        chosen = self.cleaned_data["referral"]
        if len(chosen) > 200:
            raise ValidationError("Assign at most 200 referrals at a time.")
        return chosen


class AssignForm(forms.Form):
    coordinator = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Assign to")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "assign")
        super().__init__(*args, **kwargs)
        self.fields["coordinator"].queryset = coordinators()


class ContactForm(forms.Form):
    note = forms.CharField(
        label="What happened",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Called, left voicemail; patient prefers mornings"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "contact")
        super().__init__(*args, **kwargs)


class AttachmentForm(forms.Form):
    files = AttachmentsField(label="Attach documents")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "attach")
        super().__init__(*args, **kwargs)


class MoveForm(forms.Form):
    """One step of the loop with just the fields that step needs (workflow.Transition.required)."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    appointment_at = forms.DateTimeField(label="Appointment", widget=DateTimeLocalInput)
    location = forms.ModelChoiceField(queryset=Location.objects.none())
    clinician = forms.ModelChoiceField(queryset=Clinician.objects.none())
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    follow_up = forms.CharField(
        label="Follow-up instructions for the referring provider",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    lost_reason = forms.ChoiceField(label="Why it was lost", choices=[("", "Choose…"), *LostReason.choices])
    note = forms.CharField(label="Note", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, transition: Transition, referral: Referral | None = None, **kwargs):
        kwargs.setdefault("prefix", "move")
        if referral is not None:
            kwargs.setdefault(
                "initial",
                {"version": referral.version, "location": referral.location_id, "clinician": referral.clinician_id},
            )
        super().__init__(*args, **kwargs)
        self.transition = transition
        keep = {"version", *transition.required}
        if not {"reason", "follow_up"} & set(transition.required):
            keep.add("note")
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if "location" in self.fields:
            self.fields["location"].queryset = active_locations()
        if "clinician" in self.fields:
            self.fields["clinician"].queryset = active_clinicians()
        if "reason" in self.fields and transition.name == "decline":
            self.fields["reason"].label = "Why it is declined (the referring office is told)"

    def service_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.transition.required}


class IntakeForm(forms.Form):
    """A referral as it arrives on the fax: the source, the patient, and what the referring provider asks."""

    # The source: a provider picked from the type-ahead, a new provider typed inline, or another source.
    referring_provider = forms.ModelChoiceField(
        queryset=ReferringProvider.objects.current(), required=False, widget=forms.HiddenInput
    )
    new_provider_first_name = forms.CharField(label="First name", max_length=100, required=False)
    new_provider_last_name = forms.CharField(label="Last name", max_length=100, required=False)
    new_provider_npi = forms.CharField(label="NPI", max_length=10, required=False)
    new_provider_phone = forms.CharField(label="Phone", max_length=40, required=False)
    new_provider_fax = forms.CharField(label="Fax", max_length=40, required=False)
    other_source = forms.ModelChoiceField(
        queryset=OtherSource.objects.none(), required=False, label="Another source", empty_label="—"
    )

    # The patient: one picked from the candidates, or the fields of a new one.
    patient = forms.ModelChoiceField(queryset=Patient.objects.all(), required=False, widget=forms.HiddenInput)
    patient_first_name = forms.CharField(label="First name", max_length=100, required=False)
    patient_last_name = forms.CharField(label="Last name", max_length=100, required=False)
    patient_birth_date = forms.DateField(label="Date of birth", required=False, widget=DateInput)
    patient_sex = forms.ChoiceField(label="Sex", choices=Sex.choices, initial=Sex.UNKNOWN, required=False)
    patient_phone = forms.CharField(label="Phone", max_length=40, required=False)
    patient_mrn = forms.CharField(label="MRN", max_length=40, required=False)
    patient_payer = forms.CharField(label="Insurance", max_length=120, required=False)
    patient_plan = forms.CharField(label="Plan", max_length=120, required=False)
    patient_member_id = forms.CharField(label="Member ID", max_length=60, required=False)

    reason = forms.CharField(label="Reason for referral", max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    diagnosis_codes = forms.CharField(
        label="Diagnosis codes (ICD-10)", max_length=300, required=False, help_text="e.g. M54.5, S83.511A"
    )
    urgency = forms.ChoiceField(choices=Urgency.choices, initial=Urgency.ROUTINE)
    received_at = forms.DateTimeField(label="Received", widget=DateTimeLocalInput)
    channel = forms.ChoiceField(choices=STAFF_CHANNELS, initial=Channel.FAX)
    location = forms.ModelChoiceField(queryset=Location.objects.none(), required=False, empty_label="—")
    clinician = forms.ModelChoiceField(queryset=Clinician.objects.none(), required=False, empty_label="—")
    authorization_number = forms.CharField(label="Authorization number", max_length=60, required=False)
    visits_approved = forms.IntegerField(label="Visits approved", min_value=0, max_value=999, required=False)
    notes = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    attachments = AttachmentsField(label="Attachments", required=False)

    idempotency_key = forms.CharField(max_length=200, widget=forms.HiddenInput)
    confirm_duplicate = forms.BooleanField(label="This is a new referral, not the same one again", required=False)

    NEW_PROVIDER_FIELDS = ("first_name", "last_name", "npi", "phone", "fax")
    PATIENT_FIELDS = ("first_name", "last_name", "birth_date", "sex", "phone", "mrn", "payer", "plan", "member_id")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["other_source"].queryset = OtherSource.objects.filter(is_active=True)
        self.fields["location"].queryset = active_locations()
        self.fields["clinician"].queryset = active_clinicians()

    def clean_diagnosis_codes(self) -> list[str]:
        try:
            return parse_icd10_list(self.cleaned_data.get("diagnosis_codes", ""))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def clean_received_at(self) -> dt.datetime:
        received_at = self.cleaned_data["received_at"]
        if received_at > timezone.now() + dt.timedelta(minutes=5):
            raise ValidationError("The date received is in the future.")
        return received_at

    def clean_patient_birth_date(self) -> dt.date | None:
        birth_date = self.cleaned_data.get("patient_birth_date")
        if birth_date and birth_date > timezone.localdate():
            raise ValidationError("The date of birth is in the future.")
        return birth_date

    def clean(self):
        data = super().clean()
        new_provider = any(data.get(f"new_provider_{name}") for name in self.NEW_PROVIDER_FIELDS)
        given = [bool(data.get("referring_provider")), new_provider, bool(data.get("other_source"))]
        if sum(given) == 0:
            self.add_error(
                None, "Give the source: pick the referring provider, add a new one, or choose another source."
            )
        elif sum(given) > 1:
            self.add_error(
                None, "Give one source only: the provider picked from the list, a new provider, or another source."
            )
        elif new_provider and not data.get("new_provider_last_name"):
            self.add_error("new_provider_last_name", "Give the new provider's last name.")
        if not data.get("patient"):
            needed = (("first_name", "first name"), ("last_name", "last name"), ("birth_date", "date of birth"))
            for name, what in needed:
                if not data.get(f"patient_{name}") and f"patient_{name}" not in self.errors:
                    self.add_error(f"patient_{name}", f"Give the patient's {what}, or pick the existing patient.")
        return data

    @property
    def adds_provider(self) -> bool:
        return not self.cleaned_data.get("referring_provider") and bool(self.cleaned_data.get("new_provider_last_name"))

    def new_provider_fields(self) -> dict:
        return {name: self.cleaned_data.get(f"new_provider_{name}", "").strip() for name in self.NEW_PROVIDER_FIELDS}

    def patient_data(self) -> dict:
        data = {name: self.cleaned_data.get(f"patient_{name}") for name in self.PATIENT_FIELDS}
        data = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        data["sex"] = data.get("sex") or Sex.UNKNOWN
        return data
