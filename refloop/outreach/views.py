"""The liaison's pages: the week, who is due for a visit, the phone form that logs a touch, the calendar feed.

A liaison sees their own territory; a manager or administrator sees everyone's, or one liaison's with
?liaison=<id>. Concerns and the compliance ledger have their own modules (views_concerns, views_compliance).
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from refloop.accounts.permissions import require_action
from refloop.accounts.roles import Role
from refloop.directory.models import PracticeLocation, ReferringPractice, ReferringProvider, StaffContact, Territory
from refloop.lib.stale import CONFLICT, carry_stamp, stale_problem
from refloop.outreach import compliance, ics, selectors, services
from refloop.outreach.forms import ActivityFilterForm, ActivityForm, OutreachSettingsForm, ReassignForm
from refloop.outreach.models import (
    Activity,
    ActivityStatus,
    OutreachSettings,
    OutreachTask,
    TerritoryAssignment,
)

PAGE_SIZE = 50


def scope_liaison(request: HttpRequest):
    """The liaison a page is about: a liaison always sees their own; others may pick one (None = everyone)."""
    if request.user.role == Role.LIAISON:
        return request.user
    chosen = request.GET.get("liaison", "")
    if chosen.isdigit():
        return get_user_model().objects.filter(pk=int(chosen), role=Role.LIAISON).first()
    return None


def _liaison_choices():
    return get_user_model().objects.filter(is_active=True, role=Role.LIAISON)


def _parse_date(text: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else default
    except ValueError:
        return default


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


@require_GET
@require_action("outreach.view")
def home(request: HttpRequest) -> HttpResponse:
    liaison = scope_liaison(request)
    today = timezone.localdate()
    recent = Activity.objects.done().select_related("practice", "liaison")
    if liaison is not None:
        recent = recent.filter(liaison=liaison)
    context = {
        "liaison": liaison,
        "liaisons": _liaison_choices(),
        "due": selectors.due_list(liaison=liaison, today=today)[:8],
        "new_sources": selectors.never_visited(liaison=liaison, today=today)[:8],
        "recent": recent.filter(date__lte=today).order_by("-date", "-pk")[:10],
        "follow_ups": selectors.open_follow_ups(owner=liaison, until=today + dt.timedelta(days=7))[:10],
        "concern_count": selectors.open_concerns(liaison=liaison).count(),
        "today": today,
        "tab": "home",
    }
    return render(request, "outreach/home.html", context)


# The week


@require_GET
@require_action("outreach.view")
def week(request: HttpRequest) -> HttpResponse:
    liaison = scope_liaison(request)
    today = timezone.localdate()
    start = _parse_date(request.GET.get("start", ""), today - dt.timedelta(days=today.weekday()))
    default_day = today if start <= today < start + dt.timedelta(days=7) else start
    day = _parse_date(request.GET.get("day", ""), default_day)
    context = {
        "week": selectors.week_for(liaison=liaison, start=start, route_day=day),
        "liaison": liaison,
        "liaisons": _liaison_choices(),
        "previous": start - dt.timedelta(days=7),
        "next": start + dt.timedelta(days=7),
        "days": [start + dt.timedelta(days=n) for n in range(7)],
        "today": today,
        "tab": "week",
    }
    return render(request, "outreach/week.html", context)


@require_GET
@require_action("outreach.view")
def calendar_feed(request: HttpRequest) -> HttpResponse:
    """The planned visits as .ics: from a month back (so a changed visit updates) to a year ahead."""
    liaison = scope_liaison(request)
    today = timezone.localdate()
    activities = selectors.planned_activities(
        liaison=liaison, start=today - dt.timedelta(days=30), end=today + dt.timedelta(days=366), stops_only=True
    )
    name = f"Planned visits: {liaison}" if liaison else "Planned visits"
    text = ics.calendar_text(
        activities,
        name=name,
        now=timezone.now(),
        base_url=request.build_absolute_uri("/").rstrip("/"),
        uid_domain=request.get_host().split(":")[0] or "refloop",
    )
    response = HttpResponse(text, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="refloop-planned-visits.ics"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@require_action("outreach.view")
def due(request: HttpRequest) -> HttpResponse:
    liaison = scope_liaison(request)
    kind = request.GET.get("kind", "")
    kinds = (kind,) if kind in ("provider", "practice") else ("provider", "practice")
    rows = selectors.due_list(liaison=liaison, kinds=kinds)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "liaison": liaison,
        "liaisons": _liaison_choices(),
        "kind": kind,
        "new_sources": selectors.never_visited(liaison=liaison),
        "tab": "due",
    }
    return render(request, "outreach/due.html", context)


# Activities


@require_GET
@require_action("outreach.view")
def activity_list(request: HttpRequest) -> HttpResponse:
    form = ActivityFilterForm(request.GET or None)
    activities = Activity.objects.select_related("practice", "liaison").order_by("-date", "-pk")
    if request.user.role == Role.LIAISON:
        activities = activities.filter(liaison=request.user)
    if form.is_valid():
        data = form.cleaned_data
        if data["kind"]:
            activities = activities.filter(kind=data["kind"])
        if data["status"]:
            activities = activities.filter(status=data["status"])
        if data["liaison"] and request.user.role != Role.LIAISON:
            activities = activities.filter(liaison=data["liaison"])
        if data["q"]:
            activities = activities.filter(practice__name__icontains=data["q"])
    page = Paginator(activities, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {"form": form, "page": page, "querystring": params.urlencode(), "tab": "activities"}
    return render(request, "outreach/activity_list.html", context)


def _attendee_context(practice: ReferringPractice | None, *, providers=(), staff=(), location=None) -> dict:
    if practice is None:
        return {"practice": None}
    affiliated = (
        ReferringProvider.objects.current()
        .filter(affiliations__practice=practice, is_active=True)
        .distinct()
        .order_by("last_name", "first_name")
    )
    return {
        "practice": practice,
        "providers": [(p, compliance.is_physician(p)) for p in affiliated],
        "staff": StaffContact.objects.filter(practice=practice, is_active=True).order_by("last_name", "first_name"),
        "locations": list(practice.locations.all()),
        "chosen_providers": {p.pk for p in providers},
        "chosen_staff": {s.pk for s in staff},
        "chosen_location": location.pk if location else None,
    }


def _form_values(form: ActivityForm) -> dict:
    """What the form held when it was checked (adding an error to a field drops it from cleaned_data)."""
    return getattr(form, "kept", None) or getattr(form, "cleaned_data", None) or {}


def _activity_form_page(request: HttpRequest, form: ActivityForm, *, activity: Activity | None = None, refused=None):
    values = _form_values(form)
    practice = values.get("practice")
    if practice is None and activity is not None:
        practice = activity.practice
    if practice is None and not form.is_bound and request.GET.get("practice", "").isdigit():
        practice = ReferringPractice.objects.current().filter(pk=int(request.GET["practice"])).first()
    chosen = {"providers": (), "staff": (), "location": None}
    if form.is_bound and values:
        chosen = {k: values.get(k) or v for k, v in chosen.items()}
    elif activity is not None:
        chosen = {"providers": activity.providers.all(), "staff": activity.staff.all(), "location": activity.location}
    context = {
        "form": form,
        "activity": activity,
        "refused": refused,
        "practices": [practice] if practice else [],
        "selected_practice": practice.pk if practice else None,
        "tab": "activities",
        **_attendee_context(practice, **chosen),
    }
    preview = _preview(form, activity=activity) if form.is_bound else None
    context["preview"] = preview
    return render(request, "outreach/activity_form.html", context)


def _save_activity(request: HttpRequest, form: ActivityForm, activity: Activity | None) -> HttpResponse:
    form.kept = dict(form.cleaned_data)
    override = form.cleaned_data.get("override_reason", "") if request.user.can("compliance.override") else ""
    try:
        if activity is None:
            logged = services.activity_log(
                data=form.to_input(),
                by=request.user,
                receipt=form.cleaned_data.get("receipt"),
                override_reason=override,
            )
        else:
            logged = services.activity_update(
                activity=activity,
                data=form.to_input(),
                by=request.user,
                receipt=form.cleaned_data.get("receipt"),
                override_reason=override,
            )
    except compliance.LimitRefused as exc:
        form.add_error(None, exc.messages)
        return _activity_form_page(request, form, activity=activity, refused=exc.checks)
    except ValidationError as exc:
        add_errors(form, exc)
        return _activity_form_page(request, form, activity=activity)
    done = "Planned" if logged.activity.is_planned else "Logged"
    messages.success(request, f"{done}: {logged.activity}.")
    for check in logged.warnings:
        messages.warning(request, check.message)
    return redirect("outreach:activity", logged.activity.pk)


def add_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: on its fields where the form has them, else on top."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@require_action("outreach.edit")
def activity_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ActivityForm(request.POST, request.FILES)
        if form.is_valid():
            return _save_activity(request, form, None)
        return _activity_form_page(request, form)
    initial = {"kind": request.GET.get("kind", "visit")}
    return _activity_form_page(request, ActivityForm(initial=initial))


def _get_activity(activity_id: int) -> Activity:
    return get_object_or_404(
        Activity.objects.select_related("practice", "location", "liaison", "thanked_provider", "referral"),
        pk=activity_id,
    )


@require_action("outreach.edit")
def activity_edit(request: HttpRequest, activity_id: int) -> HttpResponse:
    activity = _get_activity(activity_id)
    if activity.status == ActivityStatus.CANCELLED:
        messages.error(request, "This activity was cancelled; log a new one instead.")
        return redirect("outreach:activity", activity.pk)
    if request.method == "POST":
        form = carry_stamp(ActivityForm(request.POST, request.FILES), activity)
        if form.is_valid():
            with transaction.atomic():
                if stale_problem(form, activity):
                    form.kept = dict(form.cleaned_data)
                    response = _activity_form_page(request, form, activity=activity)
                    response.status_code = CONFLICT
                    return response
                return _save_activity(request, form, activity)
        return _activity_form_page(request, form, activity=activity)
    initial = {
        "kind": activity.kind,
        "date": activity.date,
        "status": ActivityStatus.DONE if request.GET.get("done") else activity.status,
        "start_time": activity.start_time,
        "duration_minutes": activity.duration_minutes,
        "liaison": activity.liaison_id,
        "cost": activity.cost if activity.cost else None,
        "purpose": activity.purpose,
        "talking_points": activity.talking_points,
        "outcome": activity.outcome,
        "clinicians": list(activity.clinicians.values_list("pk", flat=True)),
    }
    if request.GET.get("done") and activity.date > timezone.localdate():
        initial["date"] = timezone.localdate()  # done early: it happened today
    form = carry_stamp(ActivityForm(initial=initial), activity)
    return _activity_form_page(request, form, activity=activity)


@require_GET
@require_action("outreach.view")
def activity_detail(request: HttpRequest, activity_id: int) -> HttpResponse:
    activity = _get_activity(activity_id)
    entries = list(activity.ledger_entries.select_related("physician").order_by("physician__last_name"))
    years = {e.physician_id: compliance.physician_year(e.physician, e.year) for e in entries}
    context = {
        "activity": activity,
        "providers": [(p, compliance.is_physician(p)) for p in activity.providers.all()],
        "staff": activity.staff.all(),
        "clinicians": activity.clinicians.all(),
        "ledger": [(e, years[e.physician_id]) for e in entries],
        "overrides": activity.overrides.select_related("physician", "by"),
        "follow_ups": activity.follow_ups.select_related("owner"),
        "tab": "activities",
    }
    return render(request, "outreach/activity_detail.html", context)


@require_POST
@require_action("outreach.edit")
def activity_cancel(request: HttpRequest, activity_id: int) -> HttpResponse:
    activity = _get_activity(activity_id)
    try:
        services.activity_cancel(activity=activity, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Cancelled: {activity}.")
    return redirect("outreach:activity", activity.pk)


@require_GET
@require_action("outreach.view")
def activity_receipt(request: HttpRequest, activity_id: int) -> HttpResponse:
    activity = _get_activity(activity_id)
    if not activity.receipt:
        raise Http404("No receipt is attached.")
    try:
        handle = activity.receipt.open("rb")
    except FileNotFoundError:
        raise Http404("The stored receipt is missing.") from None
    response = FileResponse(
        handle, as_attachment=False, filename=activity.receipt_name, content_type=activity.receipt_content_type
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@require_action("outreach.edit")
def practice_choices(request: HttpRequest) -> HttpResponse:
    """Type-ahead for the practice on the phone form (the directory holds thousands)."""
    q = request.GET.get("practice_q", "").strip()[:100]
    practices = []
    if len(q) >= 2:
        locations = Prefetch("locations", queryset=PracticeLocation.objects.order_by("-is_primary", "pk"))
        practices = ReferringPractice.objects.current().search(q).prefetch_related(locations).order_by("name")[:8]
    return render(request, "outreach/_practice_choices.html", {"practices": practices, "q": q})


@require_GET
@require_action("outreach.edit")
def attendees(request: HttpRequest) -> HttpResponse:
    """The chosen practice's providers and staff as checkboxes (physicians marked: the ledger counts them)."""
    practice_id = request.GET.get("practice", "")
    practice = ReferringPractice.objects.current().filter(pk=practice_id).first() if practice_id.isdigit() else None
    return render(request, "outreach/_attendees.html", _attendee_context(practice))


def _preview(form: ActivityForm, *, activity: Activity | None = None):
    """Each physician's year with this item, from whatever the form holds so far (never saved)."""
    data = _form_values(form)
    if not data.get("date") or not data.get("kind"):
        return {"checks": [], "problems": []}
    try:
        plan = services.activity_plan(
            services.ActivityInput(
                kind=data["kind"],
                date=data["date"],
                status=ActivityStatus.DONE if data["date"] <= timezone.localdate() else ActivityStatus.PLANNED,
                practice=data.get("practice"),
                providers=list(data.get("providers") or []),
                staff=list(data.get("staff") or []),
                cost=data.get("cost") or compliance.ZERO,
                given_as=data.get("given_as") or compliance.GivenAs.ITEM,
                purpose=data.get("purpose", ""),
            ),
            activity=activity,
        )
    except ValidationError as exc:
        problems = [m for field, msgs in exc.message_dict.items() if field in ("given_as", "cost") for m in msgs]
        return {"checks": [], "problems": problems}
    checks = plan.checks
    if not checks:  # nothing of value yet: still show where each ticked physician's year stands
        physicians = [p for p in plan.data.providers if compliance.is_physician(p)]
        zero = compliance.Split([(p, compliance.ZERO) for p in physicians], len(physicians))
        checks = compliance.ledger_check(
            split=zero, year=plan.data.date.year, exclude_activity=activity.pk if activity else None
        )
    return {"checks": checks, "problems": [], "planned": plan.status == ActivityStatus.PLANNED}


@require_POST
@require_action("outreach.edit")
def activity_preview(request: HttpRequest) -> HttpResponse:
    form = ActivityForm(request.POST)
    form.is_valid()
    activity_id = request.POST.get("activity_id", "")
    activity = Activity.objects.filter(pk=activity_id).first() if activity_id.isdigit() else None
    return render(request, "outreach/_ledger_preview.html", {"preview": _preview(form, activity=activity)})


# Follow-ups


@require_POST
@require_action("outreach.edit")
def task_done(request: HttpRequest, task_id: int) -> HttpResponse:
    task = get_object_or_404(OutreachTask, pk=task_id)
    task = services.task_complete(task=task, by=request.user)
    if request.htmx:
        return render(request, "outreach/_task.html", {"task": task})
    messages.success(request, f"Done: {task}.")
    return redirect(_safe_next(request, reverse("outreach:week")))


# Territories


@require_GET
@require_action("outreach.view")
def territories(request: HttpRequest) -> HttpResponse:
    rows = Territory.objects.select_related("liaison").order_by("name")
    counts = {t.pk: ReferringPractice.objects.current().filter(territory=t).count() for t in rows}
    history = TerritoryAssignment.objects.select_related("practice", "from_liaison", "to_liaison", "by")[:50]
    q = request.GET.get("q", "").strip()[:100]
    practices = []
    if len(q) >= 2:
        practices = ReferringPractice.objects.current().search(q).select_related("territory", "liaison")[:20]
    context = {
        "territories": [(t, counts[t.pk]) for t in rows],
        "unassigned": ReferringPractice.objects.current().filter(territory__isnull=True).count(),
        "history": history,
        "q": q,
        "practices": practices,
        "tab": "territories",
    }
    return render(request, "outreach/territories.html", context)


@require_action("settings.edit")
def practice_reassign(request: HttpRequest, practice_id: int) -> HttpResponse:
    practice = get_object_or_404(ReferringPractice.objects.select_related("territory", "liaison"), pk=practice_id)
    form = carry_stamp(ReassignForm(request.POST or None, initial={"territory": practice.territory_id}), practice)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                stale = stale_problem(form, practice)
                if not stale:
                    services.practice_reassign(
                        practice=practice,
                        territory=form.cleaned_data["territory"],
                        liaison=form.cleaned_data["liaison"],
                        note=form.cleaned_data["note"],
                        by=request.user,
                    )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if not stale:
                messages.success(request, f"Moved {practice}.")
                return redirect("outreach:practice_reassign", practice.pk)
            status = CONFLICT
    context = {
        "practice": practice,
        "form": form,
        "history": practice.territory_history.select_related("from_liaison", "to_liaison", "by"),
        "tab": "territories",
    }
    return render(request, "outreach/practice_reassign.html", context, status=status)


# Settings


@require_GET
@require_action("settings.view")
def outreach_settings(request: HttpRequest) -> HttpResponse:
    return render(request, "outreach/settings.html", {"policy": OutreachSettings.current(), "tab": "settings"})


@require_action("settings.edit")
def outreach_settings_edit(request: HttpRequest) -> HttpResponse:
    policy = OutreachSettings.current()
    form = OutreachSettingsForm(request.POST or None, instance=OutreachSettings.objects.get(pk=policy.pk))
    carry_stamp(form, policy)
    status = 200
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.Meta.fields}
        try:
            with transaction.atomic():
                stale = stale_problem(form, policy)
                if not stale:
                    services.outreach_settings_update(changes=changes, by=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if not stale:
                messages.success(request, "Saved the outreach settings.")
                return redirect("outreach:settings")
            status = CONFLICT
    context = {
        "form": form,
        "title": "Outreach settings",
        "cancel_url": reverse("outreach:settings"),
        "tab": "settings",
    }
    return render(request, "outreach/form.html", context, status=status)
