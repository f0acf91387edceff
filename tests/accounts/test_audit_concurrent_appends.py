"""Several web workers appending at once must not fork the chain (two events claiming the same predecessor)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from refloop.accounts.audit import audit_record, audit_verify
from refloop.accounts.models import AuditEvent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers are PostgreSQL's case"),
]


def test_concurrent_writers_extend_one_chain():
    workers, each = 6, 15
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for n in range(each):
                with transaction.atomic():  # as a request would: the event inside the caller's transaction
                    audit_record(actor=None, actor_label=f"worker{worker}", action="test.concurrent", detail={"n": n})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = list(AuditEvent.objects.order_by("seq"))
    assert len(events) == workers * each
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(events)))
    assert len({e.prev_hash for e in events}) == len(events)  # no two events share a predecessor
    assert audit_verify().ok
