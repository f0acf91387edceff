from __future__ import annotations

import csv
import datetime as dt
import time

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from refloop.accounts import two_factor
from refloop.accounts.audit import audit_record
from refloop.accounts.forms import AuditFilterForm, TokenForm
from refloop.accounts.middleware import SESSION_SEEN, idle_seconds
from refloop.accounts.permissions import require_action
from refloop.accounts.roles import TWO_FACTOR_ROLES
from refloop.accounts.selectors import EXPORT_HEADER, audit_events, export_rows, patients_matching
from refloop.lib.csvsafe import neutralize


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


@never_cache
def two_factor_page(request: HttpRequest) -> HttpResponse:
    """Second step of the login: enter the app's code, or enrol an authenticator app first."""
    user = request.user
    if user.is_verified():
        return HttpResponseRedirect(_next_url(request))
    device = two_factor.confirmed_device(user)
    if device is None and user.role not in TWO_FACTOR_ROLES and request.session.get(two_factor.SESSION_ENROLLED):
        request.session[two_factor.SESSION_ENROLLED] = False  # the device was reset: nothing to verify
        return HttpResponseRedirect(_next_url(request))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"]
        ok = (
            two_factor.device_verify(request=request, token=token)
            if device is not None
            else two_factor.device_confirm(request=request, token=token)
        )
        if ok:
            return HttpResponseRedirect(_next_url(request))
        form.add_error("token", "That code is not right, or it was already used. Enter the current code.")
    context = {"form": form, "next": _next_url(request), "enrolling": device is None}
    if device is None:
        pending = two_factor.pending_device(user)
        context.update(qr_svg=two_factor.qr_svg(pending), secret=two_factor.secret_of(pending))
    return render(request, "accounts/two_factor.html", context)


@never_cache
def account(request: HttpRequest) -> HttpResponse:
    """The user's own account: password, two-factor status."""
    device = two_factor.confirmed_device(request.user)
    return render(
        request,
        "accounts/account.html",
        {"device": device, "two_factor_required": request.user.role in TWO_FACTOR_ROLES},
    )


@require_POST
def two_factor_enrol(request: HttpRequest) -> HttpResponse:
    """A user of an optional role chooses to add an authenticator app (confirmed on the two-factor page)."""
    two_factor.pending_device(request.user)
    request.session[two_factor.SESSION_ENROLLED] = False
    return redirect(reverse("accounts:two_factor") + "?" + "next=" + reverse("accounts:account"))


@require_POST
@require_action("users.manage")
def two_factor_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=user_id)
    removed = two_factor.device_reset(user=person, by=request.user)
    messages.success(request, f"Removed {removed} authenticator device(s) of {person}; they enrol again at next login.")
    return redirect(reverse("practice:settings") + "#users")


@never_cache
@require_http_methods(["GET", "POST"])
def session_status(request: HttpRequest) -> JsonResponse:
    """For the idle timer: GET tells the seconds left (without counting as activity); POST keeps the session."""
    if request.method == "POST":
        request.session[SESSION_SEEN] = time.time()
        return JsonResponse({"remaining": idle_seconds()})
    return JsonResponse({"remaining": max(0, int(getattr(request, "idle_remaining", 0)))})


def _filters(request: HttpRequest) -> tuple[AuditFilterForm, dict]:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return form, {}
    data = form.cleaned_data
    filters = {
        "user": data.get("user") or "",
        "action": data.get("action") or "",
        "date_from": data.get("date_from"),
        "date_to": data.get("date_to"),
    }
    if data.get("patient"):
        filters["patient_ids"] = patients_matching(data["patient"])
    return form, filters


def _logged_filters(filters: dict) -> dict:
    logged = {key: value for key, value in filters.items() if value not in ("", None)}
    for key, value in logged.items():
        if isinstance(value, dt.date):
            logged[key] = value.isoformat()
    return logged


@require_GET
@require_action("audit.view")
def audit_search(request: HttpRequest) -> HttpResponse:
    """The audit trail searched by patient, user, action and dates; the search itself is audited."""
    form, filters = _filters(request)
    page = None
    if form.is_valid():
        page = Paginator(audit_events(**filters).select_related("actor"), 100).get_page(request.GET.get("page"))
        audit_record(actor=request.user, action="audit.search", detail=_logged_filters(filters))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "accounts/audit.html", {"form": form, "page": page, "query": query.urlencode()})


class _Echo:
    """A file that hands back what is written to it: csv.writer formats, the response streams."""

    def write(self, value: str) -> str:
        return value


@require_GET
@require_action("audit.view")
def audit_export(request: HttpRequest) -> HttpResponse:
    """The filtered events as CSV for an auditor, oldest first, cells made formula-safe."""
    form, filters = _filters(request)
    if not form.is_valid():
        return render(request, "accounts/audit.html", {"form": form, "page": None}, status=400)
    audit_record(actor=request.user, action="audit.export", detail=_logged_filters(filters))
    events = audit_events(**filters)

    writer = csv.writer(_Echo(), lineterminator="\r\n")

    def lines():
        yield writer.writerow(EXPORT_HEADER)
        for row in export_rows(events):
            yield writer.writerow([neutralize(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{dt.date.today():%Y%m%d}.csv"'
    return response
