"""The hash chain that makes the audit trail tamper-evident (no models here: the migration imports it too).

Each event's hash covers a canonical serialisation of its own fields and the hash of the event before it, so
changing or deleting any stored event breaks every link after it. `refloop audit verify` walks the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of the first event


def canonical(
    *,
    seq: int,
    at: dt.datetime,
    actor_id: int | None,
    actor_label: str,
    action: str,
    target_type: str,
    target_id: str,
    patient_id: str,
    detail: Any,
    prev_hash: str,
) -> bytes:
    """One byte string per event: sorted keys, no spaces, UTC time to the microsecond, UTF-8."""
    record = {
        "seq": seq,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "patient_id": patient_id,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(**fields: Any) -> str:
    return hashlib.sha256(canonical(**fields)).hexdigest()
