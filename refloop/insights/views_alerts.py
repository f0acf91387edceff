"""The early-warning block's one action: ask the source's liaison to follow up (an outreach task)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from refloop.accounts.permissions import require_action
from refloop.insights.models import SourceAlert
from refloop.insights.scan import alert_follow_up as follow_up_service


def _source_url(alert: SourceAlert) -> str:
    from django.urls import reverse

    if alert.provider_id:
        return reverse("directory:provider", args=[alert.provider_id]) + "#source-alert"
    return reverse("directory:practice", args=[alert.practice_id]) + "#source-alert"


@require_POST
@require_action("outreach.edit")
def alert_follow_up(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_object_or_404(SourceAlert.objects.select_related("provider", "practice"), pk=alert_id)
    try:
        alert = follow_up_service(alert=alert, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        owner = alert.follow_up.owner if alert.follow_up else None
        messages.success(request, f"Follow-up task for {owner or 'you'}, due {alert.follow_up.due_on:%b %-d}.")
    return redirect(_source_url(alert))
