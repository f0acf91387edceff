from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse

from refloop.accounts.roles import NAVIGATION


def navigation(request: HttpRequest) -> dict:
    """The sections the user's role may open, marking the one the current page belongs to."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    path = request.path
    items = []
    for label, url_name, action in NAVIGATION:
        if user.can(action):
            url = reverse(url_name)
            items.append({"label": label, "url": url, "active": path.startswith(url)})
    return {"nav_items": items}


def idle_logoff(request: HttpRequest) -> dict:
    """The idle period for static/refloop/idle.js, which warns before the server logs an idle user off."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from refloop.accounts.middleware import idle_seconds

    return {"idle_seconds": idle_seconds()}
