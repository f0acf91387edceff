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


SEQ_JOIN = '","seq":'  # what comes between prev_hash and seq in the canonical form (the keys are sorted)


def canonical_around_link(
    *,
    at: dt.datetime,
    actor_id: int | None,
    actor_label: str,
    action: str,
    target_type: str,
    target_id: str,
    patient_id: str,
    detail: Any,
) -> tuple[str, str]:
    """The canonical form without the two fields only the chain's head gives, as (before, after) such that
    `before + prev_hash + SEQ_JOIN + str(seq) + after`, UTF-8 encoded, is exactly `canonical(...)`: the database
    can then complete and hash it under the chain's lock (accounts.audit) while everything else is done before it."""
    dumps = _dumps
    fields = {
        "action": action,
        "actor_id": actor_id,
        "actor_label": actor_label,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "detail": detail,
        "patient_id": patient_id,
    }  # the keys before "prev_hash" and "seq", in sorted order; "target_id" and "target_type" come after
    before = "{" + ",".join(f"{dumps(k)}:{dumps(v)}" for k, v in fields.items()) + ',"prev_hash":"'
    after = f',"target_id":{dumps(target_id)},"target_type":{dumps(target_type)}}}'
    return before, after


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
