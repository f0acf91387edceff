"""Reads behind the coordinator's work queues, the duplicate warning at intake and the patient type-ahead.

Every queue is a slice of the open referrals, so each query starts from `state IN (...)` and rides the
(state, due_at), (owner, state, due_at) and (state, last_event_at) indexes; nothing counts closed referrals,
which after a few years are nearly all of the table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet

from refloop.practice.models import ServiceLevels
from refloop.referrals.models import Patient, Referral
from refloop.referrals.services import patient_candidates
from refloop.referrals.workflow import OPEN_STATES, State


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    description: str


QUEUES: tuple[Queue, ...] = (
    Queue("new", "New", "Received, or accepted and the patient not yet contacted"),
    Queue("to_schedule", "To schedule", "Accepted and contacted, no appointment yet"),
    Queue("upcoming", "Upcoming", "Appointment booked"),
    Queue("no_show", "No-show to follow", "Missed or cancelled appointments: reschedule or return"),
    Queue("report_due", "Report due", "Seen; the consult report is due"),
    Queue("send_back", "Send back", "Report sent; the patient goes back to the referring provider"),
    Queue("stalled", "Stalled", "Open with no change for longer than the service levels allow"),
    Queue("open", "All open", "Every open referral"),
)
QUEUE_KEYS = tuple(q.key for q in QUEUES)


@dataclass(frozen=True)
class QueueFilters:
    owner_id: int | None = None  # None: everybody's referrals
    location_id: int | None = None
    urgency: str = ""


def stalled_before(now: dt.datetime, levels: ServiceLevels | None = None) -> dt.datetime:
    """Referrals whose last step is older than this are stalled."""
    levels = levels or ServiceLevels.current()
    return now - dt.timedelta(days=levels.stalled_after_days)


def queue_condition(key: str, *, stalled_cutoff: dt.datetime) -> Q:
    """The rows of queue `key`. Each names its own states (all of them open ones), and says them only once:
    PostgreSQL multiplies the selectivity of `state IN (open) AND state IN (no_show, cancelled)` and, badly
    underestimating the rows, joins every one of them before sorting."""
    conditions = {
        # The states first, as one IN, then what tells the accepted ones apart: an OR of two (state, ...) terms
        # leads SQLite to walk all of an owner's referrals, closed ones included, to pick out a few hundred.
        "new": Q(state__in=[State.RECEIVED, State.ACCEPTED])
        & (Q(state=State.RECEIVED) | Q(first_contact_at__isnull=True)),
        "to_schedule": Q(state=State.ACCEPTED, first_contact_at__isnull=False),
        "upcoming": Q(state=State.SCHEDULED),
        "no_show": Q(state__in=[State.NO_SHOW, State.CANCELLED]),
        "report_due": Q(state=State.SEEN),
        "send_back": Q(state=State.REPORT_SENT),
        "stalled": Q(state__in=OPEN_STATES, last_event_at__lt=stalled_cutoff),
        "open": Q(state__in=OPEN_STATES),
    }
    if key not in conditions:
        raise KeyError(f"no work queue called {key!r}")
    return conditions[key]


def _filtered(referrals: QuerySet[Referral], filters: QueueFilters) -> QuerySet[Referral]:
    if filters.owner_id is not None:
        referrals = referrals.filter(owner_id=filters.owner_id)
    if filters.location_id is not None:
        # Compared as "location_id + 0", which no index serves: a location holds a third of every referral ever
        # received, and SQLite without planner statistics would walk that location's index (hundreds of thousands
        # of rows) rather than the open states' indexes (a few thousand). PostgreSQL would not use it either.
        referrals = referrals.alias(location_key=F("location_id") + 0).filter(location_key=filters.location_id)
    if filters.urgency:
        referrals = referrals.filter(urgency=filters.urgency)
    return referrals


def referral_queue(
    key: str, *, filters: QueueFilters, now: dt.datetime, stalled_cutoff: dt.datetime | None = None
) -> QuerySet:
    """The ids in one work queue, soonest due first (so overdue rows lead); page them, then `queue_rows`.

    Ordering and paging touch the referral table alone: joined to patients and providers first, PostgreSQL
    would join every referral in the queue (thousands in "all open") only to keep fifty.
    """
    condition = queue_condition(key, stalled_cutoff=stalled_cutoff or stalled_before(now))
    return (
        _filtered(Referral.objects.filter(condition), filters)
        .order_by(F("due_at").asc(nulls_last=True), "pk")
        .values_list("pk", flat=True)
    )


def queue_rows(ids: list[int]) -> list[Referral]:
    """One page of a queue, in the queue's order, with what each row shows."""
    found = Referral.objects.select_related("patient", "referring_provider", "other_source", "owner", "location")
    by_pk = found.in_bulk(ids)
    return [by_pk[pk] for pk in ids if pk in by_pk]


def queue_counts(
    *, filters: QueueFilters, now: dt.datetime, stalled_cutoff: dt.datetime | None = None
) -> dict[str, int]:
    """How many referrals each queue holds under the same filters, in one pass over the open referrals."""
    cutoff = stalled_cutoff or stalled_before(now)
    counts = {key: Count("pk", filter=queue_condition(key, stalled_cutoff=cutoff)) for key in QUEUE_KEYS}
    counts["open"] = Count("pk")
    counts["overdue"] = Count("pk", filter=Q(due_at__lt=now))
    return _filtered(Referral.objects.filter(state__in=OPEN_STATES), filters).aggregate(**counts)


def nav_counts(*, owner_id: int | None, now: dt.datetime) -> dict[str, int | None]:
    """The figures beside "Referrals" in the navigation: a person's own open and overdue referrals, or
    for a manager the practice's overdue ones (counting all open referrals on every page would be waste)."""
    if owner_id is None:
        return {"open": None, "overdue": Referral.objects.overdue(now).count()}
    return (
        Referral.objects.open()
        .filter(owner_id=owner_id)
        .aggregate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now)))
    )


def open_duplicates(
    *, patients: list[Patient], provider_id: int | None = None, other_source_id: int | None = None
) -> QuerySet[Referral]:
    """Open referrals of the same patient from the same source: likely the same referral faxed twice."""
    if not patients or (provider_id is None and other_source_id is None):
        return Referral.objects.none()
    source = Q(referring_provider_id=provider_id) if provider_id else Q(other_source_id=other_source_id)
    return (
        Referral.objects.open()
        .filter(source, patient__in=patients)
        .select_related("patient", "referring_provider", "other_source")
        .order_by("-received_at")[:5]
    )


@dataclass(frozen=True)
class PatientChoice:
    patient: Patient
    reason: str


def patient_choices(
    *, first_name: str, last_name: str, birth_date: dt.date | None, mrn: str = "", limit: int = 8
) -> list[PatientChoice]:
    """Existing patients the intake form offers while the name, date of birth or MRN is typed.

    The services' own matches (same MRN, or same name and date of birth) come first; a last name with a date
    of birth also finds patients whose first name was spelled differently or not typed yet.
    """
    first_name, last_name, mrn = first_name.strip(), last_name.strip(), mrn.strip()
    found = [
        PatientChoice(m.patient, m.reason)
        for m in patient_candidates(first_name=first_name, last_name=last_name, birth_date=birth_date, mrn=mrn)
    ]
    if last_name and birth_date:
        seen = {c.patient.pk for c in found}
        prefix = Patient.make_name_key("", last_name)  # "last|": the name key starts with the last name
        similar = Patient.objects.filter(Patient.name_key_prefix(prefix), birth_date=birth_date).exclude(pk__in=seen)
        found += [PatientChoice(p, "same last name and date of birth") for p in similar.order_by("pk")[:limit]]
    return found[:limit]
