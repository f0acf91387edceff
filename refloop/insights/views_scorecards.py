"""Scorecard pages (liaisons and clinicians) and the liaison-effectiveness page; each table exports to CSV/XLSX.

A liaison may open only their own scorecard: anyone else's answers 404, as if it did not exist. Managers and
administrators see every card; clinician cards and the effectiveness page need insights.view.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from refloop.accounts.permissions import require_action
from refloop.accounts.roles import Role
from refloop.insights import effectiveness as eff
from refloop.insights.scorecards import (
    ClinicianScorecard,
    LiaisonScorecard,
    Period,
    clinician_scorecard,
    clinician_scorecards,
    default_period,
    liaison_scorecard,
    liaison_scorecards,
)
from refloop.insights.tables import FORMATS, Table, table_export
from refloop.outreach.models import ActivityKind
from refloop.practice.models import Clinician

MAX_DAYS = 3 * 366


class PeriodForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, *, default: Period):
        super().__init__(data)
        self.default = default

    def clean(self):
        data = super().clean()
        start = data.get("start") or self.default.start
        end = data.get("end") or self.default.end
        if end < start:
            raise forms.ValidationError("The period ends before it starts.")
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError("Choose a period of at most three years.")
        data["period"] = Period(start, end)
        return data

    def period(self) -> Period:
        return self.cleaned_data["period"] if self.is_valid() else self.default


def _period(request: HttpRequest, default: Period) -> tuple[PeriodForm, Period]:
    form = PeriodForm(request.GET or None, default=default)
    return form, (form.period() if request.GET else default)


def _query(period: Period, **extra) -> str:
    from urllib.parse import urlencode

    return urlencode({"start": period.start.isoformat(), "end": period.end.isoformat(), **extra})


def _export_or_none(request: HttpRequest, tables: dict[str, Table]) -> HttpResponse | None:
    """The export ?export=csv|xlsx&table=NAME asks for, or None to render the page. Exporting is its own
    action in the matrix (insights.export): for anyone without it the links are hidden and the export refused."""
    allowed = request.user.can("insights.export")
    if not allowed:
        for table in tables.values():
            table.export_url = ""
    fmt = request.GET.get("export")
    if not fmt:
        return None
    if not allowed:
        raise PermissionDenied("Your role may not export insights tables (insights.export).")
    if fmt not in FORMATS:
        return HttpResponseBadRequest(f"Unknown export format {fmt!r}: use csv or xlsx.")
    name = request.GET.get("table", "")
    if name not in tables:
        return HttpResponseBadRequest(f"Unknown table {name!r}: one of {', '.join(sorted(tables))}.")
    return table_export(tables[name], fmt, actor=request.user)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def _change(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.0f}%"


def _percent(value: float | None) -> int | None:
    """A share as a whole percentage for tables: a number, so it sorts and exports as one."""
    return None if value is None else round(value * 100)


# Liaison and clinician tables


def liaison_table(cards: list[LiaisonScorecard], *, period: Period, export_path: str = "") -> Table:
    rows, links = [], []
    for card in cards:
        person = card.liaison
        rows.append(
            [
                person.get_full_name() or person.get_username(),
                card.activities_total,
                card.activities.get("visit", 0),
                card.activities.get("lunch", 0),
                card.assigned_practices + card.assigned_providers,
                card.with_cadence,
                card.on_cadence,
                _percent(card.on_cadence_share),
                card.referrals,
                card.referrals_last_year,
                _percent(card.referral_change),
            ]
        )
        url = reverse("insights:scorecard_liaison", args=[person.pk]) + "?" + _query(period)
        links.append([url] + [None] * 10)
    return Table(
        title=f"Liaisons, {period.label}",
        name=f"liaison-scorecards-{period.start}-{period.end}",
        columns=[
            "Liaison",
            "Activities",
            "Visits",
            "Lunches",
            "Assigned sources",
            "With a cadence",
            "Not overdue",
            "Share not overdue (%)",
            "Referrals",
            "Same dates last year",
            "Change (%)",
        ],
        rows=rows,
        links=links,
        empty="No active liaisons.",
        export_url=f"{export_path}?{_query(period, table='liaisons')}" if export_path else "",
    )


def clinician_table(cards: list[ClinicianScorecard], *, period: Period, export_path: str = "") -> Table:
    rows, links = [], []
    for card in cards:
        rows.append(
            [
                card.name,
                card.received,
                card.seen,
                card.reports,
                card.median_days,
                card.p90_days,
                _percent(card.within_target),
            ]
        )
        url = (
            reverse("insights:scorecard_clinician", args=[card.clinician.pk]) + "?" + _query(period)
            if card.clinician
            else None
        )
        links.append([url] + [None] * 6)
    target = cards[0].target_days if cards else None
    return Table(
        title=f"Clinicians, {period.label}",
        name=f"clinician-scorecards-{period.start}-{period.end}",
        columns=[
            "Clinician",
            "Referrals received",
            "Patients seen",
            "Reports sent",
            "Report turnaround, median (business days)",
            "Turnaround, 90th percentile",
            f"Within target of {target} days (%)" if target is not None else "Within target (%)",
        ],
        rows=rows,
        links=links,
        empty="No clinicians.",
        export_url=f"{export_path}?{_query(period, table='clinicians')}" if export_path else "",
    )


@require_GET
@require_action("insights.scorecards")
def scorecards(request: HttpRequest) -> HttpResponse:
    if request.user.role == Role.LIAISON:
        return redirect(reverse("insights:scorecard_liaison", args=[request.user.pk]) + _keep_query(request))
    form, period = _period(request, default_period())
    path = reverse("insights:scorecards")
    tables = {"liaisons": liaison_table(liaison_scorecards(period=period), period=period, export_path=path)}
    if request.user.can("insights.view"):
        tables["clinicians"] = clinician_table(clinician_scorecards(period=period), period=period, export_path=path)
    exported = _export_or_none(request, tables)
    if exported is not None:
        return exported
    return render(
        request,
        "insights/scorecards.html",
        {"form": form, "period": period, "tables": list(tables.values()), "section": "scorecards"},
    )


def _keep_query(request: HttpRequest) -> str:
    return f"?{request.GET.urlencode()}" if request.GET else ""


def _liaison_for(request: HttpRequest, user_id: int):
    """The liaison whose card this is; a liaison asking for anyone's but their own gets 404."""
    if request.user.role == Role.LIAISON and request.user.pk != user_id:
        raise Http404("No such scorecard.")
    return get_object_or_404(get_user_model(), pk=user_id, role=Role.LIAISON)


@require_GET
@require_action("insights.scorecards")
def scorecard_liaison(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _liaison_for(request, user_id)
    form, period = _period(request, default_period())
    card = liaison_scorecard(liaison=person, period=period)
    path = reverse("insights:scorecard_liaison", args=[person.pk])
    overdue = Table(
        title="Overdue for a visit",
        name=f"overdue-{person.pk}-{period.end}",
        columns=["Source", "Kind", "Cadence (days)", "Last visit", "Due on", "Days overdue"],
        rows=[[i.name, i.kind, i.cadence_days, i.last_visit, i.due_on, i.days_overdue] for i in card.overdue],
        links=[[_entry_url(i), None, None, None, None, None] for i in card.overdue],
        empty="Every assigned source with a cadence has been visited within it.",
        export_url=f"{path}?{_query(period, table='overdue')}",
    )
    activities = Table(
        title="Activities done",
        name=f"activities-{person.pk}-{period.start}-{period.end}",
        columns=["Kind", "Done"],
        rows=[[label, n] for label, n in card.activity_rows],
        export_url=f"{path}?{_query(period, table='activities')}",
    )
    exported = _export_or_none(request, {"overdue": overdue, "activities": activities})
    if exported is not None:
        return exported
    return render(
        request,
        "insights/scorecard_liaison.html",
        {
            "form": form,
            "period": period,
            "card": card,
            "person": person,
            "overdue": overdue,
            "activities": activities,
            "share": _share(card.on_cadence_share),
            "change": _change(card.referral_change),
            "section": "scorecards",
        },
    )


def _entry_url(item) -> str:
    if item.kind == "provider":
        return reverse("directory:provider", args=[item.entry.pk])
    return reverse("directory:practice", args=[item.entry.pk])


@require_GET
@require_action("insights.view")
def scorecard_clinician(request: HttpRequest, clinician_id: int) -> HttpResponse:
    clinician = get_object_or_404(Clinician, pk=clinician_id)
    form, period = _period(request, default_period())
    card = clinician_scorecard(clinician=clinician, period=period)
    last_year = clinician_scorecard(clinician=clinician, period=period.year_before())
    return render(
        request,
        "insights/scorecard_clinician.html",
        {
            "form": form,
            "period": period,
            "card": card,
            "last_year": last_year,
            "within": _share(card.within_target),
            "within_last_year": _share(last_year.within_target),
            "section": "scorecards",
        },
    )


# Effectiveness


def _effectiveness_default(today: dt.date) -> Period:
    """The twelve months whose events have a complete 90 days after."""
    end = today - dt.timedelta(days=eff.WINDOW_DAYS + 1)
    return Period(end - dt.timedelta(days=364), end)


def estimate_table(
    title: str, name: str, estimates: list[eff.Estimate], *, export_url: str, links: list[str | None] | None = None
) -> Table:
    rows = []
    for e in estimates:
        rows.append(
            [
                e.label,
                e.events,
                e.sources,
                e.referrals,
                None if e.thin else round(e.lift, 2),
                None if e.thin else round(e.low, 2),
                None if e.thin else round(e.high, 2),
                None if e.thin else round(e.before_mean, 2),
                None if e.thin else round(e.after_mean, 2),
                None if e.thin else round(e.control_change, 2),
                None if e.thin else round(e.pretrend, 2),
                None if e.thin else round(e.pretrend_low, 2),
                None if e.thin else round(e.pretrend_high, 2),
                _verdict(e),
            ]
        )
    return Table(
        title=title,
        name=name,
        columns=[
            "Group",
            "Events",
            "Practices",
            "Referrals (visited, before and after)",
            "Lift (referrals per practice per 90 days)",
            "95% interval, low",
            "95% interval, high",
            "Before, mean",
            "After, mean",
            "Comparable practices' change",
            "Pre-visit trend (near 0 when comparable)",
            "Pre-visit trend, low",
            "Pre-visit trend, high",
            "Verdict",
        ],
        rows=rows,
        links=[[link] + [None] * 13 for link in links] if links is not None else None,
        empty="No visits or lunches in this period.",
        export_url=export_url,
    )


def _verdict(e: eff.Estimate) -> str:
    if e.thin:
        return f"Too thin to conclude: {e.thin_reason}"
    if e.pretrend_warning:
        return f"{e.verdict}, but the visited offices were already changing before the visits"
    return e.verdict


def event_table(events: list[eff.EventLift], *, name: str, export_url: str) -> Table:
    """Every event behind the estimate, with its own and its controls' counts: the drill-down."""
    from django.contrib.auth import get_user_model

    from refloop.directory.models import ReferringPractice

    practices = dict(ReferringPractice.objects.filter(pk__in={e.practice_id for e in events}).values_list("pk", "name"))
    people = get_user_model().objects.in_bulk({e.liaison_id for e in events if e.liaison_id})
    kinds = dict(ActivityKind.choices)
    ordered = sorted(events, key=lambda e: (e.date, e.practice_id), reverse=True)
    return Table(
        title="Events",
        name=name,
        columns=[
            "Date",
            "Practice",
            "Kind",
            "Liaison",
            "Referrals before",
            "After",
            "Controls",
            "Controls before, mean",
            "Controls after, mean",
            "Matched on",
            "Lift",
        ],
        rows=[
            [
                e.date,
                practices.get(e.practice_id, f"#{e.practice_id}"),
                kinds.get(e.kind, e.kind),
                (people[e.liaison_id].get_full_name() or people[e.liaison_id].get_username())
                if e.liaison_id in people
                else "",
                e.before,
                e.after,
                e.controls,
                round(e.control_before, 2),
                round(e.control_after, 2),
                eff.MATCH_LEVELS[e.match_level],
                round(e.lift, 2),
            ]
            for e in ordered
        ],
        links=[[None, reverse("directory:practice", args=[e.practice_id])] + [None] * 9 for e in ordered],
        empty="No visit or lunch qualified in this period.",
        export_url=export_url,
        page_rows=50,
    )


def spend_table(title: str, name: str, rows: list[eff.SpendRow], *, export_url: str) -> Table:
    return Table(
        title=title,
        name=name,
        columns=["Source", "Spend ($)", "Referrals", "Cost per referral ($)", "Spend and no referrals"],
        rows=[[r.name, r.spend, r.referrals, r.cost_per_referral, r.referrals == 0] for r in rows],
        links=[[reverse(f"directory:{r.kind}", args=[r.pk]), None, None, None, None] for r in rows],
        empty="No spend recorded in this period.",
        export_url=export_url,
        page_rows=50,
    )


@require_GET
@require_action("insights.view")
def effectiveness_page(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    form, period = _period(request, _effectiveness_default(today))
    result = eff.effectiveness(start=period.start, end=period.end, as_of=today)
    path = reverse("insights:effectiveness")
    tables = {
        "overall": estimate_table(
            "Visits and lunches: lift by activity kind",
            f"effectiveness-kind-{period.start}-{period.end}",
            [result.overall, *result.by_kind],
            export_url=f"{path}?{_query(period, table='overall')}",
        ),
        "liaisons": estimate_table(
            "Lift by liaison",
            f"effectiveness-liaison-{period.start}-{period.end}",
            result.by_liaison,
            export_url=f"{path}?{_query(period, table='liaisons')}",
            links=[
                reverse("insights:scorecard_liaison", args=[e.key]) + "?" + _query(period) if e.key else None
                for e in result.by_liaison
            ],
        ),
        "events": event_table(
            result.events,
            name=f"effectiveness-events-{period.start}-{period.end}",
            export_url=f"{path}?{_query(period, table='events')}",
        ),
        "spend_physicians": spend_table(
            "Compliance ledger: items of value per physician against their referrals",
            f"spend-physicians-{period.start}-{period.end}",
            eff.spend_by_physician(start=period.start, end=period.end),
            export_url=f"{path}?{_query(period, table='spend_physicians')}",
        ),
        "spend_practices": spend_table(
            "Outreach spend per office against its referrals",
            f"spend-practices-{period.start}-{period.end}",
            eff.spend_by_practice(start=period.start, end=period.end),
            export_url=f"{path}?{_query(period, table='spend_practices')}",
        ),
    }
    exported = _export_or_none(request, tables)
    if exported is not None:
        return exported
    return render(
        request,
        "insights/effectiveness.html",
        {
            "form": form,
            "period": period,
            "result": result,
            "tables": tables,
            "window": eff.WINDOW_DAYS,
            "minimums": {"events": eff.MIN_EVENTS, "sources": eff.MIN_SOURCES, "referrals": eff.MIN_REFERRALS},
            "match_levels": eff.MATCH_LEVELS,
            "section": "effectiveness",
        },
    )
