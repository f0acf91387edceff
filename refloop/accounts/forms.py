from __future__ import annotations

from django import forms


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code from your authenticator app",
        max_length=10,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "pattern": "[0-9 ]*"}
        ),
    )


class AuditFilterForm(forms.Form):
    patient = forms.CharField(required=False, max_length=100, help_text="MRN, #record number, or Last, First")
    user = forms.CharField(required=False, max_length=150, help_text="Username, API key or process")
    action = forms.CharField(required=False, max_length=60, help_text="e.g. referral.view, or auth.* for a prefix")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The From date is after the To date.")
        return data
