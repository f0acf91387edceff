"""The compliance ledger's pages: each physician's year against the Stark limit, the yearly report, the limits.

Liaisons see the ledger (they must know a physician's year before buying lunch); managers and administrators
also record overrides and repayments; only administrators set a year's figure. Exports are audited.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.directory.models import ReferringProvider
from refloop.lib.stale import CONFLICT, carry_stamp, stale_problem
from refloop.outreach import compliance, report
from refloop.outreach.forms import LimitForm, RepaymentForm
from refloop.outreach.models import ComplianceOverride, LedgerEntry, StarkLimit
from refloop.outreach.views import PAGE_SIZE, add_errors

FIRST_YEAR, LAST_YEAR = 1990, 2200


def _year(value: int) -> int:
    if not FIRST_YEAR <= value <= LAST_YEAR:
        raise Http404("No such year.")
    return value


@require_GET
@require_action("compliance.view")
def compliance_home(request: HttpRequest) -> HttpResponse:
    text = request.GET.get("year", "")
    year = _year(int(text)) if text.isdigit() else timezone.localdate().year
    summary = compliance.year_summary(year)
    q = request.GET.get("q", "").strip().lower()[:100]
    if q:
        summary = [s for s in summary if q in s.physician.display_name.lower()]
    context = {
        "year": year,
        "years": compliance.years_on_file(),
        "limit": compliance.limit_for(year),
        "page": Paginator(summary, PAGE_SIZE).get_page(request.GET.get("page")),
        "q": q,
        "tab": "compliance",
    }
    return render(request, "outreach/compliance.html", context)


@require_GET
@require_action("compliance.view")
def compliance_physician(request: HttpRequest, year: int, physician_id: int) -> HttpResponse:
    year = _year(year)
    physician = get_object_or_404(ReferringProvider, pk=physician_id)
    context = {
        "year": year,
        "physician": physician,
        "is_physician": compliance.is_physician(physician),
        "summary": compliance.physician_year(physician, year),
        "entries": LedgerEntry.objects.filter(physician=physician, year=year)
        .select_related("activity", "activity__practice")
        .order_by("on", "pk"),
        "overrides": ComplianceOverride.objects.filter(physician=physician, year=year).select_related("by", "activity"),
        "repayments": physician.stark_repayments.order_by("-year"),
        "form": RepaymentForm(),
        "tab": "compliance",
    }
    return render(request, "outreach/compliance_physician.html", context)


@require_POST
@require_action("compliance.override")
def repayment_new(request: HttpRequest, year: int, physician_id: int) -> HttpResponse:
    year = _year(year)
    physician = get_object_or_404(ReferringProvider, pk=physician_id)
    form = RepaymentForm(request.POST)
    if form.is_valid():
        try:
            compliance.repayment_record(
                physician=physician,
                year=year,
                amount=form.cleaned_data["amount"],
                repaid_on=form.cleaned_data["repaid_on"],
                received_on=form.cleaned_data["received_on"],
                note=form.cleaned_data["note"],
                by=request.user,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Recorded the repayment by {physician.display_name} for {year}.")
    else:
        messages.error(request, "Give the amount and the date it was repaid.")
    return redirect("outreach:compliance_physician", year, physician.pk)


def _report_sections(request: HttpRequest, year: int):
    physician = None
    chosen = request.GET.get("physician", "")
    if chosen.isdigit():
        physician = get_object_or_404(ReferringProvider, pk=int(chosen))
    return physician, report.yearly_report(year, physician=physician)


def _audit_export(request: HttpRequest, year: int, physician, kind: str, count: int) -> None:
    audit_record(
        actor=request.user,
        action="compliance.export",
        target=physician,
        detail={"year": year, "format": kind, "physicians": count},
    )


@require_GET
@require_action("compliance.view")
def report_pdf(request: HttpRequest, year: int) -> HttpResponse:
    year = _year(year)
    physician, sections = _report_sections(request, year)
    pdf = report.report_pdf(year, sections, generated_by=request.user, now=timezone.now())
    _audit_export(request, year, physician, "pdf", len(sections))
    suffix = f"-{physician.npi or physician.pk}" if physician else ""
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="refloop-stark-ledger-{year}{suffix}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@require_action("compliance.view")
def report_csv(request: HttpRequest, year: int) -> HttpResponse:
    year = _year(year)
    physician, sections = _report_sections(request, year)
    text = report.report_csv(year, sections)
    _audit_export(request, year, physician, "csv", len(sections))
    suffix = f"-{physician.npi or physician.pk}" if physician else ""
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="refloop-stark-ledger-{year}{suffix}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@require_action("compliance.view")
def limits(request: HttpRequest) -> HttpResponse:
    years = set(StarkLimit.objects.values_list("year", flat=True)) | {timezone.localdate().year}
    rows = {row.year: row for row in StarkLimit.objects.select_related("updated_by")}
    context = {
        "rows": [(year, rows.get(year)) for year in sorted(years, reverse=True)],
        "next_year": max(years) + 1,
        "tab": "compliance",
    }
    return render(request, "outreach/limits.html", context)


@require_action("compliance.limits")
def limit_edit(request: HttpRequest, year: int) -> HttpResponse:
    year = _year(year)
    row = StarkLimit.objects.filter(year=year).first()
    initial = {}
    if row is not None:
        initial = {
            "amount": row.amount,
            "incidental_per_occurrence": row.incidental_per_occurrence,
            "limited_remuneration": row.limited_remuneration,
            "source_note": row.source_note,
        }
    form = carry_stamp(LimitForm(request.POST or None, initial=initial), row, none_yet=True)
    status = 200
    if request.method == "POST" and form.is_valid():
        fields = {k: v for k, v in form.cleaned_data.items() if k in LimitForm.base_fields}
        try:
            with transaction.atomic():
                stale = stale_problem(form, StarkLimit.objects.filter(year=year).first())
                if not stale:
                    compliance.stark_limit_set(year=year, by=request.user, **fields)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            if not stale:
                messages.success(request, f"Saved the {year} limit.")
                return redirect("outreach:limits")
            status = CONFLICT
    context = {"form": form, "year": year, "row": row, "tab": "compliance"}
    return render(request, "outreach/limit_form.html", context, status=status)
