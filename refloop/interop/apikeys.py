"""Per-integration API keys: created with scopes, shown once, stored as a hash, revocable.

A key's scopes are actions of the permission matrix (`accounts.roles.MATRIX`, e.g. "referrals.view",
"referrals.edit"), so an integration is held to the same rules as a person: one matrix decides both.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.accounts.roles import MATRIX
from refloop.interop.models import ApiKey
from refloop.lib.plain_sql import row_where

KEY_PREFIX = "rfl_"
PREFIX_LENGTH = 12  # "rfl_" + 8 random characters, unique, shown in lists to recognise a key


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def apikey_create(*, name: str, scopes: list[str], by=None) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the key a name (the integration that will use it)."})
    unknown = sorted(set(scopes) - set(MATRIX))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(unknown)}. Scopes are actions of the matrix."})
    if ApiKey.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A key named {name!r} already exists."})
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name, prefix=raw[:PREFIX_LENGTH], key_hash=_digest(raw), scopes=sorted(set(scopes)), created_by=by
        )
        audit_record(actor=by, action="apikey.create", target=key, detail={"scopes": key.scopes})
    return key, raw


def apikey_revoke(*, key: ApiKey, by=None) -> ApiKey:
    if key.revoked_at is None:
        with transaction.atomic():
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_record(actor=by, action="apikey.revoke", target=key)
    return key


def apikey_authenticate(raw: str) -> ApiKey | None:
    """The live key this secret belongs to, or None. Compares hashes in constant time."""
    if not raw.startswith(KEY_PREFIX) or len(raw) <= PREFIX_LENGTH:
        return None
    key = row_where(ApiKey, prefix=raw[:PREFIX_LENGTH])  # unique; every request asks: plain SQL (lib/plain_sql.py)
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.key_hash, _digest(raw)):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def bearer_key(request: HttpRequest) -> ApiKey | None:
    """The key sent as `Authorization: Bearer KEY`, if it is valid."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return apikey_authenticate(token.strip())


def key_can(key: ApiKey, action: str) -> bool:
    if action not in MATRIX:
        raise KeyError(f"unknown action {action!r}: add it to accounts.roles.MATRIX")
    return action in key.scopes
