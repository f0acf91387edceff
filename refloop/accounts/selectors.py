"""Reading the audit trail: the filters of the audit page and the columns of the auditor's export."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings
from django.db.models import Q, QuerySet

from refloop.accounts.models import AuditEvent

EXPORT_HEADER = [
    "seq",
    "at_utc",
    "actor",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "patient_id",
    "detail",
    "prev_hash",
    "hash",
]


def patients_matching(text: str) -> list[int]:
    """Patients an auditor means by `text`: an MRN, a record number ("#123") or "Last, First" / "Last"."""
    Patient = apps.get_model("referrals", "Patient")
    text = text.strip()
    if not text:
        return []
    if text.startswith("#") and text[1:].isdigit():
        return list(Patient.objects.filter(pk=int(text[1:])).values_list("pk", flat=True))
    last, _, first = (part.strip().lower() for part in text.partition(","))
    by_name = Q(name_key__startswith=f"{last}|{first}") if first else Q(name_key__startswith=f"{last}|")
    return list(Patient.objects.filter(Q(mrn=text) | by_name).values_list("pk", flat=True)[:200])


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def audit_events(
    *,
    patient_ids: Iterable[int] | None = None,
    user: str = "",
    action: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[AuditEvent]:
    """Events filtered as on the audit page; dates are whole days in the practice's time zone, both included."""
    events = AuditEvent.objects.all()
    if patient_ids is not None:
        events = events.filter(patient_id__in=[str(pk) for pk in patient_ids])
    if user:
        events = events.filter(actor_label__iexact=user.strip())
    if action:
        action = action.strip()
        events = events.filter(action__startswith=action[:-1]) if action.endswith("*") else events.filter(
            action=action
        )
    if date_from:
        events = events.filter(at__gte=_day_start(date_from))
    if date_to:
        events = events.filter(at__lt=_day_start(date_to + dt.timedelta(days=1)))
    return events.order_by("-seq")


def export_rows(events: QuerySet[AuditEvent]) -> Iterator[list]:
    """One row per event, oldest first, with the hashes so an auditor can re-check the chain offline."""
    for event in events.order_by("seq").iterator(chunk_size=2000):
        yield [
            event.seq,
            event.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            event.actor_label,
            event.actor_id or "",
            event.action,
            event.target_type,
            event.target_id,
            event.patient_id,
            json.dumps(event.detail, sort_keys=True, ensure_ascii=False),
            event.prev_hash,
            event.hash,
        ]
