from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from refloop import search as global_search
from refloop.accounts.permissions import require_action
from refloop.accounts.roles import HOME_FOR_ROLE


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers and monitors: 200 only when the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def home(request: HttpRequest) -> HttpResponse:
    return redirect(HOME_FOR_ROLE.get(request.user.role, "practice:settings"))


@require_GET
@require_action("search.use")
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    hits = global_search.search(request.user, query)
    template = "refloop/_search_results.html" if request.htmx else "refloop/search.html"
    return render(request, template, {"query": query, "hits": hits})
