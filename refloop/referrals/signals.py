"""Sent after a referral event is committed, so letters, thank-you notes and rollups follow each step.

Receivers run after the transaction commits: a letter is never queued for a step that was rolled back.
"""

from django.dispatch import Signal

referral_event_committed = Signal()  # kwargs: event (ReferralEvent), referral (Referral)
