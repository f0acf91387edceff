"""Reads for letters: report turnaround per clinician, a referral's report clock, an office's status rows."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass

from django.db.models import Prefetch
from django.utils import timezone

from refloop.letters.models import DONE_STATUSES, Delivery, Letter, LetterKind
from refloop.practice.models import Clinician, ServiceLevels
from refloop.referrals.models import Referral
from refloop.referrals.workflow import OPEN_STATES, State


@dataclass(frozen=True)
class Turnaround:
    clinician: Clinician | None
    reports: int
    median_days: float
    p90_days: int
    within_target: float  # share of reports sent within the practice's target, 0..1


def business_days_to_report(referral: Referral, calendar) -> int | None:
    if referral.seen_at is None or referral.report_sent_at is None:
        return None
    seen = timezone.localtime(referral.seen_at).date()
    sent = timezone.localtime(referral.report_sent_at).date()
    return calendar.business_days_between(seen, sent)


def turnaround_by_clinician(*, days: int = 90, now: dt.datetime | None = None) -> tuple[list[Turnaround], int]:
    """Business days from the visit to the report sent, per clinician, for reports sent in the last `days`."""
    now = now or timezone.now()
    levels = ServiceLevels.current()
    calendar = levels.calendar()
    rows = Referral.objects.filter(
        seen_at__isnull=False, report_sent_at__isnull=False, report_sent_at__gte=now - dt.timedelta(days=days)
    ).only("clinician_id", "seen_at", "report_sent_at")
    per: dict[int | None, list[int]] = {}
    for referral in rows.iterator(chunk_size=2000):
        per.setdefault(referral.clinician_id, []).append(business_days_to_report(referral, calendar))
    clinicians = Clinician.objects.in_bulk([pk for pk in per if pk is not None])
    result = []
    for pk, values in per.items():
        values.sort()
        p90 = values[max(0, math.ceil(0.9 * len(values)) - 1)]
        within = sum(1 for v in values if v <= levels.report_days) / len(values)
        result.append(Turnaround(clinicians.get(pk), len(values), statistics.median(values), p90, within))
    result.sort(key=lambda t: (t.clinician is None, str(t.clinician or "")))
    return result, levels.report_days


@dataclass(frozen=True)
class ReportClock:
    """What the referral page says about the consult report: due, overdue, or sent after N business days."""

    text: str
    late: bool


def report_clock(referral: Referral, now: dt.datetime | None = None) -> ReportClock | None:
    from refloop.referrals.views import due_phrase

    now = now or timezone.now()
    if referral.state == State.SEEN and referral.due_at is not None:
        return ReportClock(f"Report {due_phrase(referral.due_at, now)}", referral.due_at < now)
    if referral.report_sent_at and referral.seen_at:
        levels = ServiceLevels.current()
        days = business_days_to_report(referral, levels.calendar())
        plural = "day" if days == 1 else "days"
        return ReportClock(
            f"Report sent after {days} business {plural} (target {levels.report_days})", days > levels.report_days
        )
    return None


@dataclass(frozen=True)
class StatusRow:
    referral: Referral
    patient_label: str
    status: str
    detail: str
    reports: list[Letter]


def _office_status(referral: Referral) -> tuple[str, str]:
    local = timezone.localtime
    state = referral.state
    if state in (State.RECEIVED, State.ACCEPTED):
        return "Received", f"{local(referral.received_at):%b %d, %Y}"
    if state == State.SCHEDULED and referral.appointment_at:
        return "Scheduled", f"{local(referral.appointment_at):%b %d, %Y}"
    if state == State.NO_SHOW:
        return "Missed appointment", "we are rescheduling"
    if state == State.CANCELLED:
        return "Appointment cancelled", "we are rescheduling"
    if state == State.SEEN:
        return "Seen", f"{local(referral.seen_at):%b %d, %Y}; report to follow" if referral.seen_at else ""
    if state == State.REPORT_SENT:
        return "Report sent", f"{local(referral.report_sent_at):%b %d, %Y}" if referral.report_sent_at else ""
    if state == State.CLOSED:
        return "Returned to you", f"{local(referral.closed_at):%b %d, %Y}" if referral.closed_at else ""
    if state == State.DECLINED:
        return "Declined", ""
    return "Not scheduled", ""


def patient_label(patient) -> str:
    """Minimum necessary on a page without a login: initials and year of birth."""
    from refloop.letters.context import initials

    return f"{initials(patient.first_name, patient.last_name)} (born {patient.birth_date:%Y})"


def status_rows(practice, *, now: dt.datetime | None = None, days: int = 365, limit: int = 300) -> list[StatusRow]:
    """An office's referred patients, open ones and those received in the last year, newest first."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    sent = Delivery.objects.filter(status__in=DONE_STATUSES)
    reports = Letter.objects.filter(kind=LetterKind.CONSULT_REPORT, deliveries__in=sent).select_related("report")
    reports = reports.distinct()
    referrals = (
        Referral.objects.filter(referring_practice=practice)
        .filter(received_at__gte=since)
        .select_related("patient")
        .prefetch_related(Prefetch("letters", queryset=reports.order_by("created_at"), to_attr="sent_reports"))
        .order_by("-received_at")[:limit]
    )
    older_open = (
        Referral.objects.filter(referring_practice=practice, received_at__lt=since, state__in=OPEN_STATES)
        .select_related("patient")
        .prefetch_related(Prefetch("letters", queryset=reports.order_by("created_at"), to_attr="sent_reports"))
        .order_by("-received_at")[:limit]
    )
    rows = []
    for referral in [*referrals, *older_open]:
        status, detail = _office_status(referral)
        rows.append(StatusRow(referral, patient_label(referral.patient), status, detail, referral.sent_reports))
    return rows


def sent_report_for_office(practice, letter_id: int) -> Letter | None:
    """A consult report of this office's referral that has been sent; None for anything else."""
    return (
        Letter.objects.filter(
            pk=letter_id,
            kind=LetterKind.CONSULT_REPORT,
            referral__referring_practice=practice,
            deliveries__status__in=DONE_STATUSES,
        )
        .select_related("report", "referral")
        .first()
    )
