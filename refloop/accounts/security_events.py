"""Security events into the audit trail: logins, failed logins, lockouts, logouts, password and role changes.

They are caught where Django and django-axes announce them (signals), and account changes where the user row
is saved, so a change made from a page, the shell or a command is recorded alike. The person making an account
change is the user of the current request (set by accounts.middleware.AuditContextMiddleware), or "system".
"""

from __future__ import annotations

import contextvars

from django.conf import settings
from django.http import HttpRequest

from refloop.accounts.audit import audit_record

current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "refloop_current_request", default=None
)

_WATCHED = ("password", "role", "is_active", "is_superuser", "is_staff")


def client_ip(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    header = getattr(settings, "LETTERS_CLIENT_IP_HEADER", "") or "REMOTE_ADDR"
    raw = request.META.get(header) or request.META.get("REMOTE_ADDR", "")
    return raw.split(",")[0].strip()[:45]


def _acting_user():
    request = current_request.get()
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None


def on_logged_in(sender, request, user, **kwargs) -> None:
    audit_record(actor=user, action="auth.login", target=user, detail={"ip": client_ip(request)})


def on_logged_out(sender, request, user, **kwargs) -> None:
    if user is None:
        return
    reason = getattr(request, "refloop_logout_reason", "user")
    audit_record(actor=user, action="auth.logout", target=user, detail={"ip": client_ip(request), "reason": reason})


def _user_named(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username).first() if username else None


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        actor=None,
        actor_label=username or "anonymous",
        action="auth.login_failed",
        target=_user_named(username),
        detail={"ip": client_ip(request)},
    )


def on_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    username = str(username or "")[:150]
    audit_record(
        actor=None,
        actor_label=username or "anonymous",
        action="auth.lockout",
        target=_user_named(username),
        detail={"ip": ip_address or client_ip(request), "failures": settings.AXES_FAILURE_LIMIT},
    )


def before_user_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(_WATCHED):
        return  # e.g. last_login on every login: nothing to compare
    before = sender.objects.filter(pk=instance.pk).values(*_WATCHED).first()
    instance._audit_before = before


def after_user_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    actor = _acting_user()
    if created:
        audit_record(actor=actor, action="auth.user_create", target=instance, detail={"role": instance.role})
        return
    before = instance.__dict__.pop("_audit_before", None)
    if not before:
        return
    if before["password"] != instance.password:
        audit_record(actor=actor, action="auth.password_change", target=instance, detail={})
    if before["role"] != instance.role:
        change = {"from": before["role"], "to": instance.role}
        audit_record(actor=actor, action="auth.role_change", target=instance, detail=change)
    for flag in ("is_active", "is_superuser", "is_staff"):
        if before[flag] != getattr(instance, flag):
            audit_record(
                actor=actor,
                action="auth.permission_change",
                target=instance,
                detail={"field": flag, "from": before[flag], "to": getattr(instance, flag)},
            )


def connect() -> None:
    from axes.signals import user_locked_out
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
    from django.db.models.signals import post_save, pre_save

    user_model = get_user_model()
    user_logged_in.connect(on_logged_in, dispatch_uid="refloop_audit_login")
    user_logged_out.connect(on_logged_out, dispatch_uid="refloop_audit_logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="refloop_audit_login_failed")
    user_locked_out.connect(on_locked_out, dispatch_uid="refloop_audit_lockout")
    pre_save.connect(before_user_save, sender=user_model, dispatch_uid="refloop_audit_user_before")
    post_save.connect(after_user_save, sender=user_model, dispatch_uid="refloop_audit_user_after")
