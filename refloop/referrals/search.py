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


def _patient_conditions(query: str) -> list[tuple[Q, bool]]:
    """Last name; first and last name in either order ("Pat Doe", "Doe, Pat"); an MRN; with a date of birth.

    Each alternative is its own query: joined by OR, SQLite's planner scans every patient rather than using
    the name index and the MRN index in turn (115 ms a keystroke at a million patients; 1 ms apart). The flag
    says whether the alternative reads the name index, so is ordered by it (an MRN matches one or two patients:
    ordering it by name sends SQLite down the whole name index instead of the MRN's).
    """
    typed = [w.strip(",") for w in query.split() if w.strip(",")][:4]
    birth_date = next((d for d in map(_as_date, typed) if d), None)
    names = [w.lower() for w in typed if _as_date(w) is None]
    if len(names) == 1:
        # The MRN as typed or upper-cased, compared exactly, so the unique index answers (not a table scan);
        # that index is partial (non-empty MRNs), and SQLite uses it only when the query repeats its condition.
        mrn = next(w for w in typed if w.lower() == names[0])
        alternatives = [
            (Patient.name_key_prefix(f"{names[0]}|"), True),
            (Q(mrn__in={mrn, mrn.upper()}) & ~Q(mrn=""), False),
        ]
    elif len(names) >= 2:
        first, last = names[0], names[-1]
        alternatives = [
            (Patient.name_key_prefix(f"{last}|{first}"), True),
            (Patient.name_key_prefix(f"{first}|{last}"), True),
        ]
    elif birth_date is not None:
        alternatives = [(Q(), True)]
    else:
        return []
    if birth_date is not None:
        alternatives = [(condition & Q(birth_date=birth_date), ordered) for condition, ordered in alternatives]
    return alternatives


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
    latest = Referral.objects.filter(patient=OuterRef("pk")).order_by("-received_at", "-pk").values("pk")[:1]
    found: dict[int, Patient] = {}
    for condition, ordered in _patient_conditions(query):
        matches = (
            Patient.objects.filter(condition)
            .annotate(latest_referral=Subquery(latest))
            .filter(latest_referral__isnull=False)
            .order_by(*(("name_key", "pk") if ordered else ()))[:limit]  # the name index's own order
        )
        found.update((patient.pk, patient) for patient in matches)
    if found:
        patients = sorted(found.values(), key=lambda p: (p.name_key, p.pk))[:limit]
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
