"""Background tasks run by `refloop worker` (django-tasks, database backend). Each only reads its Delivery
row and does what delivery.py says; enqueueing happens in the transaction that wrote the row."""

from __future__ import annotations

from django_tasks import task


@task()
def delivery_send(delivery_id: int) -> str:
    from refloop.letters.delivery import delivery_attempt

    return delivery_attempt(delivery_id)


@task()
def delivery_lease_check(delivery_id: int, attempt: int) -> str:
    from refloop.letters.delivery import delivery_lease_expired

    return delivery_lease_expired(delivery_id, attempt)
