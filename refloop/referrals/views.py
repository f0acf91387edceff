"""The coordinator's pages: the work queues, the referral page with its next action, and intake from a fax.

Patient data is PHI: every render of a referral page and every patient search that found someone is written to
the audit trail (counts only, never the search text), lists show name and date of birth and nothing more, and
no URL this module builds carries patient data in its query string.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.directory.models import ReferringProvider, Source
from refloop.directory.services import provider_create
from refloop.interop.models import waiting_count
from refloop.lib.stale import CONFLICT, carry_stamp, stale_problem
from refloop.referrals import selectors, services
from refloop.referrals.forms import (
    AssignForm,
    AttachmentForm,
    BulkAssignForm,
    ContactForm,
    IntakeForm,
    MoveForm,
    QueueFilterForm,
)
from refloop.referrals.models import Attachment, Referral
from refloop.referrals.uploads import kind_label
from refloop.referrals.workflow import NEXT_ACTION, TRANSITIONS, TransitionRefused, available, transition_problem

PAGE_SIZE = 50
EVENT_LABELS = {
    "receive": "Received",
    "contact": "Contact logged",
    "assign": "Reassigned",
    "attach": "Document attached",
} | {name: t.label for name, t in TRANSITIONS.items()}


def due_phrase(due_at: dt.datetime | None, now: dt.datetime) -> str:
    """How a queue row or a referral page says its due time: "due in 5 h", "overdue by 2 days"."""
    if due_at is None:
        return ""
    seconds = (due_at - now).total_seconds()
    span = abs(seconds)
    if span < 3600:
        amount = f"{max(1, int(span // 60))} min"
    elif span < 48 * 3600:
        amount = f"{int(span // 3600)} h"
    else:
        days = int(span // 86400)
        amount = f"{days} days"
    return f"due in {amount}" if seconds >= 0 else f"overdue by {amount}"


# Work queues


@require_GET
@require_action("referrals.view")
def home(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET, user=request.user)
    queue, scope, filters = form.values()
    now = timezone.now()
    cutoff = selectors.stalled_before(now)
    counts = selectors.queue_counts(filters=filters, now=now, stalled_cutoff=cutoff)
    rows = selectors.referral_queue(queue, filters=filters, now=now, stalled_cutoff=cutoff)
    paginator = Paginator(rows, PAGE_SIZE)
    paginator.count = counts[queue]  # already counted with the tabs; spares a second COUNT
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = selectors.queue_rows(list(page.object_list))
    for row in page.object_list:
        row.overdue = row.due_at is not None and row.due_at < now
        row.due_label = due_phrase(row.due_at, now)
    filter_params = {"scope": scope, "location": filters.location_id or "", "urgency": filters.urgency}
    # The queue names patients: one audit record per page shown, naming the queue, the filter and the rows.
    audit_record(
        actor=request.user,
        action="referral.list",
        detail={
            "page": "work queue",
            "queue": queue,
            "filter": filter_params,
            "page_number": page.number,
            "referrals": [row.pk for row in page.object_list],
        },
    )
    context = {
        "form": form,
        "queue": queue,
        "scope": scope,
        "tabs": [(q, counts[q.key]) for q in selectors.QUEUES],
        "counts": counts,
        "page": page,
        "filter_query": urlencode(filter_params),
        "querystring": urlencode({"queue": queue} | filter_params),
        "bulk_form": BulkAssignForm() if request.user.can("referrals.edit") else None,
    }
    if not request.htmx and request.user.can("interop.review"):
        context["waiting_messages"] = waiting_count()
    return render(request, "referrals/_queue.html" if request.htmx else "referrals/home.html", context)


def _back_to(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target.startswith("/referrals/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@require_POST
@require_action("referrals.edit")
def bulk_assign(request: HttpRequest) -> HttpResponse:
    form = BulkAssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
    else:
        coordinator = form.cleaned_data["coordinator"]
        chosen = sorted(form.cleaned_data["referral"], key=lambda r: r.pk)
        with transaction.atomic():
            # Each row carries the version the queue showed: a referral changed since is not reassigned silently.
            current = Referral.objects.select_for_update().filter(pk__in=[r.pk for r in chosen]).order_by("pk")
            changed = [
                pk
                for pk, version in current.values_list("pk", "version")
                if request.POST.get(f"version-{pk}", str(version)) != str(version)
            ]
            assigned = []
            if not changed:
                assigned = services.referral_assign_many(referrals=chosen, coordinator=coordinator, by=request.user)
        if changed:
            numbers = ", ".join(f"#{pk}" for pk in changed)
            messages.error(
                request,
                f"Nothing was assigned: {numbers} changed after you opened the queue (someone else saved first). "
                "Reload the queue to see their change, then assign again.",
            )
        else:
            plural = "referral" if len(assigned) == 1 else "referrals"
            messages.success(request, f"Assigned {len(assigned)} {plural} to {coordinator}.")
    return redirect(_back_to(request, reverse("referrals:home")))


# The referral page


def _get_referral(referral_id: int) -> Referral:
    return get_object_or_404(
        Referral.objects.select_related(
            "patient",
            "referring_provider",
            "referring_practice",
            "other_source",
            "secondary_source",
            "location",
            "clinician",
            "owner",
            "coordinator",
        ),
        pk=referral_id,
    )


def _render_detail(request: HttpRequest, referral: Referral, *, status: int = 200, **forms) -> HttpResponse:
    """The referral page (every render is a read of the patient's record, so each is audited)."""
    audit_record(actor=request.user, action="referral.view", target=referral)
    now = timezone.now()
    can_edit = request.user.can("referrals.edit")
    moves = available(referral.state, request.user.role)
    events = referral.events.select_related("by").order_by("-at", "-pk")
    attachments = list(referral.attachments.select_related("uploaded_by"))
    for attachment in attachments:
        attachment.kind = kind_label(attachment.content_type)
    context = {
        "referral": referral,
        "patient": referral.patient,
        "now": now,
        "due_label": due_phrase(referral.due_at, now) if referral.is_open else "",
        "overdue": referral.is_open and referral.due_at is not None and referral.due_at < now,
        "next_action": NEXT_ACTION.get(referral.state, ""),
        "moves": moves,
        "history": [(event, EVENT_LABELS.get(event.action, event.action)) for event in events],
        "attachments": attachments,
        "can_edit": can_edit,
        "move_form": None,
        "move_problem": "",
        "contact_form": ContactForm() if can_edit and referral.is_open else None,
        "assign_form": (
            carry_stamp(AssignForm(initial={"coordinator": referral.coordinator_id}), referral) if can_edit else None
        ),
        "attach_form": AttachmentForm() if can_edit else None,
    }
    context.update(forms)
    return render(request, "referrals/detail.html", context, status=status)


@require_GET
@require_action("referrals.view")
def detail(request: HttpRequest, referral_id: int) -> HttpResponse:
    return _render_detail(request, _get_referral(referral_id))


@require_action("referrals.view")
def move(request: HttpRequest, referral_id: int, name: str) -> HttpResponse:
    """One step of the loop. GET gives its small form; POST makes the move through the workflow, which
    decides (with the user's role) whether it is allowed: the permission to view is all this view asks."""
    referral = _get_referral(referral_id)
    transition = TRANSITIONS.get(name)
    if transition is None:
        raise Http404("No such step.")
    if request.method != "POST":
        form = MoveForm(transition=transition, referral=referral)
        problem = transition_problem(name, referral.state, request.user.role) or ""
        if request.htmx:
            context = {"referral": referral, "move_form": form, "move_problem": problem}
            return render(request, "referrals/_move_form.html", context)
        return _render_detail(request, referral, move_form=form, move_problem=problem)
    form = MoveForm(request.POST, transition=transition)
    if not form.is_valid():
        return _render_detail(request, referral, status=400, move_form=form)
    try:
        services.referral_transition(
            referral=referral,
            name=name,
            by=request.user,
            data=form.service_data(),
            note=form.cleaned_data.get("note", ""),
            expected_version=form.cleaned_data["version"],
        )
    except services.StaleEdit as exc:
        problem = f"{exc} Reload the page to see what changed, then try again."
    except TransitionRefused as exc:
        problem = str(exc)
    except ValidationError as exc:
        problem = " ".join(exc.messages)
    else:
        messages.success(request, f"{transition.label}: done.")
        return redirect("referrals:detail", referral.pk)
    return _render_detail(request, referral, status=409, move_form=form, move_problem=problem)


@require_POST
@require_action("referrals.edit")
def contact_log(request: HttpRequest, referral_id: int) -> HttpResponse:
    referral = _get_referral(referral_id)
    form = ContactForm(request.POST)
    if form.is_valid():
        try:
            services.referral_log_contact(referral=referral, by=request.user, note=form.cleaned_data["note"])
        except TransitionRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Contact logged.")
            return redirect("referrals:detail", referral.pk)
    return _render_detail(request, referral, status=400, contact_form=form)


@require_POST
@require_action("referrals.edit")
def assign(request: HttpRequest, referral_id: int) -> HttpResponse:
    referral = _get_referral(referral_id)
    form = carry_stamp(AssignForm(request.POST), referral)
    if form.is_valid():
        coordinator = form.cleaned_data["coordinator"]
        with transaction.atomic():
            stale = stale_problem(form, referral)
            if not stale:
                services.referral_assign(referral=referral, coordinator=coordinator, by=request.user)
        if not stale:
            messages.success(request, f"Assigned to {coordinator}.")
            return redirect("referrals:detail", referral.pk)
        return _render_detail(request, referral, status=CONFLICT, assign_form=form)
    return _render_detail(request, referral, status=400, assign_form=form)


@require_POST
@require_action("referrals.edit")
def attachment_upload(request: HttpRequest, referral_id: int) -> HttpResponse:
    referral = _get_referral(referral_id)
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        attached = []
        for upload in form.cleaned_data["files"]:
            try:
                attached.append(services.attachment_add(referral=referral, upload=upload, by=request.user))
            except ValidationError as exc:
                form.add_error("files", exc)
        if not form.errors:
            # Flash messages may travel in a cookie: counts only, never a file name (it may name the patient).
            plural = "document" if len(attached) == 1 else "documents"
            messages.success(request, f"Attached {len(attached)} {plural}.")
            return redirect("referrals:detail", referral.pk)
    return _render_detail(request, referral, status=400, attach_form=form)


@require_GET
@require_action("referrals.view")
def attachment_download(request: HttpRequest, referral_id: int, attachment_id: int) -> HttpResponse:
    attachment = get_object_or_404(
        Attachment.objects.select_related("referral"), pk=attachment_id, referral_id=referral_id
    )
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    audit_record(
        actor=request.user,
        action="referral.attachment.download",
        target=attachment.referral,
        detail={"attachment": attachment.pk},
    )
    response = FileResponse(
        handle, as_attachment=True, filename=attachment.original_name, content_type=attachment.content_type
    )
    response["Cache-Control"] = "private, no-store"
    return response


# Intake


@require_action("referrals.edit")
def intake(request: HttpRequest) -> HttpResponse:
    duplicates: list[Referral] = []
    if request.method == "POST":
        key = request.POST.get("idempotency_key", "").strip()
        already = Referral.objects.filter(idempotency_key=key).first() if key else None
        if already is not None:  # the same form sent twice (a double click, a resent page): one referral
            messages.info(request, f"{already} was already logged from this form.")
            return redirect("referrals:detail", already.pk)
        form = IntakeForm(request.POST, request.FILES)
        if form.is_valid():
            referral, duplicates = _intake_save(request, form)
            if referral is not None:
                messages.success(request, f"{referral} logged.")
                return redirect("referrals:detail", referral.pk)
    else:
        now = timezone.localtime().replace(second=0, microsecond=0)
        form = IntakeForm(initial={"idempotency_key": uuid.uuid4().hex, "received_at": now})
    return render(request, "referrals/intake.html", _intake_context(request, form, duplicates))


def _intake_context(request: HttpRequest, form: IntakeForm, duplicates: list[Referral]) -> dict:
    """What a re-shown form needs to keep the user's choices: the picked provider and patient radios."""
    providers: list[ReferringProvider] = []
    patients: list[selectors.PatientChoice] = []
    selected_provider = selected_patient = ""
    if form.is_bound:
        data = getattr(form, "cleaned_data", {})
        selected_provider = form.data.get("referring_provider", "")
        if data.get("referring_provider"):
            providers = [data["referring_provider"]]
        selected_patient = form.data.get("patient", "")
        patients = _patient_choices(form.data, chosen=data.get("patient"))
        if patients:
            _audit_patient_search(request, patients)
    return {
        "form": form,
        "providers": providers,
        "selected_provider": str(selected_provider),
        "choices": patients,
        "selected_patient": str(selected_patient),
        "duplicates": duplicates,
    }


def _errors_to_form(form: IntakeForm, exc: ValidationError, *, prefixes: tuple[str, ...]) -> None:
    """Put a service's errors on the form fields they are about (under the form's prefixed names)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    visible = {f.name for f in form.visible_fields()}
    for field, errors in exc.error_dict.items():
        target = next((f"{p}{field}" for p in prefixes if f"{p}{field}" in visible), None)
        for error in errors:
            form.add_error(target, error)


def _intake_save(request: HttpRequest, form: IntakeForm) -> tuple[Referral | None, list[Referral]]:
    data = form.cleaned_data
    patient = data.get("patient")
    provider, other = data.get("referring_provider"), data.get("other_source")
    if not form.adds_provider:
        if patient is not None:
            patients = [patient]
        else:
            patients = [
                m.patient
                for m in services.patient_candidates(
                    first_name=data["patient_first_name"],
                    last_name=data["patient_last_name"],
                    birth_date=data["patient_birth_date"],
                    mrn=data.get("patient_mrn", ""),
                )
            ]
        duplicates = list(
            selectors.open_duplicates(
                patients=patients,
                provider_id=provider.pk if provider else None,
                other_source_id=other.pk if other else None,
            )
        )
        if duplicates and not data.get("confirm_duplicate"):
            form.add_error(
                "confirm_duplicate",
                "This patient already has an open referral from this source. Open it below, or tick the box "
                "if this is a new referral.",
            )
            return None, duplicates
    try:
        with transaction.atomic():
            if form.adds_provider:
                try:
                    provider = provider_create(source=Source.REFERRAL, **form.new_provider_fields())
                except ValidationError as exc:
                    _errors_to_form(form, exc, prefixes=("new_provider_",))
                    raise
            try:
                received = services.referral_receive(
                    patient=patient,
                    patient_data=None if patient else form.patient_data(),
                    referring_provider=provider,
                    other_source=other if provider is None else None,
                    location=data.get("location"),
                    clinician=data.get("clinician"),
                    reason=data["reason"],
                    diagnosis_codes=data["diagnosis_codes"],
                    urgency=data["urgency"],
                    received_at=data["received_at"],
                    channel=data["channel"],
                    authorization_number=data.get("authorization_number", ""),
                    visits_approved=data.get("visits_approved"),
                    notes=data.get("notes", ""),
                    idempotency_key=data["idempotency_key"],
                    by=request.user,
                )
            except ValidationError as exc:
                _errors_to_form(form, exc, prefixes=("", "patient_"))
                raise
            if not received.created:
                # The same form won a race with itself: keep the first referral, drop this attempt's writes.
                transaction.set_rollback(True)
                return received.referral, []
            for upload in data.get("attachments") or []:
                try:
                    services.attachment_add(referral=received.referral, upload=upload, by=request.user)
                except ValidationError as exc:
                    form.add_error("attachments", exc)
                    raise
    except ValidationError:
        return None, []
    return received.referral, []


def _patient_choices(data, *, chosen=None) -> list[selectors.PatientChoice]:
    first, last = data.get("patient_first_name", ""), data.get("patient_last_name", "")
    mrn = data.get("patient_mrn", "")
    try:
        birth_date = dt.date.fromisoformat(data.get("patient_birth_date", "").strip())
    except ValueError:
        birth_date = None
    choices = []
    if (last.strip() and birth_date) or mrn.strip():
        choices = selectors.patient_choices(first_name=first, last_name=last, birth_date=birth_date, mrn=mrn)
    if chosen is not None and all(c.patient.pk != chosen.pk for c in choices):
        choices.insert(0, selectors.PatientChoice(chosen, "chosen"))
    return choices


def _audit_patient_search(request: HttpRequest, found: list[selectors.PatientChoice]) -> None:
    """One record per type-ahead answer: the patients offered (ids only, never the text typed)."""
    detail = {"where": "intake", "results": len(found), "patients": [choice.patient.pk for choice in found]}
    audit_record(actor=request.user, action="patient.search", detail=detail)


@require_GET
@require_action("referrals.edit")
def intake_providers(request: HttpRequest) -> HttpResponse:
    """Type-ahead for the referring provider (directory data, not PHI, so a GET is fine)."""
    q = request.GET.get("provider_q", "").strip()[:100]
    providers = []
    if len(q) >= 2:
        providers = list(ReferringProvider.objects.current().search(q).order_by("last_name", "first_name")[:10])
    return render(request, "referrals/_provider_choices.html", {"providers": providers, "q": q})


@require_POST
@require_action("referrals.edit")
def intake_patients(request: HttpRequest) -> HttpResponse:
    """Existing patients matching what has been typed so far; POST keeps names and birth dates out of URLs."""
    choices = _patient_choices(request.POST)
    if choices:
        _audit_patient_search(request, choices)
    return render(
        request,
        "referrals/_patient_choices.html",
        {"choices": choices, "selected_patient": request.POST.get("patient", "")},
    )
