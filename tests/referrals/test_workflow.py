"""The loop's state machine through the service layer: every allowed move works, every other is refused."""

import datetime as dt

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refloop.referrals.models import Referral, ReferralEvent
from refloop.referrals.services import referral_transition
from refloop.referrals.workflow import TRANSITIONS, State, TransitionRefused, available, transition_problem
from tests.referrals.factories import clinician, location, referral

pytestmark = pytest.mark.django_db


def payload(name: str) -> dict:
    return (
        {
            "appointment_at": timezone.now() + dt.timedelta(days=3),
            "location": location(),
            "clinician": clinician(),
            "reason": "Patient asked to wait",
            "follow_up": "Follow up with Dr X in 6 weeks; home exercises.",
            "lost_reason": "went_elsewhere",
        }
        if TRANSITIONS[name].required
        else {}
    )


def test_a_referral_walks_the_whole_loop_with_an_event_per_step(users):
    coordinator = users["coordinator"]
    item = referral(by=coordinator)
    steps = ["accept", "schedule", "mark_no_show", "schedule", "mark_seen", "send_report", "send_back"]
    for name in steps:
        item = referral_transition(referral=item, name=name, by=coordinator, data=payload(name))
    assert item.state == State.CLOSED
    assert item.closed_at is not None and item.due_at is None
    events = list(item.events.values_list("action", "from_state", "to_state"))
    assert events == [
        ("receive", "", "received"),
        ("accept", "received", "accepted"),
        ("schedule", "accepted", "scheduled"),
        ("mark_no_show", "scheduled", "no_show"),
        ("schedule", "no_show", "scheduled"),
        ("mark_seen", "scheduled", "seen"),
        ("send_report", "seen", "report_sent"),
        ("send_back", "report_sent", "closed"),
    ]
    assert all(e.by == coordinator for e in item.events.all())


def test_a_move_from_the_wrong_state_is_refused_with_the_reason(users):
    item = referral(by=users["coordinator"])
    with pytest.raises(TransitionRefused, match="received cannot be “Mark seen”"):
        referral_transition(referral=item, name="mark_seen", by=users["coordinator"])
    item.refresh_from_db()
    assert item.state == State.RECEIVED and item.events.count() == 1


def test_a_role_without_the_right_is_refused(users):
    item = referral(by=users["coordinator"])
    with pytest.raises(TransitionRefused, match="Your role may not"):
        referral_transition(referral=item, name="accept", by=users["liaison"])


def test_required_fields_are_named(users):
    item = referral(by=users["coordinator"])
    referral_transition(referral=item, name="accept", by=users["coordinator"])
    with pytest.raises(TransitionRefused, match="needs the appointment date and time, the location, the clinician"):
        referral_transition(referral=item, name="schedule", by=users["coordinator"], data={})


def test_a_clinician_owns_the_report_and_the_coordinator_gets_it_back(users):
    coordinator, doctor = users["coordinator"], users["clinician"]
    item = referral(by=coordinator)
    for name in ["accept", "schedule"]:
        data = payload(name) | ({"clinician": clinician(user=doctor)} if name == "schedule" else {})
        item = referral_transition(referral=item, name=name, by=coordinator, data=data)
    item = referral_transition(referral=item, name="mark_seen", by=coordinator)
    assert item.owner == doctor
    item = referral_transition(referral=item, name="send_report", by=doctor)
    assert item.owner == coordinator


def test_every_transition_table_entry_names_real_states_and_roles():
    for transition in TRANSITIONS.values():
        assert transition.sources and transition.target in State.values
        assert transition.roles


# Hypothesis: random sequences of attempted moves by random roles. After each attempt the referral is either
# in the transition's target state (allowed) or unchanged (refused), and the event log grows only on success.
ROLES = ["admin", "manager", "coordinator", "liaison", "clinician"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.tuples(st.sampled_from(sorted(TRANSITIONS)), st.sampled_from(ROLES)), min_size=1, max_size=12))
def test_random_sequences_obey_the_table(users, moves):
    item = referral(by=users["coordinator"])
    for name, role in moves:
        before = Referral.objects.get(pk=item.pk)
        events_before = ReferralEvent.objects.filter(referral=item).count()
        allowed = transition_problem(name, before.state, role) is None
        try:
            referral_transition(referral=item, name=name, by=users[role], data=payload(name))
        except TransitionRefused:
            assert not allowed, f"{role} was refused {name} from {before.state}"
            after = Referral.objects.get(pk=item.pk)
            assert (after.state, after.version) == (before.state, before.version)
            assert ReferralEvent.objects.filter(referral=item).count() == events_before
        else:
            assert allowed, f"{role} made {name} from {before.state}"
            after = Referral.objects.get(pk=item.pk)
            assert after.state == TRANSITIONS[name].target
            assert ReferralEvent.objects.filter(referral=item).count() == events_before + 1


def test_every_illegal_move_from_every_state_is_refused(users):
    """Exhaustive: for each state, each move not allowed from it is refused by the service."""
    coordinator = users["coordinator"]
    for state in State:
        for name, transition in TRANSITIONS.items():
            if state in transition.sources:
                continue
            item = referral(by=coordinator)
            Referral.objects.filter(pk=item.pk).update(state=state)
            with pytest.raises(TransitionRefused):
                referral_transition(referral=item, name=name, by=users["admin"], data=payload(name))
            assert Referral.objects.get(pk=item.pk).state == state


def test_available_moves_put_the_next_step_first():
    assert available(State.RECEIVED, "coordinator")[0].name == "accept"
    assert available(State.SEEN, "clinician")[0].name == "send_report"
    assert available(State.CLOSED, "admin") == []
