"""The timeline of a referral source: everything that touched it, newest first, from every app.

Each app registers a function returning its own items for a provider or practice (referrals, activities,
letters, concerns...), so the directory page shows one history without importing every other app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str  # "Referral", "Visit", "Letter", "Concern", "Directory"...
    title: str
    detail: str = ""
    url: str = ""


Source = Callable[[object, object, int], list[TimelineItem]]  # (user, provider-or-practice, limit) -> items
_SOURCES: list[tuple[str, Source]] = []


def register(action: str) -> Callable[[Source], Source]:
    """Register a source of items shown only to users whose role may do `action`."""

    def decorator(source: Source) -> Source:
        if all(existing is not source for _, existing in _SOURCES):
            _SOURCES.append((action, source))
        return source

    return decorator


def timeline(user, entry, *, limit: int = 100) -> list[TimelineItem]:
    items: list[TimelineItem] = []
    for action, source in _SOURCES:
        if user.can(action):
            items.extend(source(user, entry, limit))
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]
