"""Who is calling the API, and whether the permission matrix lets them do the operation they asked for.

Every operation names one action of `accounts.roles.MATRIX` through `needs(action)`. An integration sends
`Authorization: Bearer KEY` and its key must carry that action among its scopes; the app's own pages send the
session cookie (and a CSRF token on unsafe methods) and the user's role must allow the action. One matrix
decides both, so an integration can never do what the person who issued its key could not grant.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from refloop.accounts.roles import MATRIX, Role
from refloop.interop.apikeys import bearer_key, key_can
from refloop.interop.models import ApiKey

# An integration moves referrals along the loop with a coordinator's rights: it may do every step staff do,
# but reopening a declined or lost referral stays a manager's decision, made on the referral page.
KEY_WORKFLOW_ROLE = Role.COORDINATOR


@dataclass(frozen=True)
class Caller:
    """The person or integration behind a request, as services and the audit trail want it."""

    user: object | None = None
    key: ApiKey | None = None

    @property
    def label(self) -> str:
        return self.key.name if self.key is not None else self.user.get_username()

    @property
    def role(self) -> str:
        return KEY_WORKFLOW_ROLE if self.key is not None else self.user.role

    @property
    def by(self):
        """The `by` argument of a service: the user, or None for an integration (named by `label`)."""
        return self.user

    def audit(self) -> dict:
        """The actor arguments of `audit_record`."""
        return {"actor": self.user, "actor_label": self.label}


class KeyAuth(HttpBearer):
    """`Authorization: Bearer KEY`: a live key whose scopes include the operation's action."""

    def __init__(self, action: str):
        self.action = action
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> Caller | None:
        key = bearer_key(request)
        if key is None:
            return None
        if not key_can(key, self.action):
            raise HttpError(403, f"This API key lacks the scope {self.action!r}.")
        return Caller(key=key)


class SessionAuth(APIKeyCookie):
    """The browser session of the app's own pages; unsafe methods must carry the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, action: str):
        self.action = action
        super().__init__(csrf=True)

    def _get_key(self, request: HttpRequest) -> str | None:
        key = request.COOKIES.get(self.param_name)
        if key and check_csrf(request) is not None:
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header with the session's token.")
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> Caller | None:
        user = getattr(request, "user", None)
        if not key or user is None or not user.is_authenticated:
            return None
        if not user.can(self.action):
            raise HttpError(403, f"Your role may not do this ({self.action}).")
        return Caller(user=user)


def needs(action: str) -> list:
    """The `auth=` of an operation allowed to callers who may do `action` (a key scope or a role)."""
    if action not in MATRIX:
        raise KeyError(f"unknown action {action!r}: add it to accounts.roles.MATRIX")
    return [KeyAuth(action), SessionAuth(action)]


def action_of(operation) -> str | None:
    """The matrix action an operation was declared with (read by the tests' walk of every operation)."""
    actions = {getattr(auth, "action", None) for auth in operation.auth_callbacks or []}
    return actions.pop() if len(actions) == 1 else None


def caller(request: HttpRequest) -> Caller:
    return request.auth
