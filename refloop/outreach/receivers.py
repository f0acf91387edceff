"""Outreach's answers to what happens elsewhere: a referral received may be a source's first or a milestone."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from refloop.referrals.signals import referral_event_committed

log = logging.getLogger(__name__)


@receiver(referral_event_committed, dispatch_uid="outreach.thank_you_on_receive")
def queue_thank_you(sender, *, event, referral, **kwargs) -> None:
    """Runs after the referral's transaction committed. A failure here is logged, never raised: the referral
    is already saved, and the coordinator who logged it must not see an error for a missing thank-you."""
    if event.action != "receive" or not referral.referring_provider_id:
        return
    from refloop.outreach.services import thank_you_queue

    try:
        thank_you_queue(referral=referral)
    except Exception:
        log.exception("could not queue the thank-you note for referral %s", referral.pk)
