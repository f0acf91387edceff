"""The referral loop as one explicit state machine: every state, every allowed move, who may make it.

Pages, the API, FHIR, HL7 and importers all call `referrals.services.referral_transition`, which asks this
module whether the move is allowed; nothing else decides. Reading this file is reading the loop:

received -> accepted | declined
accepted -> scheduled | declined | lost
scheduled -> seen | no_show | cancelled | scheduled (rescheduled) | lost
no_show / cancelled -> scheduled (rescheduled) | closed (returned to the referrer unseen) | lost
seen -> report_sent -> closed (patient sent back to the referring provider)
declined / lost -> received (reopened by a manager)
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from refloop.accounts.roles import Role


class State(models.TextChoices):
    RECEIVED = "received", "Received"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    SCHEDULED = "scheduled", "Scheduled"
    NO_SHOW = "no_show", "No-show"
    CANCELLED = "cancelled", "Cancelled"
    SEEN = "seen", "Seen"
    REPORT_SENT = "report_sent", "Report sent"
    CLOSED = "closed", "Closed"
    LOST = "lost", "Lost"


OPEN_STATES = frozenset(
    {
        State.RECEIVED,
        State.ACCEPTED,
        State.SCHEDULED,
        State.NO_SHOW,
        State.CANCELLED,
        State.SEEN,
        State.REPORT_SENT,
    }
)
FINAL_STATES = frozenset({State.DECLINED, State.CLOSED, State.LOST})


class LostReason(models.TextChoices):
    WENT_ELSEWHERE = "went_elsewhere", "Went elsewhere"
    INSURANCE = "insurance", "Insurance"
    COULD_NOT_REACH = "could_not_reach", "Could not reach the patient"
    PATIENT_DECLINED = "patient_declined", "Patient declined"
    OTHER = "other", "Other"


A, M, C, K = Role.ADMIN, Role.MANAGER, Role.COORDINATOR, Role.CLINICIAN
STAFF = frozenset({A, M, C})


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    sources: frozenset[State]
    target: State
    roles: frozenset[Role]
    required: tuple[str, ...] = ()
    # The next action shown on the referral page as its one button, for the state this transition leaves from.
    primary: bool = False


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in [
        Transition("accept", "Accept", frozenset({State.RECEIVED}), State.ACCEPTED, STAFF | {K}, primary=True),
        Transition(
            "decline",
            "Decline",
            frozenset({State.RECEIVED, State.ACCEPTED}),
            State.DECLINED,
            STAFF | {K},
            required=("reason",),
        ),
        Transition(
            "schedule",
            "Schedule",
            frozenset({State.ACCEPTED, State.NO_SHOW, State.CANCELLED}),
            State.SCHEDULED,
            STAFF,
            required=("appointment_at", "location", "clinician"),
            primary=True,
        ),
        Transition(
            "reschedule",
            "Reschedule",
            frozenset({State.SCHEDULED}),
            State.SCHEDULED,
            STAFF,
            required=("appointment_at", "location", "clinician"),
        ),
        Transition("mark_seen", "Mark seen", frozenset({State.SCHEDULED}), State.SEEN, STAFF | {K}, primary=True),
        Transition("mark_no_show", "No-show", frozenset({State.SCHEDULED}), State.NO_SHOW, STAFF),
        Transition(
            "cancel",
            "Cancel appointment",
            frozenset({State.SCHEDULED}),
            State.CANCELLED,
            STAFF,
            required=("reason",),
        ),
        Transition(
            "send_report",
            "Record report sent",
            frozenset({State.SEEN}),
            State.REPORT_SENT,
            STAFF | {K},
            primary=True,
        ),
        Transition(
            "send_back",
            "Send patient back",
            frozenset({State.REPORT_SENT}),
            State.CLOSED,
            STAFF | {K},
            required=("follow_up",),
            primary=True,
        ),
        Transition(
            "return_to_referrer",
            "Return to referrer unseen",
            frozenset({State.NO_SHOW, State.CANCELLED}),
            State.CLOSED,
            STAFF,
            required=("reason",),
        ),
        Transition(
            "mark_lost",
            "Mark lost",
            frozenset({State.RECEIVED, State.ACCEPTED, State.SCHEDULED, State.NO_SHOW, State.CANCELLED}),
            State.LOST,
            STAFF,
            required=("lost_reason",),
        ),
        Transition(
            "reopen",
            "Reopen",
            frozenset({State.DECLINED, State.LOST}),
            State.RECEIVED,
            frozenset({A, M}),
            required=("reason",),
        ),
    ]
}


class TransitionRefused(Exception):
    """A move the loop does not allow; the message says why in words a coordinator understands."""


def transition_problem(name: str, state: str, role: str | None) -> str | None:
    """None when `role` may make move `name` from `state`, else the reason it may not."""
    transition = TRANSITIONS.get(name)
    if transition is None:
        return f"There is no step called {name!r}."
    current = State(state)
    if current not in transition.sources:
        allowed_from = ", ".join(sorted(s.label.lower() for s in transition.sources))
        label = transition.label
        return f"A referral that is {current.label.lower()} cannot be “{label}” (only when {allowed_from})."
    if role not in transition.roles:
        return f"Your role may not “{transition.label}” a referral."
    return None


def available(state: str, role: str | None) -> list[Transition]:
    """The moves open to `role` from `state`, the primary one first."""
    moves = [t for t in TRANSITIONS.values() if transition_problem(t.name, state, role) is None]
    return sorted(moves, key=lambda t: not t.primary)


NEXT_ACTION: dict[State, str] = {
    State.RECEIVED: "Contact the patient and triage",
    State.ACCEPTED: "Schedule the appointment",
    State.SCHEDULED: "See the patient",
    State.NO_SHOW: "Follow up the no-show",
    State.CANCELLED: "Reschedule or return to the referrer",
    State.SEEN: "Send the consult report",
    State.REPORT_SENT: "Send the patient back",
}
