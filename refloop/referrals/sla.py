"""Owner and due time of a referral in each state, from the practice's service levels.

Every open referral has both: the queue it sits in, the person who must act, and the moment it becomes late.
"""

from __future__ import annotations

import datetime as dt

from refloop.lib.hot_settings import remembered
from refloop.practice.models import ServiceLevels
from refloop.referrals.models import Referral, Urgency
from refloop.referrals.workflow import State


def first_contact_due(levels: ServiceLevels, received_at: dt.datetime, urgency: str) -> dt.datetime:
    calendar = levels.calendar()
    if urgency == Urgency.STAT:
        return calendar.add_business_hours(received_at, levels.first_contact_hours_stat)
    days = levels.first_contact_days_urgent if urgency == Urgency.URGENT else levels.first_contact_days_routine
    return calendar.add_business_days(received_at, days)


def schedule_due(levels: ServiceLevels, since: dt.datetime, urgency: str) -> dt.datetime:
    days = {
        Urgency.STAT: levels.schedule_days_stat,
        Urgency.URGENT: levels.schedule_days_urgent,
    }.get(urgency, levels.schedule_days_routine)
    return levels.calendar().add_business_days(since, days)


def due_at(referral: Referral, *, now: dt.datetime, levels: ServiceLevels | None = None) -> dt.datetime | None:
    """When the next step of `referral` is due; None once the loop is finished."""
    levels = levels or ServiceLevels.recent()
    state = referral.state
    if state in (State.RECEIVED, State.ACCEPTED) and referral.first_contact_at is None:
        return first_contact_due(levels, referral.received_at, referral.urgency)
    if state in (State.RECEIVED, State.ACCEPTED):
        return schedule_due(levels, referral.first_contact_at, referral.urgency)
    if state == State.SCHEDULED:
        return referral.appointment_at
    if state in (State.NO_SHOW, State.CANCELLED):
        return levels.calendar().add_business_days(now, levels.follow_up_days)
    if state == State.SEEN:
        return levels.calendar().add_business_days(referral.seen_at or now, levels.report_days)
    if state == State.REPORT_SENT:
        return (referral.report_sent_at or now) + dt.timedelta(days=levels.send_back_days)
    return None


def owner_for(referral: Referral, *, levels: ServiceLevels | None = None):
    """Who must act next: the clinician writes the report; coordinators own every other step."""
    if referral.state == State.SEEN and referral.clinician_id and referral.clinician.user_id:
        return referral.clinician.user
    if referral.coordinator_id:
        return referral.coordinator
    levels = levels or ServiceLevels.recent()
    if levels.default_owner_id:
        return levels.default_owner
    from django.contrib.auth import get_user_model

    def first_coordinator():
        return get_user_model().objects.filter(role="coordinator", is_active=True).order_by("pk").first()

    # Every intake that nobody is assigned to asks (issue 8): remembered like the levels (any user's save forgets).
    return remembered("referrals.first_coordinator", first_coordinator)
