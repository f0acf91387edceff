from __future__ import annotations

import secrets
import time

from django import forms
from django.conf import settings
from django.core import signing

from refloop.letters.models import DeliveryChannel, LetterKind, LetterTemplate, Recipient
from refloop.letters.services import RULE_KINDS, RULE_STEPS
from refloop.lib.validators import validate_npi
from refloop.referrals.forms import AttachmentsField, DateInput
from refloop.referrals.models import Urgency

TEXTAREA = {"rows": 4}


class TemplateForm(forms.Form):
    title = forms.CharField(max_length=150, label="Heading")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 22, "class": "code", "spellcheck": "false"}))
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, preview_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if preview_url:
            self.fields["body"].widget.attrs.update(
                {
                    "hx-post": preview_url,
                    "hx-trigger": "input changed delay:400ms, load",
                    "hx-target": "#letter-preview",
                    "hx-include": "closest form",
                }
            )


class RuleAddForm(forms.Form):
    step = forms.ChoiceField(choices=RULE_STEPS)
    kind = forms.ChoiceField(choices=RULE_KINDS, label="Letter")
    recipient = forms.ChoiceField(choices=Recipient.choices, label="To")


MANUAL_KINDS = [
    (k.value, k.label) for k in LetterKind if k not in (LetterKind.CONSULT_REPORT, LetterKind.THANK_YOU_SUMMARY)
]


class LetterForm(forms.Form):
    """A letter a person writes from the referral page."""

    kind = forms.ChoiceField(choices=MANUAL_KINDS, label="Letter", initial=LetterKind.FREE)
    recipient = forms.ChoiceField(choices=Recipient.choices, label="To")
    title = forms.CharField(max_length=150, required=False, label="Heading", help_text="Leave empty for the usual one.")
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        label="Text",
        help_text="The words of a free letter; instructions, or suggested alternatives for a declined referral.",
    )

    def clean(self):
        data = super().clean()
        if data.get("kind") == LetterKind.FREE and not (data.get("text") or "").strip():
            self.add_error("text", "A free letter needs its text.")
        if not LetterTemplate.objects.filter(kind=data.get("kind")).exists():
            self.add_error("kind", "There is no template for this letter.")
        return data


class ReportForm(forms.Form):
    findings = forms.CharField(widget=forms.Textarea(attrs=TEXTAREA), required=False)
    assessment = forms.CharField(widget=forms.Textarea(attrs=TEXTAREA), required=False)
    plan = forms.CharField(widget=forms.Textarea(attrs=TEXTAREA), required=False)
    recommendations = forms.CharField(
        widget=forms.Textarea(attrs=TEXTAREA), required=False, label="Recommendations for the referring provider"
    )
    is_final = forms.BooleanField(
        required=False,
        initial=True,
        label="Final report",
        help_text="Untick for a progress (interim) report: the loop stays open until the final one.",
    )
    ehr_pdf = forms.FileField(
        required=False,
        label="Or attach the report from the EHR (PDF)",
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )


class RedirectForm(forms.Form):
    channel = forms.ChoiceField(choices=DeliveryChannel.choices)
    address = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Email or Direct address, fax number, or the postal address (one line each).",
    )


# The public referral form


FORM_SALT = "refloop.letters.refer-form"
OFFICE_SALT = "refloop.letters.refer-office"


def form_token() -> str:
    """Signed when the form is shown: when, and a nonce that makes each form's submission unique."""
    return signing.dumps({"t": time.time(), "n": secrets.token_hex(8)}, salt=FORM_SALT)


def office_token(practice) -> str:
    return signing.Signer(salt=OFFICE_SALT).sign(str(practice.pk))


def office_from_token(token: str):
    from refloop.directory.models import ReferringPractice

    try:
        pk = signing.Signer(salt=OFFICE_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return ReferringPractice.objects.current().filter(pk=pk).first()


class SpamRefused(Exception):
    """The form was filled by a robot (honeypot), too fast, too late, or its token was forged."""


class PublicReferralForm(forms.Form):
    npi = forms.CharField(label="Your NPI", max_length=10, validators=[validate_npi])
    provider_first_name = forms.CharField(label="Your first name", max_length=100)
    provider_last_name = forms.CharField(label="Your last name", max_length=100)
    office_name = forms.CharField(label="Office", max_length=200, required=False)
    phone = forms.CharField(label="Office phone", max_length=40)
    fax = forms.CharField(label="Office fax", max_length=40, required=False)
    email = forms.EmailField(label="Email for our reply", required=False)
    patient_first_name = forms.CharField(label="Patient's first name", max_length=100)
    patient_last_name = forms.CharField(label="Patient's last name", max_length=100)
    patient_birth_date = forms.DateField(label="Patient's date of birth", widget=DateInput())
    patient_phone = forms.CharField(label="Patient's phone", max_length=40, required=False)
    reason = forms.CharField(label="Reason for referral", widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)
    urgency = forms.ChoiceField(choices=Urgency.choices, initial=Urgency.ROUTINE)
    attachments = AttachmentsField(required=False, label="Documents (notes, imaging reports)")
    # A field people never see (hidden by the stylesheet, skipped by keyboard and screen readers): a robot
    # filling every input fills it too.
    website = forms.CharField(
        required=False,
        label="Leave this empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )
    started = forms.CharField(widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if not (data.get("fax") or data.get("email")):
            self.add_error("fax", "Give a fax number or an email address, so we can answer.")
        return data

    def check_not_spam(self) -> str:
        """The form token, when the submission looks human; SpamRefused otherwise."""
        if self.data.get("website"):
            raise SpamRefused("honeypot")
        token = self.data.get("started", "")
        try:
            payload = signing.loads(token, salt=FORM_SALT, max_age=settings.LETTERS_FORM_MAX_SECONDS)
        except signing.SignatureExpired:
            raise SpamRefused("expired") from None
        except signing.BadSignature:
            raise SpamRefused("forged") from None
        age = time.time() - float(payload.get("t", 0))
        if age < settings.LETTERS_FORM_MIN_SECONDS:
            raise SpamRefused("too fast")
        if age > settings.LETTERS_FORM_MAX_SECONDS:
            raise SpamRefused("expired")
        return token
