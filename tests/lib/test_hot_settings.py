"""The intake paths' per-process copies of the settings rows: shared reads, private copies, forgotten on change."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from refloop.lib import hot_settings
from refloop.practice.models import Holiday, Practice, ServiceLevels
from refloop.referrals import sla
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def test_a_second_read_within_the_ttl_costs_no_query_and_hands_out_a_copy():
    first = ServiceLevels.recent()
    with CaptureQueriesContext(connection) as queries:
        second = ServiceLevels.recent()
    assert len(queries) == 0
    second.report_days = 99  # a caller that changes its copy...
    assert ServiceLevels.recent().report_days == first.report_days  # ...does not change the next caller's


def test_a_saved_change_is_read_at_once_in_this_process():
    assert ServiceLevels.recent().report_days == 2
    levels = ServiceLevels.current()
    levels.report_days = 5
    levels.save()
    assert ServiceLevels.recent().report_days == 5
    Practice.objects.create(name="Lakeside Orthopaedics")
    assert Practice.recent().name == "Lakeside Orthopaedics"


def test_a_copy_older_than_the_ttl_is_read_again(monkeypatch):
    ServiceLevels.recent()
    ServiceLevels.objects.filter(pk=1).update(report_days=7)  # another process's change: no signal here
    assert ServiceLevels.recent().report_days == 2
    now = hot_settings.time.monotonic()
    monkeypatch.setattr(hot_settings.time, "monotonic", lambda: now + hot_settings.TTL_SECONDS + 0.1)
    assert ServiceLevels.recent().report_days == 7


def test_a_new_holiday_moves_the_next_intakes_due_time(users):
    # A Friday-afternoon routine referral is due the next business day: Monday, unless Monday is a holiday.
    friday = timezone.make_aware(dt.datetime(2026, 11, 20, 15, 0))
    made = referral(by=users["coordinator"], received_at=friday)
    assert timezone.localtime(made.due_at).date() == dt.date(2026, 11, 23)
    Holiday.objects.create(date=dt.date(2026, 11, 23), name="Practice closed")
    again = referral(by=users["coordinator"], received_at=friday)
    assert timezone.localtime(again.due_at).date() == dt.date(2026, 11, 24)


def test_the_default_owner_follows_the_settings_and_the_users(users):
    made = referral()  # nobody assigned, no default owner: the first active coordinator
    assert made.owner == users["coordinator"]
    levels = ServiceLevels.current()
    levels.default_owner = users["manager"]
    levels.save()
    assert sla.owner_for(referral()).pk == users["manager"].pk
    levels.default_owner = None
    levels.save()
    users["coordinator"].is_active = False
    users["coordinator"].save()
    assert sla.owner_for(referral()) != users["coordinator"]


def test_a_letter_rule_switched_off_stops_the_next_intakes_letter(users):
    from refloop.letters.models import Letter, LetterRule
    from refloop.letters.services import rules_save

    first = referral(by=users["coordinator"])
    assert Letter.objects.filter(referral=first).exists()  # the receipt acknowledgement, on by default
    rules_save(enabled_ids=set(LetterRule.objects.exclude(step="receive").values_list("pk", flat=True)), by=None)
    second = referral(by=users["coordinator"])
    assert not Letter.objects.filter(referral=second).exists()
