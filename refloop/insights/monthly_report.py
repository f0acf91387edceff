"""The monthly report for managers: the month's key figures on a few printed pages, and its optional email.

Figures: referrals against the same month last year, the top sources, sources slipping away (the open
early-warning alerts of insights.SourceAlert at the month's end), loop closure for patients seen in the month,
consult-report turnaround, and one line per liaison. No patient appears in it, so it can travel by email.

The PDF is rendered with WeasyPrint through the letters app's no-network URL fetcher (nothing is fetched:
a closed hospital network). Managers opt in on the monthly reports page; the worker sends the last month's
report early on the first of each month (a task that queues its own next run while anyone is opted in), and a
month goes to a person at most once (MonthlyReportDelivery).
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import smtplib
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django_tasks import task

from refloop.directory.models import ReferringProvider
from refloop.insights.models import AlertKind, MonthlyReportDelivery, MonthlyReportRecipient, SourceAlert
from refloop.insights.scorecards import (
    ClinicianScorecard,
    LiaisonScorecard,
    Period,
    clinician_scorecards,
    liaison_scorecards,
    turnaround_figures,
)
from refloop.practice.models import ServiceLevels
from refloop.referrals.models import Referral

log = logging.getLogger(__name__)

FIRST_YEAR = 2000
TOP_SOURCES = 10
SEND_HOUR = 6  # local time on the first of the month


@dataclass(frozen=True)
class TopSource:
    name: str
    provider_id: int
    referrals: int
    last_year: int


@dataclass
class MonthlyReport:
    year: int
    month: int
    period: Period
    complete: bool  # False while the month is still running
    referrals: int = 0
    referrals_last_year: int = 0
    top_sources: list[TopSource] = field(default_factory=list)
    slipping: list[SourceAlert] = field(default_factory=list)
    seen: int = 0
    reported: int = 0  # of those seen in the month, consult report sent (by now)
    closed: int = 0  # of those seen in the month, patient sent back (loop closed)
    reports_sent: int = 0
    median_days: float | None = None
    p90_days: int | None = None
    within_target: float | None = None
    target_days: int = 0
    clinicians: list[ClinicianScorecard] = field(default_factory=list)
    liaisons: list[LiaisonScorecard] = field(default_factory=list)
    generated_at: dt.datetime | None = None

    @property
    def title(self) -> str:
        return f"{calendar.month_name[self.month]} {self.year}"

    @property
    def last_year_title(self) -> str:
        return f"{calendar.month_name[self.month]} {self.year - 1}"

    @property
    def change(self) -> float | None:
        if not self.referrals_last_year:
            return None
        return (self.referrals - self.referrals_last_year) / self.referrals_last_year

    @property
    def reported_share(self) -> float | None:
        return self.reported / self.seen if self.seen else None

    @property
    def closed_share(self) -> float | None:
        return self.closed / self.seen if self.seen else None


def month_period(year: int, month: int) -> Period:
    return Period(dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1]))


def month_is_reportable(year: int, month: int, today: dt.date | None = None) -> bool:
    today = today or timezone.localdate()
    return 1 <= month <= 12 and year >= FIRST_YEAR and (year, month) <= (today.year, today.month)


def previous_month(today: dt.date) -> tuple[int, int]:
    first = today.replace(day=1) - dt.timedelta(days=1)
    return first.year, first.month


def available_months(today: dt.date | None = None, limit: int = 36) -> list[tuple[int, int]]:
    """Months with a report, newest first: from the month of the first referral (at most `limit` back)."""
    today = today or timezone.localdate()
    first = Referral.objects.order_by("received_at").values_list("received_at", flat=True).first()
    start = timezone.localtime(first).date() if first else today
    months = []
    year, month = today.year, today.month
    while (year, month) >= (start.year, start.month) and len(months) < limit:
        months.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


def monthly_report(year: int, month: int, *, today: dt.date | None = None) -> MonthlyReport:
    today = today or timezone.localdate()
    if not month_is_reportable(year, month, today):
        raise ValueError(f"no report for {year}-{month:02d}: choose a month from {FIRST_YEAR} to this one")
    period = month_period(year, month)
    last_year = period.year_before()
    report = MonthlyReport(year, month, period, complete=period.end < today, generated_at=timezone.now())

    report.referrals = Referral.objects.filter(period.received_filter()).count()
    report.referrals_last_year = Referral.objects.filter(last_year.received_filter()).count()

    top = list(
        Referral.objects.filter(period.received_filter(), referring_provider__isnull=False)
        .values("referring_provider_id")
        .annotate(n=Count("pk"))
        .order_by("-n", "referring_provider_id")[:TOP_SOURCES]
    )
    ids = [row["referring_provider_id"] for row in top]
    before = dict(
        Referral.objects.filter(last_year.received_filter(), referring_provider_id__in=ids)
        .values("referring_provider_id")
        .annotate(n=Count("pk"))
        .values_list("referring_provider_id", "n")
        .order_by()
    )
    names = ReferringProvider.objects.in_bulk(ids)
    report.top_sources = [
        TopSource(names[pk].display_name if pk in names else f"#{pk}", pk, row["n"], before.get(pk, 0))
        for row in top
        for pk in [row["referring_provider_id"]]
    ]

    report.slipping = list(
        SourceAlert.objects.filter(kind__in=[AlertKind.SLIPPING, AlertKind.DORMANT], as_of__lte=period.end)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__date__gt=period.end))
        .select_related("provider", "practice")
        .order_by("-confidence", "drop")[:15]
    )

    seen = Referral.objects.filter(period.received_filter("seen_at"))
    counts = seen.aggregate(
        seen=Count("pk"),
        reported=Count("pk", filter=Q(report_sent_at__isnull=False)),
        closed=Count("pk", filter=Q(closed_at__isnull=False)),
    )
    report.seen, report.reported, report.closed = counts["seen"], counts["reported"], counts["closed"]

    report.clinicians = [c for c in clinician_scorecards(period=period) if c.received or c.seen or c.reports]
    levels = ServiceLevels.current()
    report.target_days = levels.report_days
    report.reports_sent = sum(c.reports for c in report.clinicians)
    report.median_days, report.p90_days, report.within_target = _overall_turnaround(period, levels)
    report.liaisons = liaison_scorecards(period=period)
    return report


def _overall_turnaround(period: Period, levels: ServiceLevels) -> tuple[float | None, int | None, float | None]:
    from refloop.letters.selectors import business_days_to_report

    calendar_ = levels.calendar()
    rows = Referral.objects.filter(period.received_filter("report_sent_at"), seen_at__isnull=False).only(
        "seen_at", "report_sent_at"
    )
    values = [business_days_to_report(r, calendar_) for r in rows.iterator(chunk_size=2000)]
    return turnaround_figures(values, levels.report_days)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def _signed_percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.0f}%"


def monthly_report_html(report: MonthlyReport) -> str:
    from refloop.practice.models import Practice

    return render_to_string(
        "insights/monthly_report.html",
        {
            "report": report,
            "practice": Practice.current(),
            "change": _signed_percent(report.change),
            "reported_share": _percent(report.reported_share),
            "closed_share": _percent(report.closed_share),
            "within_target": _percent(report.within_target),
            "liaison_rows": [
                (
                    card.liaison.get_full_name() or card.liaison.get_username(),
                    card,
                    _percent(card.on_cadence_share),
                    _signed_percent(card.referral_change),
                )
                for card in report.liaisons
            ],
            "top_rows": [
                (s, _signed_percent((s.referrals - s.last_year) / s.last_year) if s.last_year else "new")
                for s in report.top_sources
            ],
        },
    )


def monthly_report_pdf(report: MonthlyReport) -> bytes:
    from weasyprint import CSS, HTML

    from refloop.letters.rendering import _fetcher  # the letters' fetcher: data: URIs only, no network

    css = CSS(string=render_to_string("insights/monthly_report.css"), url_fetcher=_fetcher())
    return HTML(string=monthly_report_html(report), url_fetcher=_fetcher(), base_url=None).write_pdf(stylesheets=[css])


def monthly_report_filename(year: int, month: int) -> str:
    return f"refloop-monthly-report-{year}-{month:02d}.pdf"


# The email


def recipients():
    """Opted-in people who may still read the report (active, with insights.view) and have an address."""
    found = []
    for entry in MonthlyReportRecipient.objects.select_related("user").order_by("pk"):
        user = entry.user
        if user.can("insights.view") and user.email:
            found.append(user)
    return found


@dataclass(frozen=True)
class EmailOutcome:
    sent: int
    failed: int


def monthly_report_email(*, year: int, month: int, today: dt.date | None = None) -> EmailOutcome:
    """Email the month's report to every recipient who has not had it yet.

    Each send is recorded in its own transaction, committed only when the mail server took the message; a
    person whose row exists already (an earlier run, another worker) is skipped, so nobody gets the month
    twice, and one refused address does not stop the others.
    """
    people = recipients()
    pending = [
        u for u in people if not MonthlyReportDelivery.objects.filter(month=dt.date(year, month, 1), user=u).exists()
    ]
    if not pending:
        return EmailOutcome(0, 0)
    report = monthly_report(year, month, today=today)
    content = monthly_report_pdf(report)
    sent = failed = 0
    for user in pending:
        try:
            with transaction.atomic():
                MonthlyReportDelivery.objects.create(month=dt.date(year, month, 1), user=user, address=user.email)
                message = EmailMessage(
                    subject=f"Referral report for {report.title}",
                    body=(
                        f"The referral report for {report.title} is attached: referrals against last year, top and "
                        "slipping sources, loop closure, report turnaround and the liaisons' month.\n\n"
                        "You receive it because you asked for it on the monthly reports page of refloop; "
                        "you can stop it there."
                    ),
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    to=[user.email],
                )
                message.attach(monthly_report_filename(year, month), content, "application/pdf")
                message.send()
        except IntegrityError:
            continue  # another run sent it first
        except (OSError, smtplib.SMTPException) as exc:
            failed += 1
            log.warning("monthly report %s-%02d to user %s not sent: %s", year, month, user.pk, type(exc).__name__)
            continue
        sent += 1
    log.info("monthly report %s-%02d emailed to %d recipient(s), %d failed", year, month, sent, failed)
    return EmailOutcome(sent, failed)


def next_send_at(now: dt.datetime | None = None) -> dt.datetime:
    """The next first-of-the-month, SEND_HOUR local time, after `now`."""
    local = timezone.localtime(now or timezone.now())
    candidate = local.replace(day=1, hour=SEND_HOUR, minute=0, second=0, microsecond=0)
    if candidate <= local:
        year, month = (local.year, local.month + 1) if local.month < 12 else (local.year + 1, 1)
        candidate = candidate.replace(year=year, month=month)
    return candidate


def monthly_report_schedule(*, now: dt.datetime | None = None) -> bool:
    """Queue the next monthly send unless one is queued already, or nobody is opted in. True if queued now."""
    from django_tasks_db.models import DBTaskResult

    if not MonthlyReportRecipient.objects.exists():
        return False
    at = next_send_at(now)
    queued = DBTaskResult.objects.filter(
        task_path=monthly_report_send.module_path, status="READY", run_after__gte=at - dt.timedelta(minutes=1)
    )
    if queued.exists():  # (a retry of last month's send, an hour away, is not next month's run)
        return False
    monthly_report_send.using(run_after=at).enqueue()
    return True


RETRY_AFTER = dt.timedelta(hours=1)
RETRIES = 3


@task()
def monthly_report_send(year: int | None = None, month: int | None = None, retry: int = 0) -> str:
    """Run by the worker on the first of the month: email last month's report, then queue next month's run.
    Addresses the mail server refused are tried again an hour later, up to RETRIES times."""
    today = timezone.localdate()
    if year is None or month is None:
        year, month = previous_month(today)
    outcome = monthly_report_email(year=year, month=month, today=today)
    if outcome.failed and retry < RETRIES:
        monthly_report_send.using(run_after=timezone.now() + RETRY_AFTER).enqueue(year, month, retry + 1)
    if retry == 0:
        monthly_report_schedule()
    return f"{year}-{month:02d}: sent to {outcome.sent}, {outcome.failed} failed"
