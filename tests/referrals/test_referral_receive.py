import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.directory.models import OtherSource
from refloop.practice.models import Holiday, ServiceLevels
from refloop.referrals.models import Patient, Referral
from refloop.referrals.services import referral_log_contact, referral_receive, referral_transition
from refloop.referrals.workflow import State
from tests.directory.factories import practice, provider
from tests.referrals.factories import patient_data, referral

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


def test_it_logs_a_referral_with_owner_due_time_event_and_audit(users):
    source = provider()
    office = practice()
    from refloop.directory.services import affiliation_set

    affiliation_set(provider=source, practice=office, is_primary=True)
    received = dt.datetime(2026, 11, 20, 10, tzinfo=NY)  # a Friday
    result = referral_receive(
        patient_data=patient_data(mrn="A100"),
        referring_provider=source,
        reason="Knee",
        diagnosis_codes="m2551",
        received_at=received,
        by=users["coordinator"],
    )
    item = result.referral
    assert result.created and item.state == State.RECEIVED
    assert item.referring_practice == office
    assert item.diagnosis_codes == ["M25.51"]
    assert item.owner == users["coordinator"] and item.coordinator == users["coordinator"]
    assert item.due_at == dt.datetime(2026, 11, 23, 17, tzinfo=NY)  # first contact by Monday's close
    assert item.events.get().action == "receive"
    assert AuditEvent.objects.filter(action="referral.create", target_id=str(item.pk)).exists()
    source.refresh_from_db()
    assert source.last_referral_on == dt.date(2026, 11, 20)


def test_a_stat_referral_is_due_within_business_hours_and_skips_the_holiday(users):
    Holiday.objects.create(date=dt.date(2026, 11, 26), name="Thanksgiving Day")
    received = dt.datetime(2026, 11, 25, 16, 30, tzinfo=NY)
    item = referral(by=users["coordinator"], urgency="stat", received_at=received)
    assert item.due_at == dt.datetime(2026, 11, 27, 9, 30, tzinfo=NY)


def test_the_report_is_due_two_business_days_after_the_visit(users):
    Holiday.objects.create(date=dt.date(2026, 11, 26), name="Thanksgiving Day")
    from tests.referrals.factories import clinician, location

    item = referral(by=users["coordinator"], received_at=dt.datetime(2026, 11, 2, 9, tzinfo=NY))
    coordinator = users["coordinator"]
    referral_transition(referral=item, name="accept", by=coordinator, at=dt.datetime(2026, 11, 2, 10, tzinfo=NY))
    referral_transition(
        referral=item,
        name="schedule",
        by=coordinator,
        at=dt.datetime(2026, 11, 2, 11, tzinfo=NY),
        data={
            "appointment_at": dt.datetime(2026, 11, 25, 9, tzinfo=NY),
            "location": location(),
            "clinician": clinician(),
        },
    )
    seen = referral_transition(
        referral=item, name="mark_seen", by=coordinator, at=dt.datetime(2026, 11, 25, 10, tzinfo=NY)
    )
    assert seen.due_at == dt.datetime(2026, 11, 30, 17, tzinfo=NY)  # Fri 27th, then Mon 30th


def test_first_contact_moves_the_clock_to_scheduling(users):
    levels = ServiceLevels.current()
    levels.schedule_days_routine = 3
    levels.save()
    item = referral(by=users["coordinator"], received_at=dt.datetime(2026, 11, 16, 9, tzinfo=NY))
    contacted = referral_log_contact(
        referral=item, by=users["coordinator"], note="Left voicemail", at=dt.datetime(2026, 11, 16, 11, tzinfo=NY)
    )
    assert contacted.first_contact_at == dt.datetime(2026, 11, 16, 11, tzinfo=NY)
    assert contacted.due_at == dt.datetime(2026, 11, 19, 17, tzinfo=NY)


def test_the_same_idempotency_key_twice_gives_the_first_referral(users):
    first = referral(by=users["coordinator"], idempotency_key="fax-2026-11-27-0042")
    again = referral_receive(
        patient_data=patient_data(), referring_provider=provider(), reason="x", idempotency_key="fax-2026-11-27-0042"
    )
    assert again.created is False and again.referral.pk == first.pk
    assert Referral.objects.count() == 1


def test_exactly_one_primary_source_is_required(users):
    campaign = OtherSource.objects.create(kind="campaign", name="Search ads")
    with pytest.raises(ValidationError, match="exactly one primary source"):
        referral_receive(patient_data=patient_data(), reason="x")
    with pytest.raises(ValidationError, match="exactly one primary source"):
        referral_receive(patient_data=patient_data(), referring_provider=provider(), other_source=campaign, reason="x")
    item = referral_receive(patient_data=patient_data(), other_source=campaign, reason="Saw the ad").referral
    assert item.source_label == "Search ads (Marketing campaign)"
    assert Referral.objects.count() == 1


def test_bad_diagnosis_codes_and_future_dates_are_refused_and_nothing_is_written(users):
    with pytest.raises(ValidationError, match="not an ICD-10-CM code"):
        referral(diagnosis_codes="knee pain")
    with pytest.raises(ValidationError, match="in the future"):
        referral(received_at=timezone.now() + dt.timedelta(days=2))
    assert not Referral.objects.exists()
    assert not Patient.objects.exists()


def test_a_patient_with_the_same_mrn_is_reused_and_different_ones_are_never_merged(users):
    first = referral(patient_data=patient_data(first_name="Ann", last_name="Lee", mrn="M1"))
    same_mrn = referral(patient_data=patient_data(first_name="Anne", last_name="Lee", mrn="M1"))
    assert same_mrn.patient_id == first.patient_id
    same_name_dob = referral(
        patient_data={"first_name": "ann", "last_name": "LEE", "birth_date": first.patient.birth_date}
    )
    assert same_name_dob.patient_id == first.patient_id
    other_mrn = referral(
        patient_data={"first_name": "Ann", "last_name": "Lee", "birth_date": first.patient.birth_date, "mrn": "M2"}
    )
    assert other_mrn.patient_id != first.patient_id  # same name and DOB but another MRN: a different person
    assert Patient.objects.count() == 2
