"""Rate limits for the public pages, counted in the database.

The project runs several web workers and configures no shared cache; Django's default local-memory cache would
give each worker its own count. A row per (key, 10-minute window) is shared by all of them and by every app
server on the same PostgreSQL. Keys are hashed, so neither a client address nor a token is stored in clear.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from refloop.letters.models import RateCounter

WINDOW = dt.timedelta(minutes=10)


def client_ip(request: HttpRequest) -> str:
    header = settings.LETTERS_CLIENT_IP_HEADER
    if header and request.META.get(header):
        return request.META[header].split(",")[-1].strip()[:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


def _window(now: dt.datetime) -> dt.datetime:
    seconds = int(WINDOW.total_seconds())
    return dt.datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=dt.UTC)


def hit(key: str, limit: int, *, now: dt.datetime | None = None) -> bool:
    """Count one request for `key`; True while the count in this window is within `limit`."""
    now = now or timezone.now()
    window = _window(now)
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:{key}".encode()).hexdigest()[:40]
    with transaction.atomic():
        updated = RateCounter.objects.filter(key=digest, window=window).update(count=F("count") + 1)
        if not updated:
            try:
                with transaction.atomic():
                    RateCounter.objects.create(key=digest, window=window, count=1)
            except IntegrityError:  # another worker created this window's row first
                RateCounter.objects.filter(key=digest, window=window).update(count=F("count") + 1)
        count = RateCounter.objects.filter(key=digest, window=window).values_list("count", flat=True).first() or 0
    if now.minute % 10 == 0 and now.second < 5:  # now and then, forget windows older than a day
        RateCounter.objects.filter(window__lt=now - dt.timedelta(days=1)).delete()
    return count <= limit


def allowed(request: HttpRequest, *, scope: str, token: str = "") -> bool:
    """Per client address and, when a token was presented (valid or not), per token."""
    ok = hit(f"{scope}:ip:{client_ip(request)}", settings.LETTERS_RATE_PER_IP)
    if token:
        ok = hit(f"{scope}:token:{token}", settings.LETTERS_RATE_PER_TOKEN) and ok
    return ok
