from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.directory.models import OtherSourceKind
from refloop.insights import dashboard_charts as charts
from refloop.insights import selectors
from refloop.insights.filters import DashboardFilterForm, Filters, read_filters
from refloop.insights.models import ReferralRollup
from refloop.insights.rollups import cuboid_for
from refloop.practice.models import ServiceLevels

PAGE_SIZE = 50
KIND_LABELS = {"provider": "Referring providers", **dict(OtherSourceKind.choices)}


@selectors.caught_up
def _form(request: HttpRequest) -> DashboardFilterForm:
    payers = (
        ReferralRollup.objects.filter(cuboid=cuboid_for(()))
        .order_by("payer")
        .values_list("payer", flat=True)
        .distinct()
    )
    return DashboardFilterForm(request.GET or None, specialties=selectors.referrer_specialties(), payers=list(payers))


def drill_url(filters: Filters, **extra) -> str:
    return f"{reverse('insights:drilldown')}?{filters.query(**extra)}"


@require_action("insights.view")
def home(request: HttpRequest) -> HttpResponse:
    """The manager's dashboard: this period against last year and the trailing average, and where it leaks."""
    form = _form(request)
    filters = read_filters(form)
    levels = ServiceLevels.current()
    board = selectors.dashboard(filters, report_target=levels.report_days)
    context = {
        "form": form,
        "filters": filters,
        "board": board,
        "period": selectors.month_span(filters),
        "figures": charts.dashboard_figures(board, drill=lambda **extra: drill_url(filters, **extra)),
        "sources_url": f"{reverse('insights:sources')}?{filters.query()}",
        "headline": charts.headline(board, drill=lambda **extra: drill_url(filters, **extra)),
        "kind_labels": KIND_LABELS,
    }
    return render(request, "insights/home.html", context)


@require_action("insights.view")
def sources(request: HttpRequest) -> HttpResponse:
    """Top, new and growing sources for the dashboard's filters: loaded by the dashboard after it renders (a
    GROUP BY per source costs more than the rest of the page), or as a page of its own without JavaScript."""
    form = _form(request)
    filters = read_filters(form)
    lists = selectors.source_lists(filters)
    context = {
        "form": form,
        "filters": filters,
        "period": selectors.month_span(filters),
        "tables": charts.source_tables(lists, drill=lambda **extra: drill_url(filters, **extra)),
        "back": f"{reverse('insights:home')}?{filters.query()}",
    }
    return render(request, "insights/_dashboard_sources.html" if request.htmx else "insights/sources.html", context)


@require_action("insights.view")
def drilldown(request: HttpRequest) -> HttpResponse:
    """The referrals behind one figure of the dashboard: the very member rows that were counted."""
    form = _form(request)
    filters = read_filters(form)
    levels = ServiceLevels.current()
    error = ""
    try:
        drill = selectors.drilldown_members(filters, request.GET, report_target=levels.report_days)
    except selectors.DrilldownError as exc:
        error, drill = str(exc), None
    page, rows, words = None, [], drill.words if drill else []
    if drill is not None:
        listed = drill.rows.select_related(
            "referral__referring_provider", "referral__other_source", "referral__location", "referral__clinician"
        ).order_by("-month", "-referral_id")
        paginator = Paginator(listed, PAGE_SIZE)
        if drill.count is not None:
            # The figure's own number, from the rollups: Paginator.count is a cached property, so no COUNT(*)
            # runs over the period's member rows (on PostgreSQL a heap read of each, 100-230 ms for 12 months).
            paginator.count = drill.count
        page = paginator.get_page(request.GET.get("page"))
        rows = [(m, KIND_LABELS.get(m.source_kind, m.source_kind)) for m in page]
        # Referral-level rows: one audit record per page, naming the figure's filter and the referrals shown.
        audit_record(
            actor=request.user,
            action="referral.list",
            detail={
                "page": "insights drill-down",
                "filter": {k: v for k, v in request.GET.items() if k != "page"},
                "page_number": page.number,
                "referrals": [m.referral_id for m, _ in rows],
            },
        )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "rows": rows,
        "querystring": f"{query.urlencode()}&" if query else "",
        "words": words,
        "error": error,
        "period": selectors.month_span(filters),
        "back": f"{reverse('insights:home')}?{filters.query()}",
    }
    return render(request, "insights/drilldown.html", context, status=400 if error else 200)
