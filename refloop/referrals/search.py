"""The referrals' part of the global search box (patients, referral numbers) and of each source's timeline.

A patient search that finds someone is a read of PHI, so it is audited with the number found; the words typed
are not kept. The timeline on a directory page shows a referral's date, the patient's initials and its state:
enough for a liaison's manager to see the flow, no more.
"""

from __future__ import annotations

import datetime as dt
import re

from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from refloop import timeline
from refloop.accounts.audit import audit_record
from refloop.directory.models import ReferringPractice, ReferringProvider
from refloop.referrals.models import Patient, Referral
from refloop.search import SearchHit, register

_REFERRAL_NUMBER = re.compile(r"^#?(\d{1,12})$")


def _as_date(text: str) -> dt.date | None:
    """2026-01-31 or 1/31/2026, the two ways dates of birth are typed."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if match:
        month, day, year = (int(g) for g in match.groups())
        try:
            return dt.date(year, month, day)
        except ValueError:
            return None
    return None


def _patient_condition(query: str) -> Q | None:
    """Last name; first and last name in either order ("Pat Doe", "Doe, Pat"); an MRN; with a date of birth."""
    typed = [w.strip(",") for w in query.split() if w.strip(",")][:4]
    birth_date = next((d for d in map(_as_date, typed) if d), None)
    names = [w.lower() for w in typed if _as_date(w) is None]
    condition = Q()
    if len(names) == 1:
        # The MRN as typed or upper-cased, compared exactly, so the unique index answers (not a table scan).
        mrn = next(w for w in typed if w.lower() == names[0])
        condition = Patient.name_key_prefix(f"{names[0]}|") | Q(mrn__in={mrn, mrn.upper()})
    elif len(names) >= 2:
        first, last = names[0], names[-1]
        condition = Patient.name_key_prefix(f"{last}|{first}") | Patient.name_key_prefix(f"{first}|{last}")
    elif birth_date is None:
        return None
    if birth_date is not None:
        condition &= Q(birth_date=birth_date)
    return condition


@register("referrals.view")
def find_patients(user, query: str, limit: int) -> list[SearchHit]:
    hits: list[SearchHit] = []
    shown: dict[str, list[int]] = {"referrals": [], "patients": []}
    number = _REFERRAL_NUMBER.match(query.strip())
    if number:
        referral = Referral.objects.filter(pk=int(number.group(1))).select_related("patient").first()
        if referral is not None:
            shown["referrals"].append(referral.pk)
            hits.append(
                SearchHit(
                    "Referral",
                    f"{referral} · {referral.get_state_display()}",
                    f"{referral.patient} · received {date_format(timezone.localtime(referral.received_at), 'M j, Y')}",
                    reverse("referrals:detail", args=[referral.pk]),
                )
            )
    condition = _patient_condition(query)
    if condition is not None:
        latest = Referral.objects.filter(patient=OuterRef("pk")).order_by("-received_at", "-pk").values("pk")[:1]
        patients = (
            Patient.objects.filter(condition)
            .annotate(latest_referral=Subquery(latest))
            .filter(latest_referral__isnull=False)
            .order_by("last_name", "first_name", "pk")[:limit]
        )
        for patient in patients:
            detail = f"DOB {date_format(patient.birth_date, 'M j, Y')}"
            detail += f" · MRN {patient.mrn}" if patient.mrn else ""
            url = reverse("referrals:detail", args=[patient.latest_referral])
            shown["patients"].append(patient.pk)
            hits.append(SearchHit("Patient", str(patient), detail, url))
    if hits:
        # Ids of what was shown, never the text typed (it may be a name or a birth date).
        detail = {"where": "search box", "results": len(hits), **shown}
        audit_record(actor=user, action="patient.search", detail=detail)
    return hits


def _initials(patient: Patient) -> str:
    return "".join(f"{name[:1].upper()}." for name in (patient.first_name, patient.last_name) if name)


@timeline.register("referrals.view")
def referral_history(user, entry, limit: int) -> list[timeline.TimelineItem]:
    if isinstance(entry, ReferringProvider):
        referrals = Referral.objects.filter(referring_provider=entry)
    elif isinstance(entry, ReferringPractice):
        referrals = Referral.objects.filter(referring_practice=entry)
    else:
        return []
    referrals = list(
        referrals.select_related("patient")
        .only("pk", "received_at", "state", "patient", "patient__first_name", "patient__last_name")
        .order_by("-received_at")[:limit]
    )
    if referrals:  # the rows carry patients' initials: one audit record for the list shown
        audit_record(
            actor=user,
            action="referral.list",
            detail={
                "page": "source timeline",
                "source": f"{entry._meta.model_name}:{entry.pk}",
                "referrals": [r.pk for r in referrals],
            },
        )
    return [
        timeline.TimelineItem(
            r.received_at,
            "Referral",
            f"{r} · {_initials(r.patient)}",
            r.get_state_display(),
            reverse("referrals:detail", args=[r.pk]),
        )
        for r in referrals
    ]
