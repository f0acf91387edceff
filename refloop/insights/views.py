from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from refloop.accounts.permissions import require_action


@require_action("insights.view")
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "insights/home.html")
