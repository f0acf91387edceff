"""Monthly report pages: the list of months with their PDFs, and the opt-in to receive each month by email."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.insights import monthly_report as mr
from refloop.insights.models import MonthlyReportDelivery, MonthlyReportRecipient


@require_GET
@require_action("insights.view")
def monthly_reports(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    months = [
        {
            "year": y,
            "month": m,
            "title": mr.month_period(y, m).start.strftime("%B %Y"),
            "current": (y, m) == (today.year, today.month),
        }
        for y, m in mr.available_months(today)
    ]
    subscribed = MonthlyReportRecipient.objects.filter(user=request.user).exists()
    last_sent = MonthlyReportDelivery.objects.filter(user=request.user).first()
    return render(
        request,
        "insights/monthly_reports.html",
        {
            "months": months,
            "subscribed": subscribed,
            "last_sent": last_sent,
            "send_at": mr.next_send_at(),
            "section": "monthly",
        },
    )


@require_GET
@require_action("insights.view")
def monthly_report_pdf(request: HttpRequest, year: int, month: int) -> HttpResponse:
    if not mr.month_is_reportable(year, month):
        raise Http404("No report for that month.")
    report = mr.monthly_report(year, month)
    content = mr.monthly_report_pdf(report)
    response = HttpResponse(content, content_type="application/pdf")
    disposition = "attachment" if request.GET.get("download") else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{mr.monthly_report_filename(year, month)}"'
    return response


@require_POST
@require_action("insights.view")
def monthly_report_email(request: HttpRequest) -> HttpResponse:
    """Opt in to (or out of) the monthly email, for oneself only."""
    choice = request.POST.get("action")
    if choice not in ("subscribe", "unsubscribe"):
        return HttpResponseBadRequest("Say action=subscribe or action=unsubscribe.")
    if choice == "subscribe":
        if not request.user.email:
            messages.error(request, "Your account has no email address: ask an administrator to add one first.")
            return redirect("insights:monthly_reports")
        _, created = MonthlyReportRecipient.objects.get_or_create(user=request.user)
        mr.monthly_report_schedule()
        if created:
            audit_record(actor=request.user, action="insights.monthly_email", detail={"subscribed": True})
        messages.success(request, f"The monthly report will be emailed to {request.user.email}.")
    else:
        deleted, _ = MonthlyReportRecipient.objects.filter(user=request.user).delete()
        if deleted:
            audit_record(actor=request.user, action="insights.monthly_email", detail={"subscribed": False})
        messages.success(request, "The monthly report will no longer be emailed to you.")
    return redirect("insights:monthly_reports")
