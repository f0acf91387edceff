from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordMixin

from refloop.accounts.roles import Role
from refloop.directory.models import Territory
from refloop.practice.models import Clinician, Holiday, Location, Practice, SecuritySettings


class StateCodeMixin:
    """Accept "oh" for "OH": the two-letter code is what matters, not how it was typed."""

    def clean_state(self) -> str:
        return self.cleaned_data.get("state", "").strip().upper()


class PracticeForm(StateCodeMixin, forms.ModelForm):
    class Meta:
        model = Practice
        fields = [
            "name",
            "specialty",
            "npi",
            "phone",
            "fax",
            "email",
            "website",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "postal_code",
        ]


class LocationForm(StateCodeMixin, forms.ModelForm):
    class Meta:
        model = Location
        fields = [
            "name",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "postal_code",
            "phone",
            "fax",
            "hours",
            "is_active",
        ]


class ClinicianForm(forms.ModelForm):
    class Meta:
        model = Clinician
        fields = [
            "first_name",
            "last_name",
            "credentials",
            "npi",
            "specialty",
            "email",
            "locations",
            "user",
            "is_active",
        ]
        widgets = {"locations": forms.CheckboxSelectMultiple}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = get_user_model().objects.filter(role=Role.CLINICIAN, is_active=True)


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "name"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"})}


class TerritoryForm(forms.ModelForm):
    class Meta:
        model = Territory
        fields = ["name", "description", "liaison"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["liaison"].queryset = get_user_model().objects.filter(role=Role.LIAISON, is_active=True)


class UserForm(forms.ModelForm):
    class Meta:
        model = get_user_model()
        fields = ["username", "first_name", "last_name", "email", "phone", "role", "is_active"]


class NewUserForm(SetPasswordMixin, UserForm):
    """A new login: the administrator sets a first password that the password rules accept."""

    password1, password2 = SetPasswordMixin.create_password_fields()

    def clean(self):
        self.validate_passwords()
        return super().clean()

    def _post_clean(self):
        super()._post_clean()
        self.validate_password_for_user(self.instance)

    def save(self, commit: bool = True):
        user = super().save(commit=False)
        user = self.set_password_and_save(user, commit=commit)
        return user


class SecuritySettingsForm(forms.ModelForm):
    class Meta:
        model = SecuritySettings
        fields = ["idle_logoff_minutes", "liaisons_see_clinical_details"]
