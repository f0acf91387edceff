"""Global search: each app registers a function that finds its own records for the search box.

Keeping the registry here (not in one app) lets the directory, referrals and outreach each own how their
records are matched, while the search box shows one merged, permission-filtered list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SearchHit:
    kind: str  # "Provider", "Practice", "Patient", "Clinician"...
    label: str
    detail: str
    url: str


Finder = Callable[[object, str, int], list[SearchHit]]
_FINDERS: list[tuple[str, Finder]] = []


def register(action: str) -> Callable[[Finder], Finder]:
    """Register a finder shown only to users whose role may do `action`."""

    def decorator(finder: Finder) -> Finder:
        if all(existing is not finder for _, existing in _FINDERS):
            _FINDERS.append((action, finder))
        return finder

    return decorator


def search(user, query: str, *, limit: int = 8) -> list[SearchHit]:
    query = query.strip()
    if len(query) < 2:
        return []
    hits: list[SearchHit] = []
    for action, finder in _FINDERS:
        if user.can(action):
            hits.extend(finder(user, query, limit))
    return hits
