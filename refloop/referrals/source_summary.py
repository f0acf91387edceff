"""What a referring provider's or practice's page shows about the referrals it sent: the one place that
decides who sees it and which columns.

Who: the liaison who owns the source (its own liaison, or the liaison of its territory), and managers and
administrators. Another liaison does not: a liaison's work is their own offices, and the minimum-necessary rule
gives nobody referral data for sources they do not look after (managers oversee every territory). Coordinators
and clinicians have the referral pages themselves and the source's timeline, so the summary adds nothing there.

What: counts by state over the last 12 months and the referrals with received date, state, urgency and
clinician. The patient, the reason, the diagnoses, the notes and the number of attachments are clinical
details: a liaison sees them only when the practice turns on SecuritySettings.liaisons_see_clinical_details.
A manager sees the same columns as a liaison without them (a source's page is a relationship page: initials
at most, as its timeline shows) plus links to the referral pages, where every read is audited. Rows are built
from only the permitted columns, so a template cannot show what was not read. Every summary shown is one
audit record naming the referrals it listed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Model
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.accounts.roles import Role
from refloop.directory.models import ReferringPractice, ReferringProvider
from refloop.practice.models import SecuritySettings
from refloop.referrals.models import Referral
from refloop.referrals.workflow import State

WINDOW_DAYS = 365
ROW_LIMIT = 100


@dataclass(frozen=True)
class SummaryRow:
    pk: int
    received_at: dt.datetime
    state: str
    urgency: str
    clinician: str
    # Clinical details: empty unless the viewer may see them.
    patient: str = ""
    reason: str = ""
    diagnosis_codes: tuple[str, ...] = ()
    notes: str = ""
    attachments: int = 0


@dataclass(frozen=True)
class ReferralSummary:
    total: int
    by_state: list[tuple[str, int]]
    rows: list[SummaryRow]
    clinical: bool
    can_open: bool  # the viewer may open the referral page (links are shown)
    since: dt.date
    truncated: bool = False


def owns_source(user, entry: ReferringProvider | ReferringPractice) -> bool:
    if entry.liaison_id is not None and entry.liaison_id == user.pk:
        return True
    territory = entry.territory if entry.territory_id else None
    return territory is not None and territory.liaison_id == user.pk


def may_see_summary(user, entry: ReferringProvider | ReferringPractice) -> bool:
    role = getattr(user, "role", None)
    if role in (Role.ADMIN, Role.MANAGER):
        return True
    return role == Role.LIAISON and owns_source(user, entry)


def sees_clinical_details(user) -> bool:
    return user.role == Role.LIAISON and SecuritySettings.current().liaisons_see_clinical_details


def _referrals_of(entry: Model):
    if isinstance(entry, ReferringProvider):
        return Referral.objects.filter(referring_provider=entry)
    if isinstance(entry, ReferringPractice):
        return Referral.objects.filter(referring_practice=entry)
    raise TypeError(f"no referral summary for {type(entry).__name__}")


def source_referral_summary(
    *, user, entry: ReferringProvider | ReferringPractice, now: dt.datetime | None = None
) -> ReferralSummary | None:
    """The summary `user` may see on `entry`'s page (audited), or None when they may see none."""
    if not may_see_summary(user, entry):
        return None
    now = now or timezone.now()
    since = now - dt.timedelta(days=WINDOW_DAYS)
    recent = _referrals_of(entry).filter(received_at__gte=since)
    labels = dict(State.choices)
    counts = dict(recent.order_by().values_list("state").annotate(n=Count("pk")))
    by_state = [(labels[s], counts[s]) for s in labels if counts.get(s)]
    clinical = sees_clinical_details(user)
    columns = ["pk", "received_at", "state", "urgency", "clinician__first_name", "clinician__last_name"]
    if clinical:
        columns += ["patient__first_name", "patient__last_name", "reason", "diagnosis_codes", "notes"]
    listed = recent.order_by("-received_at", "-pk")
    if clinical:
        listed = listed.annotate(attachment_count=Count("attachments"))
        columns.append("attachment_count")
    values = list(listed.values(*columns)[: ROW_LIMIT + 1])
    urgencies = dict(Referral._meta.get_field("urgency").choices)
    rows = []
    for v in values[:ROW_LIMIT]:
        clinician = " ".join(p for p in (v["clinician__first_name"], v["clinician__last_name"]) if p)
        extra = {}
        if clinical:
            extra = {
                "patient": f"{v['patient__first_name']} {v['patient__last_name']}".strip(),
                "reason": v["reason"],
                "diagnosis_codes": tuple(v["diagnosis_codes"] or ()),
                "notes": v["notes"],
                "attachments": v["attachment_count"],
            }
        rows.append(
            SummaryRow(
                pk=v["pk"],
                received_at=v["received_at"],
                state=labels.get(v["state"], v["state"]),
                urgency=urgencies.get(v["urgency"], v["urgency"]),
                clinician=clinician,
                **extra,
            )
        )
    audit_record(
        actor=user,
        action="referral.source_summary",
        target=entry,
        detail={"clinical": clinical, "since": since.date(), "referrals": [r.pk for r in rows]},
    )
    return ReferralSummary(
        total=sum(counts.values()),
        by_state=by_state,
        rows=rows,
        clinical=clinical,
        can_open=user.can("referrals.view"),
        since=since.date(),
        truncated=len(values) > ROW_LIMIT,
    )
