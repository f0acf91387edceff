"""Writing and checking the audit trail. Every service that reads or changes sensitive data calls `audit_record`.

Appends are serialised so that the hash chain never forks: on PostgreSQL a transaction-scoped advisory lock
is taken before the chain head is read (held until the caller's transaction ends), on SQLite the IMMEDIATE
transaction already holds the database's one write lock.

Because that lock is held to the commit, a transaction that appends early makes every other appender wait for
the whole of it. Writers that run concurrently and often (a referral's intake and its steps, whatever the door)
therefore open `audit_deferred()` just inside their transaction: the events are kept in memory and appended
together at the end, so the lock is held only for the transaction's last writes and the commit (issue 8).
Lock order, which keeps concurrent transactions free of deadlocks: the chain's lock comes before the rollups'
shared rows (as in HL7 intake, which audits the receipt first). Those writers queue their referrals for the rollups
instead of writing the shared rows (insights/rollups.py), and the queue's insert comes before the events:
`with transaction.atomic(), audit_deferred(), rollups_deferred(before_writes=audit_flush):` ends with the queue's
insert, the chain's lock and the events, then the commit: the lock is held over a few statements and the commit.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from refloop.accounts.chain import GENESIS, SEQ_JOIN, canonical_around_link, event_hash
from refloop.accounts.models import AuditEvent

CHAIN_INSERT_MAX = 50  # PostgreSQL: events linked and hashed by one INSERT (a chain of that many CTEs)

# pg_advisory_xact_lock key: any constant the rest of the project does not use ("refloop audit" in ASCII).
_CHAIN_LOCK = 0x7265666C6F6F70


def patient_of(target: Model | None) -> str:
    """The patient a target record is about: the patient itself, or one reached through a referral."""
    if target is None:
        return ""
    if target._meta.label_lower == "referrals.patient":
        return str(target.pk)
    patient_id = getattr(target, "patient_id", None)
    if patient_id is not None:
        return str(patient_id)
    referral = getattr(target, "referral", None) if hasattr(target, "referral_id") else None
    if referral is not None and getattr(referral, "patient_id", None) is not None:
        return str(referral.patient_id)
    return ""


def audit_record(
    *,
    actor,
    action: str,
    target: Model | None = None,
    detail: dict[str, Any] | None = None,
    actor_label: str = "",
    patient: Model | int | str | None = None,
) -> AuditEvent:
    """Append one event. `actor` is a User or None (then `actor_label` names the process or API key).

    The patient is found from `target` (a patient, or anything with a patient or a referral); pass `patient`
    when the target does not lead to one (a search, an export about one patient).
    """
    user = actor if getattr(actor, "pk", None) is not None else None
    if patient is not None:
        patient_id = str(patient.pk if isinstance(patient, Model) else patient)
    else:
        patient_id = patient_of(target)
    # Store exactly what the hash covers: the detail after one JSON round trip (dates become strings).
    clean_detail = json.loads(json.dumps(detail or {}, cls=DjangoJSONEncoder))
    event = AuditEvent(
        actor=user,
        actor_label=(actor_label or (user.get_username() if user else "system"))[:150],
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        patient_id=patient_id,
        detail=clean_detail,
    )
    pending = getattr(_deferred, "events", None)
    if pending is not None:
        pending.append(event)  # appended when audit_deferred() ends, still inside the caller's transaction
        return event
    _append([event])
    return event


_deferred = threading.local()


def audit_flush() -> None:
    """Append the events kept so far by `audit_deferred()` now, inside the transaction (nothing kept: nothing)."""
    pending = getattr(_deferred, "events", None)
    if pending:
        _append(list(pending))
        pending.clear()


@contextlib.contextmanager
def audit_deferred() -> Iterator[None]:
    """Keep the events recorded inside the block and append them, in order, when it ends without an error.

    Open it just inside the transaction it belongs to (`with transaction.atomic(), audit_deferred():`): the
    events are then the transaction's last writes and the chain's lock is held only for them and the commit.
    Nested, the outermost one appends; an error leaving an inner block drops that block's events (its savepoint
    is rolled back with them). Outside a transaction it defers nothing: each event is appended at once, as
    without it, so an event is never written after the change it records has committed.
    """
    pending = getattr(_deferred, "events", None)
    if pending is not None:
        mark = len(pending)
        try:
            yield
        except BaseException:
            del pending[mark:]
            raise
        return
    if not connection.in_atomic_block:
        yield
        return
    _deferred.events = []
    try:
        yield
        events = _deferred.events
    finally:
        _deferred.events = None
    if events:
        _append(events)


def _append(events: list[AuditEvent]) -> None:
    # No savepoint of its own inside the caller's transaction (savepoint=False): the append is still all or
    # nothing with that transaction, and a referral intake saves two round trips per record (issue 8).
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            _append_postgresql(events)
            return
        head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS)
        for event in events:
            event.seq, event.prev_hash = seq, prev_hash
            event.at = timezone.now()
            event.hash = _hash_of(event)
            seq, prev_hash = seq + 1, event.hash
        if len(events) == 1:
            events[0].save()
        else:
            AuditEvent.objects.bulk_create(events)


def _append_postgresql(events: list[AuditEvent]) -> None:
    """Two statements under the chain's lock: the lock, then one INSERT that reads the head, links and hashes the
    events (sha256 of the canonical form, which Python prepared around the link) and returns what it wrote.

    The lock is held to the commit by every appender, so what is done while it is held is what limits concurrent
    intakes (issue 8): reading the head and the ORM's INSERT were two round trips and half a millisecond of Python
    each time. The head must be read by a statement that starts after the lock is granted: a statement sees what
    was committed when it began, so one that waited for the lock inside itself could miss the previous holder's
    events and fork the chain.
    """
    parts = []
    for start in range(0, len(events), CHAIN_INSERT_MAX):  # bounded statements (and few cached texts) for a batch
        part, params = events[start : start + CHAIN_INSERT_MAX], []
        for event in part:
            event.at = timezone.now()
            before, after = canonical_around_link(
                at=event.at, actor_id=event.actor_id, actor_label=event.actor_label, action=event.action,
                target_type=event.target_type, target_id=event.target_id, patient_id=event.patient_id,
                detail=event.detail,
            )  # fmt: skip
            params += [before, after, event.at, event.actor_id, event.actor_label, event.action, event.target_type,
                       event.target_id, event.patient_id, json.dumps(event.detail)]  # fmt: skip
        parts.append((part, params))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        for part, params in parts:  # each statement starts after the one before: it sees that one's events
            cursor.execute(_chain_insert_sql(len(part)), [GENESIS, *params])
            written = {seq: (pk, prev_hash, digest) for pk, seq, prev_hash, digest in cursor.fetchall()}
            first = min(written)
            for offset, event in enumerate(part):
                event.seq = first + offset
                event.pk, event.prev_hash, event.hash = written[event.seq]
                event._state.adding, event._state.db = False, connection.alias


@functools.cache
def _chain_insert_sql(count: int) -> str:
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    columns = ["seq", "at", "actor_id", "actor_label", "action", "target_type", "target_id", "patient_id", "detail",
               "prev_hash", "hash"]  # fmt: skip
    links = [
        f"head AS (SELECT COALESCE(MAX(seq), 0) AS seq, COALESCE((SELECT hash FROM {table} "  # noqa: S608
        f"ORDER BY seq DESC LIMIT 1), %s::varchar) AS hash FROM {table})"
    ]
    previous = "head"
    for n in range(1, count + 1):
        # One event: the link to the one before it (the head, or the previous event of this append) and its hash.
        links.append(
            f"e{n} AS (SELECT p.seq + 1 AS seq, p.hash AS prev_hash, encode(sha256(convert_to(%s::text || p.hash || "  # noqa: S608
            f"'{SEQ_JOIN}' || (p.seq + 1)::text || %s::text, 'UTF8')), 'hex') AS hash, %s::timestamptz AS at, "
            f"%s::bigint AS actor_id, %s::varchar AS actor_label, %s::varchar AS action, %s::varchar AS target_type, "
            f"%s::varchar AS target_id, %s::varchar AS patient_id, %s::jsonb AS detail FROM {previous} p)"
        )
        previous = f"e{n}"
    names = ", ".join(columns)
    chosen = " UNION ALL ".join(f"SELECT {names} FROM e{n}" for n in range(1, count + 1))  # noqa: S608
    return (
        f"WITH {', '.join(links)} INSERT INTO {table} ({names}) {chosen} "  # noqa: S608
        f"RETURNING id, seq, prev_hash, hash"
    )


def _hash_of(event: AuditEvent) -> str:
    return event_hash(
        seq=event.seq,
        at=event.at,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        patient_id=event.patient_id,
        detail=event.detail,
        prev_hash=event.prev_hash,
    )


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    pk: int | None
    reason: str

    def __str__(self) -> str:
        where = f"record #{self.seq}" + (f" (id {self.pk})" if self.pk is not None else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_seq: int
    head_hash: str
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _walk(chunk: int) -> Iterator[AuditEvent]:
    # Keyset pages rather than one long cursor: SQLite and PostgreSQL both read it in bounded memory.
    after = 0
    while True:
        page = list(AuditEvent.objects.filter(seq__gt=after).order_by("seq")[:chunk])
        if not page:
            return
        yield from page
        after = page[-1].seq


def audit_verify(*, anchor: tuple[int, str] | None = None, chunk: int = 5000) -> ChainReport:
    """Walk the whole chain and report the first broken record (gap, wrong link or altered content).

    `anchor` is a (seq, hash) noted earlier (e.g. printed by a previous verify and kept off the machine): it
    also catches the one change the chain cannot see by itself, events cut off the end.
    """
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    last: AuditEvent | None = None
    for event in _walk(chunk):
        reason = ""
        if event.seq != expected_seq:
            missing = f"#{expected_seq}" if event.seq == expected_seq + 1 else f"#{expected_seq}-#{event.seq - 1}"
            reason = f"records {missing} before it are missing (deleted)"
        elif event.prev_hash != prev_hash:
            reason = "its link to the previous record does not match (the previous record was changed or deleted)"
        elif _hash_of(event) != event.hash:
            reason = "its content does not match its hash (the record was changed)"
        if reason:
            return ChainReport(checked, event.seq, event.hash, ChainProblem(event.seq, event.pk, reason))
        checked += 1
        expected_seq, prev_hash, last = event.seq + 1, event.hash, event
    head_seq, head_hash = (last.seq, last.hash) if last else (0, GENESIS)
    if anchor is not None:
        seq, digest = anchor
        if seq > head_seq:
            problem = ChainProblem(seq, None, f"the anchored record is gone: the chain now ends at #{head_seq}")
            return ChainReport(checked, head_seq, head_hash, problem)
        kept = AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).first()
        if kept != digest:
            problem = ChainProblem(seq, None, "its hash differs from the anchor noted earlier")
            return ChainReport(checked, head_seq, head_hash, problem)
    return ChainReport(checked, head_seq, head_hash, None)
