"""The count beside "Referrals" in the main navigation: how much is waiting, and how much of it is late."""

from __future__ import annotations

from functools import cached_property

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from refloop.accounts.roles import Role
from refloop.referrals.selectors import nav_counts


class ReferralNav:
    """Counted only when a page's navigation is drawn (htmx partials never touch it, so never count)."""

    def __init__(self, user) -> None:
        self.user = user
        self.url = reverse("referrals:home")
        self.scope = "mine" if user.role in (Role.COORDINATOR, Role.CLINICIAN) else "all"

    @cached_property
    def counts(self) -> dict[str, int | None]:
        owner_id = self.user.pk if self.scope == "mine" else None
        return nav_counts(owner_id=owner_id, now=timezone.now())


def referral_counts(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.can("referrals.view"):
        return {}
    return {"referrals_nav": ReferralNav(user)}
