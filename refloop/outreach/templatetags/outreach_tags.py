"""Outreach pieces the directory's pages include: a source's open concerns, money shown as dollars."""

from __future__ import annotations

from decimal import Decimal

from django import template

from refloop.outreach.models import Concern

register = template.Library()


@register.simple_tag
def open_concerns_for(entry, limit: int = 10) -> list[Concern]:
    """{% open_concerns_for provider as concerns %}: the open concerns about a provider or a practice."""
    if entry is None or getattr(entry, "pk", None) is None:
        return []
    return list(
        Concern.objects.open().for_entry(entry).select_related("owner", "provider").order_by("raised_on")[:limit]
    )


@register.filter
def usd(value) -> str:
    """$1,234.50 from a Decimal; empty for None."""
    if value is None or value == "":
        return ""
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


@register.simple_tag
def concern_practice_for(entry) -> int | None:
    """The practice a new concern about `entry` belongs to: the practice itself, or a provider's primary one."""
    from refloop.directory.models import ReferringPractice

    if isinstance(entry, ReferringPractice):
        return entry.pk
    affiliation = entry.primary_affiliation() if getattr(entry, "pk", None) else None
    return affiliation.practice_id if affiliation else None


@register.filter
def days_outstanding(concern: Concern) -> int:
    return concern.days_outstanding()
