from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from refloop.accounts.permissions import require_action
from refloop.directory.models import Territory


@require_action("directory.view")
def home(request: HttpRequest) -> HttpResponse:
    territories = Territory.objects.select_related("liaison")
    return render(request, "directory/home.html", {"territories": territories})
