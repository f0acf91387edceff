"""Concerns: what referring offices complained about, asked or requested, followed until resolved.

A liaison sees the concerns they own or that come from their offices; a manager sees them all, grouped by how
long they have been outstanding.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from refloop.accounts.permissions import require_action
from refloop.directory.models import PracticeLocation, ReferringPractice
from refloop.lib.stale import CONFLICT, carry_stamp, stale_problem
from refloop.outreach import selectors, services
from refloop.outreach.forms import ConcernForm, ConcernUpdateForm
from refloop.outreach.models import Concern, ConcernStatus
from refloop.outreach.views import PAGE_SIZE, add_errors, scope_liaison


def _get_concern(concern_id: int) -> Concern:
    return get_object_or_404(
        Concern.objects.select_related("practice", "provider", "raised_by", "owner", "resolved_by"), pk=concern_id
    )


@require_GET
@require_action("outreach.view")
def concern_list(request: HttpRequest) -> HttpResponse:
    liaison = scope_liaison(request)
    status = request.GET.get("status", "open")
    concerns = Concern.objects.select_related("practice", "provider", "owner")
    if liaison is not None:
        concerns = concerns.filter(Q(owner=liaison) | Q(practice__liaison=liaison))
    if status == "open":
        concerns = concerns.open()
    elif status == "resolved":
        concerns = concerns.filter(status=ConcernStatus.RESOLVED)
    concerns = concerns.order_by("raised_on", "pk")
    today = timezone.localdate()
    ageing = selectors.concerns_by_age(list(concerns.open()), today=today) if status == "open" else []
    page = Paginator(concerns, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "ageing": ageing,
        "liaison": liaison,
        "today": today,
        "tab": "concerns",
    }
    return render(request, "outreach/concern_list.html", context)


@require_action("outreach.edit")
def concern_new(request: HttpRequest) -> HttpResponse:
    practice_id = request.POST.get("practice") or request.GET.get("practice", "")
    practice = (
        ReferringPractice.objects.current().filter(pk=int(practice_id)).first() if str(practice_id).isdigit() else None
    )
    if practice is None:
        q = request.GET.get("practice_q", "").strip()[:100]
        locations = Prefetch("locations", queryset=PracticeLocation.objects.order_by("-is_primary", "pk"))
        found = ReferringPractice.objects.current().search(q).prefetch_related(locations)[:10] if len(q) >= 2 else []
        return render(request, "outreach/concern_pick.html", {"practices": found, "q": q, "tab": "concerns"})
    form = ConcernForm(request.POST or None, practice=practice)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            concern = services.concern_open(
                practice=practice,
                provider=data["provider"],
                raised_by=data["raised_by"],
                category=data["category"],
                severity=data["severity"],
                summary=data["summary"],
                what_happened=data["what_happened"],
                owner=data["owner"],
                raised_on=data["raised_on"],
                due_on=data["due_on"],
                by=request.user,
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, f"Logged the concern from {practice}.")
            return redirect("outreach:concern", concern.pk)
    return render(request, "outreach/concern_form.html", {"form": form, "practice": practice, "tab": "concerns"})


@require_GET
@require_action("outreach.view")
def concern_detail(request: HttpRequest, concern_id: int) -> HttpResponse:
    concern = _get_concern(concern_id)
    form = carry_stamp(ConcernUpdateForm(instance=concern), concern)
    return render(request, "outreach/concern_detail.html", {"concern": concern, "form": form, "tab": "concerns"})


@require_POST
@require_action("outreach.edit")
def concern_update(request: HttpRequest, concern_id: int) -> HttpResponse:
    concern = _get_concern(concern_id)
    form = carry_stamp(ConcernUpdateForm(request.POST, instance=Concern.objects.get(pk=concern.pk)), concern)
    status = 200
    if form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.Meta.fields}
        try:
            with transaction.atomic():
                stale = stale_problem(form, concern)
                if not stale:
                    concern = services.concern_update(concern=concern, changes=changes, by=request.user)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            if not stale:
                messages.success(request, f"Saved: {concern.get_status_display().lower()}.")
                return redirect("outreach:concern", concern.pk)
            status = CONFLICT
    concern = _get_concern(concern_id)
    context = {"concern": concern, "form": form, "tab": "concerns"}
    return render(request, "outreach/concern_detail.html", context, status=status)
