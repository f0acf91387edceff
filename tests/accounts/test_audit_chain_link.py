"""The chain's link completed by the database (issue 8): on PostgreSQL one INSERT under the lock reads the head and
hashes each event from the canonical form Python prepared around the link; the hashes must be the ones
`refloop audit verify` recomputes in Python, whatever the text holds."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from refloop.accounts.audit import audit_deferred, audit_record, audit_verify
from refloop.accounts.chain import GENESIS, SEQ_JOIN, canonical, canonical_around_link, event_hash
from refloop.accounts.models import AuditEvent

AWKWARD = [
    {"actor_label": "ehr-ünïcødé", "detail": {"note": "Zoë's “quoted” text\nand a tab\t", "n": [1, 2.5, None]}},
    {"actor_label": "", "detail": {"z": {"b": 1, "a": True}, "a": '}{","seq":'}, "target_id": "", "patient_id": ""},
    {"actor_label": "x" * 150, "detail": {}, "target_type": "referrals.referral", "target_id": "12"},
]


@pytest.mark.parametrize("fields", AWKWARD)
def test_the_canonical_form_splits_around_the_link(fields):
    event = {"at": dt.datetime(2026, 11, 28, 14, 0, 1, 5, tzinfo=dt.UTC), "actor_id": 7, "action": "test.link",
             "target_type": "", "target_id": "", "patient_id": "3", **fields}  # fmt: skip
    before, after = canonical_around_link(**event)
    whole = canonical(seq=41, prev_hash="ab" * 32, **event)
    assert (before + "ab" * 32 + SEQ_JOIN + "41" + after).encode() == whole


@pytest.mark.django_db
def test_events_appended_together_carry_the_hashes_verify_recomputes():
    with transaction.atomic(), audit_deferred():
        for fields in AWKWARD:
            audit_record(actor=None, action="test.link", actor_label=fields["actor_label"], detail=fields["detail"])
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.action for e in events][-3:] == ["test.link"] * 3
    previous = GENESIS
    for event in events:
        assert event.prev_hash == previous
        assert event.hash == event_hash(
            seq=event.seq, at=event.at, actor_id=event.actor_id, actor_label=event.actor_label, action=event.action,
            target_type=event.target_type, target_id=event.target_id, patient_id=event.patient_id,
            detail=event.detail, prev_hash=event.prev_hash,
        )  # fmt: skip
        previous = event.hash
    assert audit_verify().ok


@pytest.mark.django_db
def test_the_returned_event_is_the_stored_one():
    event = audit_record(actor=None, actor_label="tester", action="test.one", detail={"k": "v"})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.seq, stored.prev_hash, stored.hash, stored.at) == (event.seq, event.prev_hash, event.hash, event.at)
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_batch_longer_than_one_insert_links_across_the_statements():
    from refloop.accounts.audit import CHAIN_INSERT_MAX

    count = CHAIN_INSERT_MAX * 2 + 3
    with transaction.atomic(), audit_deferred():
        recorded = [audit_record(actor=None, action="test.batch", detail={"n": n}) for n in range(count)]
    stored = list(AuditEvent.objects.filter(action="test.batch").order_by("seq"))
    assert [e.detail["n"] for e in stored] == list(range(count))
    assert [e.seq for e in stored] == list(range(stored[0].seq, stored[0].seq + count))  # no gap, no fork
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(stored, stored[1:], strict=False))
    assert [(e.pk, e.seq, e.hash) for e in recorded] == [(e.pk, e.seq, e.hash) for e in stored]
    assert audit_verify().ok
