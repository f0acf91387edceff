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
