"""Letters on a referral source's timeline (shown to the roles that may see letters)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from refloop import timeline
from refloop.directory.models import ReferringProvider
from refloop.letters.models import Letter


@timeline.register("letters.view")
def letters(user, entry, limit: int) -> list[timeline.TimelineItem]:
    rows = Letter.objects.prefetch_related("deliveries")
    if isinstance(entry, ReferringProvider):
        rows = rows.filter(provider=entry)
    else:
        rows = rows.filter(referral__referring_practice=entry, recipient="referring_provider")
    items = []
    for letter in rows.order_by("-created_at", "-pk")[:limit]:
        deliveries = list(letter.deliveries.all())
        latest = deliveries[0] if deliveries else None
        detail = f"{latest.get_channel_display()} · {latest.get_status_display().lower()}" if latest else "not sent"
        items.append(
            timeline.TimelineItem(
                timezone.localtime(letter.created_at),
                "Letter",
                f"{letter.get_kind_display()} ({letter.reference})",
                detail,
                reverse("letters:letter", args=[letter.pk]),
            )
        )
    return items
