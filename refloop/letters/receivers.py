"""Automatic letters: each step of the loop queues the letters the practice switched on for it.

This listens to `post_save` of ReferralEvent rather than `referral_event_committed`: the letter and its
delivery must be written in the same transaction as the step (a crash after the commit must not lose the
letter, and a step rolled back must leave no letter). A savepoint keeps a letter problem from undoing the step:
the referral moves on, and the error is logged.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from refloop.referrals.models import ReferralEvent

log = logging.getLogger(__name__)


@receiver(post_save, sender=ReferralEvent, dispatch_uid="letters.queue_on_event")
def queue_letters(sender, instance: ReferralEvent, created: bool, raw: bool = False, **kwargs) -> None:
    if not created or raw:
        return
    from refloop.letters.services import event_letters_queue

    try:
        with transaction.atomic():
            event_letters_queue(event=instance, fresh=True)
    except Exception:
        log.exception("could not queue the letters for referral event %s", instance.pk)
