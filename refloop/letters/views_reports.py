"""The consult report: written (or pasted, or the EHR's PDF attached), signed by the clinician, then sent; and
the turnaround page (business days from visit to report, per clinician)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.letters import rendering, selectors, services
from refloop.letters.forms import ReportForm
from refloop.letters.models import ConsultReport, ReportStatus
from refloop.lib.stale import CONFLICT, carry_stamp, stale_problem
from refloop.referrals.models import Referral
from refloop.referrals.workflow import State


@require_GET
@require_action("letters.view")
def reports(request: HttpRequest) -> HttpResponse:
    turnaround, target = selectors.turnaround_by_clinician(days=90)
    waiting = (
        ConsultReport.objects.filter(status__in=[ReportStatus.DRAFT, ReportStatus.SIGNED])
        .select_related("referral__patient", "clinician")
        .order_by("created_at")[:100]
    )
    now = timezone.now()
    due = Referral.objects.filter(state=State.SEEN).select_related("patient", "clinician").order_by("due_at")[:100]
    due_rows = [(r, selectors.report_clock(r, now)) for r in due]
    # The two lists name patients: one audit record for the page, with the referrals it showed.
    audit_record(
        actor=request.user,
        action="letters.reports.list",
        detail={
            "lists": ["reports waiting", "reports due"],
            "referrals": [*(report.referral_id for report in waiting), *(r.pk for r in due)],
        },
    )
    context = {"turnaround": turnaround, "target": target, "waiting": waiting, "due": due_rows, "section": "reports"}
    return render(request, "letters/reports.html", context)


def _get_report(report_id: int) -> ConsultReport:
    return get_object_or_404(
        ConsultReport.objects.select_related("referral__patient", "referral__referring_provider", "clinician"),
        pk=report_id,
    )


@require_action("reports.write")
def report_edit(request: HttpRequest, referral_id: int) -> HttpResponse:
    """Write the report for a referral: the open draft if there is one, else a new one."""
    referral = get_object_or_404(Referral.objects.select_related("patient", "clinician"), pk=referral_id)
    draft = referral.consult_reports.filter(status=ReportStatus.DRAFT).first()
    initial = {"is_final": True}
    if draft is not None:
        initial = {name: getattr(draft, name) for name in (*services.REPORT_FIELDS, "is_final")}
    form = carry_stamp(ReportForm(request.POST or None, request.FILES or None, initial=initial), draft, none_yet=True)
    stale = ""
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                # The draft as it is now: someone may have started, changed or signed it since the form opened.
                draft = referral.consult_reports.filter(status=ReportStatus.DRAFT).first()
                stale = stale_problem(form, draft)
                report = (
                    None
                    if stale
                    else services.report_save(
                        referral=referral,
                        report=draft,
                        data=form.cleaned_data,
                        ehr_pdf=form.cleaned_data.get("ehr_pdf"),
                        by=request.user,
                    )
                )
        except services.LetterRefused as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                form.add_error(None, exc)
        else:
            if report is not None:
                messages.success(request, "Report saved. It is sent only once it is signed.")
                return redirect("letters:report", report.pk)
    # The page shows the patient and the draft: a read of the record.
    audit_record(actor=request.user, action="letters.report.edit_view", target=referral)
    context = {"referral": referral, "patient": referral.patient, "form": form, "draft": draft, "section": "reports"}
    status = CONFLICT if stale else (400 if form.errors else 200)
    return render(request, "letters/report_edit.html", context, status=status)


@require_GET
@require_action("letters.view")
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _get_report(report_id)
    audit_record(actor=request.user, action="letters.report.view", target=report)
    letter = getattr(report, "letter", None)
    preview = ""
    if letter is not None:
        preview = rendering.letter_html(letter, preview=True)
    user = request.user
    clinician = getattr(user, "clinician", None) if user.can("reports.sign") else None
    context = {
        "report": report,
        "referral": report.referral,
        "patient": report.referral.patient,
        "letter": letter,
        "preview": preview,
        "can_sign": report.status == ReportStatus.DRAFT and clinician is not None,
        "can_send": report.status == ReportStatus.SIGNED and user.can("letters.send"),
        "can_edit": report.status == ReportStatus.DRAFT and user.can("reports.write"),
        "section": "reports",
    }
    return render(request, "letters/report_detail.html", context)


@require_POST
@require_action("reports.sign")
def report_sign(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _get_report(report_id)
    try:
        services.report_sign(report=report, by=request.user)
    except services.LetterRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Report signed.")
    return redirect("letters:report", report.pk)


@require_POST
@require_action("letters.send")
def report_send(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _get_report(report_id)
    try:
        letter = services.report_send(report=report, by=request.user)
    except services.LetterRefused as exc:
        messages.error(request, str(exc))
        return redirect("letters:report", report.pk)
    messages.success(request, f"Report {letter.reference} queued for delivery.")
    return redirect("referrals:detail", report.referral_id)


@require_GET
@require_action("letters.view")
def report_ehr_pdf(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _get_report(report_id)
    if not report.ehr_pdf:
        raise Http404("This report has no PDF from the EHR.")
    try:
        handle = report.ehr_pdf.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    audit_record(actor=request.user, action="letters.report.download", target=report, detail={"document": "ehr"})
    response = FileResponse(handle, content_type="application/pdf", filename=report.ehr_pdf_name or "report.pdf")
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@require_action("letters.view")
def report_ccda(request: HttpRequest, report_id: int) -> HttpResponse:
    """The signed report as a C-CDA Consultation Note, for the referring provider's EHR (closes its loop)."""
    from refloop.interop.ccda import NotADocument, consult_note

    report = _get_report(report_id)
    try:
        document = consult_note(report)
    except NotADocument as exc:
        raise Http404(str(exc)) from None
    audit_record(actor=request.user, action="letters.report.download", target=report, detail={"document": "ccda"})
    response = HttpResponse(document, content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consult-note-{report.pk}.xml"'
    response["Cache-Control"] = "private, no-store"
    return response
