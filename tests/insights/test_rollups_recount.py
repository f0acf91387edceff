"""Rollups always equal a recount from the referrals, whatever sequence of service calls changed them.

Hypothesis drives random sequences of the services that change what a referral is counted under or what became
of it (receive, every workflow step, contacts, assignment, provider edits and territory moves, patient payer
edits, provider merges and their reversal, deletion); after each sequence the member rows, every cuboid and the
per-source sums are compared with a recount built in Python from the referrals themselves.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refloop.directory import merge
from refloop.directory.models import OtherSource, OtherSourceKind, Territory
from refloop.directory.services import provider_update
from refloop.insights.models import ReferralRollup, RollupMember
from refloop.insights.rollups import rollup_catch_up, rollup_rebuild, rollup_sync_missing
from refloop.referrals import services
from refloop.referrals.models import Referral
from refloop.referrals.workflow import TRANSITIONS, LostReason, TransitionRefused, available
from tests.directory.factories import provider
from tests.insights.rollup_recount import assert_rollups_match_recount
from tests.referrals import factories as rf

pytestmark = pytest.mark.django_db

PAYERS = ["Medicare", "Aetna", ""]
SPECIALTIES = ["Family Medicine", "Internal Medicine", "Pediatrics"]

receive = st.tuples(
    st.just("receive"), st.integers(0, 3), st.sampled_from(["routine", "urgent", "stat"]),
    st.integers(0, 2), st.integers(0, 800),
)  # fmt: skip
step = st.tuples(st.just("step"), st.integers(0, 30), st.integers(0, 10), st.integers(0, 40))
contact = st.tuples(st.just("contact"), st.integers(0, 30), st.integers(1, 200))
assign = st.tuples(st.just("assign"), st.integers(0, 30))
edit = st.tuples(st.just("edit_provider"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2))
payer = st.tuples(st.just("payer"), st.integers(0, 30), st.integers(0, 2))
merge_op = st.tuples(st.just("merge"), st.integers(0, 2), st.integers(0, 2))
unmerge = st.tuples(st.just("unmerge"))
delete = st.tuples(st.just("delete"), st.integers(0, 30))
catch_up = st.tuples(st.just("catch_up"))  # a reader folds in what intakes and steps queued so far
operations = st.lists(
    st.one_of(receive, receive, step, step, step, contact, assign, edit, payer, merge_op, unmerge, delete, catch_up),
    min_size=1,
    max_size=14,
)


class _World:
    def __init__(self, users):
        self.users = users
        self.coordinator = users["coordinator"]
        self.territories = [Territory.objects.create(name=f"T{i}", liaison=users["liaison"]) for i in range(2)]
        self.providers = [
            provider(last_name=f"P{i}", specialty=SPECIALTIES[i], territory=self.territories[i % 2]) for i in range(3)
        ]
        self.other = OtherSource.objects.create(kind=OtherSourceKind.CAMPAIGN, name="Spring mailer")
        self.location = rf.location()
        self.clinician = rf.clinician()
        self.referrals: list[int] = []
        self.merges = []

    def referral(self, index: int) -> Referral | None:
        live = list(Referral.objects.filter(pk__in=self.referrals).order_by("pk"))
        return live[index % len(live)] if live else None

    def run(self, op: tuple) -> None:
        name, *args = op
        getattr(self, name)(*args)

    def receive(self, source: int, urgency: str, payer: int, minutes_ago: int) -> None:
        live = [p for p in self.providers if not type(p).objects.get(pk=p.pk).merged_into_id]
        fields = {"other_source": self.other} if source == 3 else {"source": live[source % len(live)]}
        if source == 3:
            r = services.referral_receive(
                patient_data=rf.patient_data(payer=PAYERS[payer]), other_source=self.other, reason="Hip pain",
                urgency=urgency, received_at=timezone.now() - dt.timedelta(days=minutes_ago // 20), by=self.coordinator,
            ).referral  # fmt: skip
        else:
            r = rf.referral(
                by=self.coordinator, urgency=urgency, patient_data=rf.patient_data(payer=PAYERS[payer]),
                received_at=timezone.now() - dt.timedelta(days=minutes_ago // 20), **fields,
            )  # fmt: skip
        self.referrals.append(r.pk)

    def step(self, index: int, choice: int, days: int) -> None:
        r = self.referral(index)
        if r is None:
            return
        moves = available(r.state, "manager")
        if not moves:
            return
        move = moves[choice % len(moves)]
        at = max(r.last_event_at, r.received_at) + dt.timedelta(hours=1 + days)
        at = min(at, timezone.now())
        data = {
            "appointment_at": r.received_at + dt.timedelta(days=days),
            "location": self.location,
            "clinician": self.clinician,
            "reason": "Because",
            "follow_up": "Continue physio",
            "lost_reason": list(LostReason.values)[days % len(LostReason.values)],
        }
        try:
            services.referral_transition(referral=r, name=move.name, by=self.users["manager"], data=data, at=at)
        except TransitionRefused:
            assert move.name in TRANSITIONS

    def contact(self, index: int, hours: int) -> None:
        r = self.referral(index)
        if r is not None and r.is_open:
            at = min(timezone.now(), r.received_at + dt.timedelta(hours=hours))
            services.referral_log_contact(referral=r, by=self.coordinator, note="Called", at=at)

    def assign(self, index: int) -> None:
        r = self.referral(index)
        if r is not None:
            services.referral_assign(referral=r, coordinator=self.users["manager"], by=self.coordinator)

    def edit_provider(self, index: int, territory: int, specialty: int) -> None:
        p = type(self.providers[0]).objects.get(pk=self.providers[index].pk)
        provider_update(
            provider=p,
            changes={"territory": self.territories[territory % 2] if territory < 2 else None,
                     "specialty": SPECIALTIES[specialty], "liaison": self.users["liaison"] if territory else None},
        )  # fmt: skip

    def payer(self, index: int, payer: int) -> None:
        r = self.referral(index)
        if r is not None:
            patient = r.patient
            patient.payer = PAYERS[payer]
            patient.save()

    def merge(self, keep: int, remove: int) -> None:
        model = type(self.providers[0])
        a, b = (model.objects.get(pk=self.providers[i].pk) for i in (keep, remove))
        with contextlib.suppress(merge.MergeRefused):
            self.merges.append(merge.provider_merge(keep=a, remove=b, by=self.users["manager"]))

    def unmerge(self) -> None:
        if self.merges:
            with contextlib.suppress(merge.MergeRefused):
                merge.merge_reverse(merge=self.merges.pop(), by=self.users["manager"])

    def delete(self, index: int) -> None:
        r = self.referral(index)
        if r is not None:
            r.delete()

    def catch_up(self) -> None:
        rollup_catch_up()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_rollups_equal_a_recount_after_any_sequence_of_changes(users, ops):
    with transaction.atomic():
        world = _World(users)
        for op in ops:
            world.run(op)
        assert_rollups_match_recount()
        transaction.set_rollback(True)


def test_a_rebuild_gives_the_same_rollups_as_the_changes_did(users):
    world = _World(users)
    for op in [("receive", 0, "routine", 0, 100), ("receive", 1, "urgent", 1, 0), ("receive", 3, "stat", 2, 50)]:
        world.run(op)
    for i in range(6):
        world.run(("step", i % 3, 0, 3))
    world.run(("catch_up",))
    before = sorted(ReferralRollup.objects.values_list("cuboid", "month", "source_kind", "payer", "received", "seen"))
    assert rollup_rebuild() == 3
    after = sorted(ReferralRollup.objects.values_list("cuboid", "month", "source_kind", "payer", "received", "seen"))
    assert before == after
    assert_rollups_match_recount()


def test_referrals_written_in_bulk_are_added_by_sync_missing(users):
    world = _World(users)
    world.run(("receive", 0, "routine", 0, 100))
    RollupMember.objects.all().delete()
    ReferralRollup.objects.all().delete()
    from refloop.insights.models import SourceRollup

    SourceRollup.objects.all().delete()
    assert rollup_sync_missing() == 1
    assert_rollups_match_recount()
