"""The demo's referrals: every queue filled, every history consistent, the same seed giving the same loop.

Both ways of writing the demo run on a reduced practice: "small" (recent referrals through the services, the
older history in bulk) and "large" (everything in bulk). Each is loaded once per module inside a transaction
that is rolled back at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import defaultdict

import pytest
from django.db import transaction
from django.db.models import Max
from django.test import override_settings
from django.utils import timezone
from faker import Faker

from refloop.accounts.models import AuditEvent
from refloop.demo import DemoContext, Scale, directory, frame, referrals
from refloop.directory.models import ReferringProvider
from refloop.lib.icd10 import normalize_icd10
from refloop.practice.models import ServiceLevels
from refloop.referrals.models import Patient, Referral, ReferralEvent
from refloop.referrals.workflow import OPEN_STATES, LostReason, State

pytestmark = pytest.mark.django_db

SEED = 31
REDUCED = Scale("small", years=1, referring_providers=60, referring_practices=25, referrals=800, activities=0)
FAST_HASHING = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclasses.dataclass
class Loaded:
    context: DemoContext
    now: dt.datetime
    first_load: list  # what an earlier load with the same seed wrote


def _context(scale: Scale, now: dt.datetime) -> DemoContext:
    fake = Faker("en_US")
    fake.seed_instance(SEED)
    context = DemoContext(seed=SEED, scale=scale, rng=random.Random(SEED), fake=fake)
    context.objects["now"] = now
    return context


def _load(scale: Scale, now: dt.datetime) -> DemoContext:
    context = _context(scale, now)
    for step in (frame.build, directory.build, referrals.build):
        step(context)
    return context


def _referral_rows() -> list:
    rows = Referral.objects.order_by("received_at", "patient__mrn").values_list(
        "received_at",
        "patient__mrn",
        "patient__last_name",
        "referring_provider__npi",
        "other_source__name",
        "reason",
        "urgency",
        "channel",
        "state",
        "owner__username",
        "due_at",
        "appointment_at",
        "lost_reason",
    )
    events = ReferralEvent.objects.order_by("referral__received_at", "referral__patient__mrn", "at").values_list(
        "referral__patient__mrn", "action", "at", "from_state", "to_state", "note"
    )
    return [list(rows), list(events)]


@pytest.fixture(scope="module", params=["small", "large"])
def demo(request, django_db_setup, django_db_blocker) -> Loaded:
    scale = dataclasses.replace(REDUCED, name=request.param)
    now = timezone.now().replace(microsecond=0)
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHING), transaction.atomic():
        with transaction.atomic():
            _load(scale, now)
            first_load = _referral_rows()
            transaction.set_rollback(True)
        yield Loaded(_load(scale, now), now, first_load)
        transaction.set_rollback(True)


def test_every_state_of_the_loop_appears(demo):
    assert set(Referral.objects.values_list("state", flat=True)) == set(State.values)


def test_every_open_queue_has_referrals(demo):
    open_states = set(Referral.objects.open().values_list("state", flat=True))
    assert open_states == OPEN_STATES


def test_every_open_referral_has_an_owner_and_a_due_time(demo):
    open_referrals = Referral.objects.open()
    assert open_referrals.count() > 20
    assert not open_referrals.filter(owner__isnull=True).exists()
    assert not open_referrals.filter(due_at__isnull=True).exists()
    assert not Referral.objects.exclude(state__in=OPEN_STATES).filter(due_at__isnull=False).exists()


def test_some_open_referrals_are_overdue_and_most_are_not(demo):
    overdue = Referral.objects.overdue(now=demo.now).count()
    assert 0 < overdue < Referral.objects.open().count() / 2


def test_every_history_runs_from_the_receipt_to_the_current_state(demo):
    chains = defaultdict(list)
    for referral_id, action, from_state, to_state, at in ReferralEvent.objects.order_by(
        "referral_id", "at", "pk"
    ).values_list("referral_id", "action", "from_state", "to_state", "at"):
        chains[referral_id].append((action, from_state, to_state, at))
    referrals_ = list(Referral.objects.values_list("pk", "state", "received_at", "last_event_at"))
    assert len(chains) == len(referrals_)
    for pk, state, received_at, last_event_at in referrals_:
        chain = chains[pk]
        assert chain[0][:3] == ("receive", "", State.RECEIVED) and chain[0][3] == received_at
        for before, after in zip(chain, chain[1:], strict=False):
            assert after[1] == before[2], (pk, chain)
            assert after[3] > before[3]
        assert chain[-1][2] == state and chain[-1][3] == last_event_at
        assert last_event_at <= demo.now


def test_the_same_seed_gives_the_same_referrals(demo):
    assert _referral_rows() == demo.first_load


def test_slipping_providers_send_fewer_referrals_lately_than_before(demo):
    slipping = demo.context.objects["slipping_providers"]
    assert slipping
    volume = demo.context.objects["provider_volume"]
    top = sorted(volume.values(), reverse=True)[: max(len(volume) // 10, 5)]
    assert all(volume[p.pk] >= top[-1] for p in slipping)
    mine = Referral.objects.filter(referring_provider__in=slipping)
    recent = mine.filter(received_at__gte=demo.now - dt.timedelta(days=90)).count() / 90
    before = (
        mine.filter(
            received_at__gte=demo.now - dt.timedelta(days=360), received_at__lt=demo.now - dt.timedelta(days=185)
        ).count()
        / 175
    )
    assert recent < 0.6 * before


def test_the_mix_is_an_orthopaedic_practices(demo):
    total = Referral.objects.count()
    assert 700 <= total <= 900
    assert Referral.objects.filter(other_source__isnull=False).exists()
    assert set(Referral.objects.filter(state=State.LOST).values_list("lost_reason", flat=True)) == {
        LostReason.WENT_ELSEWHERE,
        LostReason.INSURANCE,
        LostReason.COULD_NOT_REACH,
        LostReason.PATIENT_DECLINED,
    }
    assert ReferralEvent.objects.filter(action="mark_no_show").exists()
    routine = Referral.objects.filter(urgency="routine").count() / total
    assert 0.75 < routine < 0.92
    for codes in Referral.objects.values_list("diagnosis_codes", flat=True).distinct():
        assert codes and all(normalize_icd10(code) == code for code in codes)
    for patient in Patient.objects.order_by("?")[:25]:
        patient.full_clean()


def test_each_sources_last_referral_date_is_its_latest_referral(demo):
    latest = Referral.objects.filter(referring_provider__isnull=False).values("referring_provider")
    for provider_id, received_at in latest.annotate(last=Max("received_at")).values_list("referring_provider", "last"):
        provider = ReferringProvider.objects.get(pk=provider_id)
        assert provider.last_referral_on == timezone.localdate(received_at)


def test_recent_referrals_go_through_the_services_and_only_at_the_small_scale(demo):
    through_services = demo.context.objects["referrals_through_services"]
    created = AuditEvent.objects.filter(action="referral.create").count()
    assert created == through_services
    if demo.context.scale.name == "large":
        assert through_services == 0
    else:
        assert 50 < through_services < Referral.objects.count() / 2


@pytest.mark.parametrize("demo", ["small"], indirect=True)
def test_the_bulk_path_writes_what_the_services_write(demo):
    """The same plans written both ways give the same referrals and events, field for field."""
    context = demo.context
    levels = ServiceLevels.current()

    def plans() -> list:  # the same plans each time: a fresh context with the same seed, on the same practice
        fresh = _context(context.scale, demo.now)
        fresh.objects.update(context.objects)
        planned = referrals._Planner(fresh, levels, demo.now).plans()
        return [plan for index, plan in enumerate(planned) if plan.is_open or index % 12 == 0]

    def written(write) -> list:
        with transaction.atomic():
            ReferralEvent.objects.all().delete()
            Referral.objects.all().delete()
            Patient.objects.all().delete()
            write(plans())
            rows = _all_fields()
            transaction.set_rollback(True)
        return rows

    in_bulk = written(lambda planned: referrals._BulkWriter(levels, demo.now).write(planned))
    through_services = written(lambda planned: [referrals.write_with_services(plan) for plan in planned])
    assert len(in_bulk[0]) > 60
    assert in_bulk == through_services


def _all_fields() -> list:
    ignored = {"id", "patient", "created_at", "updated_at"}  # keys and timestamps differ between two writes
    fields = [f.attname for f in Referral._meta.concrete_fields if f.name not in ignored]
    patient = [f"patient__{f.attname}" for f in Patient._meta.concrete_fields if f.name not in ignored]
    rows = Referral.objects.order_by("received_at", "patient__mrn").values_list(*fields, *patient)
    event_fields = [f.attname for f in ReferralEvent._meta.concrete_fields if f.name not in {"id", "referral"}]
    events = ReferralEvent.objects.order_by("referral__received_at", "referral__patient__mrn", "at").values_list(
        "referral__patient__mrn", *event_fields
    )
    return [list(rows), list(events)]
