"""The single gate between a request and an action in accounts.roles.MATRIX."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from refloop.accounts.roles import MATRIX


def require_action(action: str) -> Callable:
    """Refuse with 403 unless the logged-in user's role may do `action`.

    Login itself is enforced globally by LoginRequiredMiddleware, so an anonymous visitor is sent to the login
    page before this runs; a logged-in user without the role gets 403, never a hidden-button illusion.
    """
    if action not in MATRIX:
        raise KeyError(f"unknown action {action!r}")

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated or not request.user.can(action):
                raise PermissionDenied(f"Your role may not do this ({action}).")
            return view(request, *args, **kwargs)

        wrapper.refloop_action = action  # read by the permission-matrix walk in the tests
        return wrapper

    return decorator
