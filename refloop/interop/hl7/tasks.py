"""Background tasks run by `refloop worker` for HL7: status messages out (each only reads its InterfaceMessage
row and does what sending.py says; enqueued in the transaction that wrote the row), and the drain that makes
referrals of the inbound messages the listener queued (inbound.py; queued by the listener, at the worker's
start, and by a drain that ran out of time)."""

from __future__ import annotations

from django_tasks import task


@task()
def hl7_send(message_id: int) -> str:
    from refloop.interop.hl7.sending import outbound_attempt

    return outbound_attempt(message_id)


@task()
def hl7_lease_check(message_id: int, attempt: int) -> str:
    from refloop.interop.hl7.sending import outbound_lease_expired

    return outbound_lease_expired(message_id, attempt)


@task(priority=10)  # before the letters each new referral queues: the referrals first, while a burst lasts
def hl7_inbound_drain() -> str:
    from refloop.interop.hl7.inbound import inbound_drain

    return inbound_drain()
