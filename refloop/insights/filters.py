"""The dashboard's filters: one form read from the query string, shared by the dashboard and its drill-downs.

Periods are whole months (the rollups' grain), given as YYYY-MM; the other filters are one value each. A bad
value is named in the form's errors and ignored, so a hand-edited URL gives a message, never a 500.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from refloop.directory.models import Territory
from refloop.practice.models import Clinician, Location
from refloop.referrals.models import Urgency

MONTH_FORMAT = "%Y-%m"
FILTER_NAMES = ("location", "clinician", "specialty", "territory", "liaison", "payer", "urgency")
# filter name -> rollup dimension
DIMENSION = {
    "location": "location_id",
    "clinician": "clinician_id",
    "specialty": "specialty",
    "territory": "territory_id",
    "liaison": "liaison_id",
    "payer": "payer",
    "urgency": "urgency",
}


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(start: dt.date, end: dt.date) -> int:
    """How many months from start to end, both included."""
    return (end.year - start.year) * 12 + end.month - start.month + 1


def default_period(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last three complete months: a quarter's worth, never a month still filling up."""
    this_month = (today or timezone.localdate()).replace(day=1)
    return add_months(this_month, -3), add_months(this_month, -1)


class MonthField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return dt.datetime.strptime(value, MONTH_FORMAT).date()
        except ValueError:
            raise forms.ValidationError(f"“{value}” is not a month: use YYYY-MM, e.g. 2026-03.") from None


class DashboardFilterForm(forms.Form):
    start = MonthField(label="From month", required=False, widget=forms.TextInput(attrs={"type": "month"}))
    end = MonthField(label="To month", required=False, widget=forms.TextInput(attrs={"type": "month"}))
    location = forms.ModelChoiceField(Location.objects.all(), required=False, empty_label="All locations")
    clinician = forms.ModelChoiceField(Clinician.objects.all(), required=False, empty_label="All clinicians")
    specialty = forms.ChoiceField(label="Referrer specialty", required=False)
    territory = forms.ModelChoiceField(Territory.objects.all(), required=False, empty_label="All territories")
    liaison = forms.ModelChoiceField(
        get_user_model().objects.filter(role="liaison").order_by("last_name", "first_name"),
        required=False,
        empty_label="All liaisons",
    )
    payer = forms.ChoiceField(required=False)
    urgency = forms.ChoiceField(required=False, choices=[("", "Any urgency"), *Urgency.choices])

    def __init__(self, *args, specialties=(), payers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["specialty"].choices = [("", "All specialties")] + [(s, s) for s in specialties]
        self.fields["payer"].choices = [("", "All payers")] + [(p, p) for p in payers if p]

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", "The period ends before it starts.")
        if start and end and months_between(start, end) > 60:
            self.add_error("start", "Choose a period of at most 60 months.")
        return data


@dataclass(frozen=True)
class Filters:
    """The filters in force: a period of whole months and at most one value per dimension."""

    start: dt.date
    end: dt.date
    values: dict[str, object] = field(default_factory=dict)  # filter name -> value (pk or text)

    @property
    def months(self) -> int:
        return months_between(self.start, self.end)

    def dimensions(self) -> dict[str, object]:
        """Rollup dimension -> value, for a filter() over ReferralRollup, SourceRollup or RollupMember."""
        return {DIMENSION[name]: value for name, value in self.values.items()}

    def query(self, **extra) -> str:
        """The query string of these filters plus `extra` (None values dropped), for links and drill-downs."""
        params = {"start": self.start.strftime(MONTH_FORMAT), "end": self.end.strftime(MONTH_FORMAT)}
        params.update({name: str(value) for name, value in self.values.items()})
        params.update({k: str(v) for k, v in extra.items() if v is not None})
        return urlencode(params)


def read_filters(form: DashboardFilterForm, today: dt.date | None = None) -> Filters:
    """The filters the form holds, its invalid fields left out (the form shows why)."""
    start, end = default_period(today)
    form.is_valid()
    data = getattr(form, "cleaned_data", {}) or {}
    if form.errors.get("start") or form.errors.get("end") or form.non_field_errors():
        data = {k: v for k, v in data.items() if k not in ("start", "end")}
    if data.get("start") and data.get("end"):
        start, end = data["start"], data["end"]
    elif data.get("start"):
        start = data["start"]
        end = max(start, end)
    elif data.get("end"):
        end = data["end"]
        start = min(start, end)
    values: dict[str, object] = {}
    for name in FILTER_NAMES:
        value = data.get(name)
        if value in (None, ""):
            continue
        values[name] = getattr(value, "pk", value)
    return Filters(start=start, end=end, values=values)
