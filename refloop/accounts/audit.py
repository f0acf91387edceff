"""Writing the audit trail. Every service that reads or changes sensitive data calls `audit_record`."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from refloop.accounts.models import AuditEvent


def audit_record(
    *,
    actor,
    action: str,
    target: Model | None = None,
    detail: dict[str, Any] | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Append one event. `actor` is a User or None (then `actor_label` names the process or API key)."""
    user = actor if getattr(actor, "pk", None) is not None else None
    return AuditEvent.objects.create(
        actor=user,
        actor_label=actor_label or (user.get_username() if user else "system"),
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        detail=detail or {},
    )
