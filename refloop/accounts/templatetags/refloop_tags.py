from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def can(user, action: str) -> bool:
    """{% if user|can:"directory.edit" %}: the matrix the server enforces, so buttons match permissions."""
    return bool(getattr(user, "is_authenticated", False)) and user.can(action)
