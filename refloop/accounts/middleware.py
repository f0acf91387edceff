"""Request gates of the accounts app: who is acting (for the audit trail), the second factor, the idle logoff."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from refloop.accounts import two_factor
from refloop.accounts.security_events import current_request

SESSION_SEEN = "refloop_seen"  # epoch seconds of the user's last request (not counting the idle-timer's checks)
_SEEN_WRITE_EVERY = 30  # seconds: refresh the stamp at most this often, so a page of requests is one write
_MACHINE_PREFIXES = ("/api/", "/fhir/")


class AuditContextMiddleware:
    """Make the current request known to audit receivers that Django calls without it (user row saves)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


def _exempt(request: HttpRequest) -> bool:
    path = request.path_info
    return path.startswith((settings.STATIC_URL, "/account/two-factor/", "/account/session/")) or path in (
        reverse("logout"),
        reverse("healthz"),
    )


class TwoFactorMiddleware:
    """Until a user who needs a second factor has given it, every page leads to enrolment or verification."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified() or _exempt(request):
            return None
        if not getattr(view_func, "login_required", True):
            return None  # public pages (status links, the referral form) ask nothing of a login
        if not two_factor.needs_second_factor(request):
            return None
        if request.path_info.startswith(_MACHINE_PREFIXES):
            return JsonResponse({"detail": "two-factor verification required"}, status=403)
        target = reverse("accounts:two_factor")
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return redirect(target)


_idle_cache: dict[str, float] = {}
_IDLE_CACHE_SECONDS = 30  # another process's change of the setting is seen within this long


def idle_seconds() -> int:
    from refloop.practice.models import SecuritySettings

    now = time.monotonic()
    if _idle_cache.get("until", 0) < now:
        _idle_cache.update(value=SecuritySettings.current().idle_logoff_minutes * 60, until=now + _IDLE_CACHE_SECONDS)
    return int(_idle_cache["value"])


def forget_idle_seconds(**kwargs) -> None:
    """Connected to SecuritySettings' post_save: this process uses a changed setting at once."""
    _idle_cache.clear()


class IdleTimeoutMiddleware:
    """Log a user off after the practice's idle period (practice.SecuritySettings), on the server's clock.

    The browser's warning (static/refloop/idle.js) is a courtesy; this is the rule. The idle timer's status
    checks (GET /account/session/) do not count as activity.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        now = time.time()
        limit = idle_seconds()
        seen = request.session.get(SESSION_SEEN)
        if seen is not None and now - seen > limit:
            return self._log_off(request, limit)
        checking = request.path_info == reverse("accounts:session") and request.method == "GET"
        if not checking and (seen is None or now - seen >= _SEEN_WRITE_EVERY):
            request.session[SESSION_SEEN] = now
        request.idle_remaining = limit - (now - (request.session.get(SESSION_SEEN) or now))
        return self.get_response(request)

    def _log_off(self, request: HttpRequest, limit: int) -> HttpResponse:
        request.refloop_logout_reason = "idle"
        path = request.get_full_path()
        logout(request)
        if request.path_info == reverse("accounts:session") or request.path_info.startswith(_MACHINE_PREFIXES):
            return JsonResponse({"remaining": 0, "logged_off": True}, status=401)
        messages.info(request, f"You were logged off after {limit // 60} minutes without activity.")
        target = f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': path})}" if request.method == "GET" else (
            reverse(settings.LOGIN_URL)
        )
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return redirect(target)
