"""The scan opens one alert per changed source and kind, refreshes it while the change lasts, and resolves it
when the source recovers; steady sources raise nothing; a scan as of a past day sees only what that day saw."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from refloop.insights.models import SourceAlert
from refloop.insights.scan import alert_follow_up, alert_scan, last_referral_days, level_counts
from refloop.referrals.models import Referral
from tests.insights.alert_history import AS_OF, WEEKS, network, plant

pytestmark = pytest.mark.django_db


def _open(**source):
    return {a.kind: a for a in SourceAlert.objects.filter(resolved_at__isnull=True, **source)}


def test_it_opens_an_alert_for_each_changed_provider_and_practice_and_none_for_steady_ones():
    made = network()
    outcome = alert_scan(as_of=AS_OF)

    assert set(_open(provider=made["slipping"])) == {"slipping"}
    assert set(_open(provider=made["dormant"])) == {"dormant"}
    assert set(_open(provider=made["rising"])) == {"rising"}
    assert set(_open(practice=made["slipping_practice"])) == {"slipping"}
    assert not SourceAlert.objects.filter(provider__in=made["steady"]).exists()
    assert outcome.opened == SourceAlert.objects.count() == 6

    slipping = _open(provider=made["slipping"])["slipping"]
    assert AS_OF - dt.timedelta(weeks=12) <= slipping.since <= AS_OF - dt.timedelta(weeks=8)
    assert slipping.usual_per_month == pytest.approx(5.0 * 52 / 12, rel=0.15)
    assert slipping.recent_per_month < 0.45 * slipping.usual_per_month
    assert slipping.drop == pytest.approx(slipping.recent_per_month / slipping.usual_per_month - 1)
    assert 0.5 < slipping.confidence <= 1
    assert slipping.as_of == AS_OF
    assert len(slipping.evidence["weeks"]) == len(slipping.evidence["actual"]) == len(slipping.evidence["expected"])

    dormant = _open(provider=made["dormant"])["dormant"]
    assert dormant.since == AS_OF - dt.timedelta(weeks=8) - dt.timedelta(days=2)  # the day after the last referral
    assert dormant.recent_per_month == 0


def test_a_second_scan_refreshes_the_open_alerts_rather_than_adding_more():
    made = network()
    alert_scan(as_of=AS_OF)
    first = _open(provider=made["slipping"])["slipping"]
    outcome = alert_scan(as_of=AS_OF + dt.timedelta(days=1))
    assert outcome.opened == 0 and outcome.refreshed == 6
    again = _open(provider=made["slipping"])["slipping"]
    assert again.pk == first.pk and again.as_of == AS_OF + dt.timedelta(days=1)
    assert SourceAlert.objects.count() == 6


def test_a_dormant_source_that_sends_again_is_no_longer_dormant_and_the_record_is_kept(users):
    made = network()
    alert_scan(as_of=AS_OF)
    asked = alert_follow_up(alert=_open(provider=made["dormant"])["dormant"], by=users["manager"])
    later = AS_OF + dt.timedelta(weeks=6)
    for person in made["steady"]:  # the practice goes on as usual
        plant(person, [3] * 6, as_of=later)
    plant(made["dormant"], [4] * 6, as_of=later)  # and the silent provider is back to its usual
    alert_scan(as_of=later)
    dormant = SourceAlert.objects.get(provider=made["dormant"], kind="dormant")
    assert dormant.resolved_at is not None
    # Fourteen weeks at under half the usual rate still read as slipping: one open alert, the same follow-up.
    assert set(_open(provider=made["dormant"])) == {"slipping"}
    assert _open(provider=made["dormant"])["slipping"].follow_up_id == asked.follow_up_id


def test_an_alert_resolves_once_its_evidence_falls_back():
    made = network()
    alert_scan(as_of=AS_OF)
    later = AS_OF + dt.timedelta(weeks=26)  # half a year back at its usual two a week
    for person in made["steady"]:
        plant(person, [3] * 26, as_of=later)
    plant(made["rising"], [2] * 26, as_of=later)
    alert_scan(as_of=later)
    rising = SourceAlert.objects.get(provider=made["rising"], kind="rising")
    assert rising.resolved_at is not None
    assert not _open(provider=made["rising"])


def test_a_scan_as_of_a_past_day_ignores_referrals_received_after_it():
    made = network()
    before_the_drop = AS_OF - dt.timedelta(weeks=12)
    outcome = alert_scan(as_of=before_the_drop, save=False)
    assert "slipping" not in {f.kind for f in outcome.findings if f.source_id == made["slipping"].pk}
    assert SourceAlert.objects.count() == 0  # save=False writes nothing

    counts = level_counts(level="provider", as_of=before_the_drop, n_weeks=WEEKS)
    row = int(np.flatnonzero(counts.ids == made["dormant"].pk)[0])
    assert counts.counts[row, -1] > 0  # the dormant provider was still sending then
    assert counts.counts[row].sum() == Referral.objects.filter(
        referring_provider=made["dormant"], received_at__date__lte=before_the_drop
    ).count()
    last = last_referral_days(level="provider", ids=[made["dormant"].pk], as_of=before_the_drop)
    assert last[made["dormant"].pk] == before_the_drop - dt.timedelta(days=3)  # mid-week, not the later ones


def test_weeks_end_on_the_day_evaluated():
    made = network(steady=0)
    counts = level_counts(level="provider", as_of=AS_OF, n_weeks=WEEKS)
    row = int(np.flatnonzero(counts.ids == made["rising"].pk)[0])
    assert counts.counts[row].sum() == Referral.objects.filter(referring_provider=made["rising"]).count()
    shifted = level_counts(level="provider", as_of=AS_OF + dt.timedelta(days=4), n_weeks=WEEKS)
    row = int(np.flatnonzero(shifted.ids == made["rising"].pk)[0])
    # Four days later each planted mid-week day falls into the next week: the newest week is empty.
    assert shifted.counts[row, -1] == 0


def test_an_inactive_source_raises_no_alert():
    made = network()
    type(made["dormant"]).objects.filter(pk=made["dormant"].pk).update(is_active=False)  # retired
    alert_scan(as_of=AS_OF)
    assert not SourceAlert.objects.filter(provider=made["dormant"]).exists()
    assert SourceAlert.objects.filter(provider=made["slipping"]).exists()
