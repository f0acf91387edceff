"""Short-lived per-process copies of the practice's settings rows that every referral intake reads.

Each intake (form, FHIR, HL7) reads the service levels, the holidays, the default owner, the practice's letterhead
and the outreach policy: five queries that are the same for every intake, about a sixth of an intake's CPU
(issue 8). `remembered(key, load)` keeps what `load()` returned for TTL_SECONDS in this process.

What a person sees stays current:
- a save or delete of one of those rows in this process forgets every copy at once (`forget_on_change`), and again
  when its transaction commits; a copy read between a save and a rollback of it is kept at most TTL_SECONDS;
- another server process sees the change within TTL_SECONDS: a due time or an owner computed in that window
  follows the settings as they were;
- settings pages and anything else that edits or shows the rows read them fresh (`Model.current()`): only the
  intake and step paths (`recent()`, the letter rules) and the business calendar's holidays read through here.

Values handed out are copies (`copy.copy` of a model instance), so a caller that changes one cannot change the
next caller's.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.db.models.signals import post_delete, post_save

TTL_SECONDS = 5.0

T = TypeVar("T")

_entries: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()


def remembered(key: str, load: Callable[[], T]) -> T:
    """What `load()` returns, read at most once per TTL_SECONDS in this process; a copy of it."""
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is None or entry[0] <= now:
        value = load()
        with _lock:
            _entries[key] = (now + TTL_SECONDS, value)
    else:
        value = entry[1]
    return copy.copy(value)


def forget() -> None:
    """Drop every copy (a settings row changed; tests call it between tests)."""
    with _lock:
        _entries.clear()


def _changed(sender, **kwargs) -> None:
    forget()
    transaction.on_commit(forget)


def forget_on_change(*models) -> None:
    """Forget every copy whenever a row of these models is saved or deleted in this process."""
    for model in models:
        uid = f"hot_settings.{model._meta.label}"
        post_save.connect(_changed, sender=model, weak=False, dispatch_uid=f"{uid}.save")
        post_delete.connect(_changed, sender=model, weak=False, dispatch_uid=f"{uid}.delete")
