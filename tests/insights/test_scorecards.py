"""Scorecards: a liaison's activities, cadence coverage and territory referrals; a clinician's referrals, patients
seen and report turnaround; who may see which card."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from refloop.directory.models import Territory, Tier
from refloop.insights.scorecards import Period, clinician_scorecard, liaison_scorecard
from refloop.outreach.models import Activity, ActivityKind, ActivityStatus
from refloop.practice.models import Clinician
from refloop.referrals.models import Referral
from tests.conftest import make_user
from tests.directory.factories import next_npi
from tests.insights.effectiveness_data import office, referrals_on, visit

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
PERIOD = Period(TODAY - dt.timedelta(days=89), TODAY)


def _assign(source, liaison, *, tier=None, territory=None):
    practice, provider = source
    practice.liaison, practice.tier, practice.territory = liaison, tier, territory
    practice.save()
    provider.liaison, provider.territory = (liaison if territory is None else None), territory
    provider.save()


def liaison_world(users):
    me, other = users["liaison"], make_user("second", "liaison")
    tier = Tier.objects.create(code="T30", label="Monthly", target_visit_days=30)
    seen_lately, slipping = office(), office()
    _assign(seen_lately, me, tier=tier)
    _assign(slipping, me, tier=tier)
    visit(seen_lately[0], TODAY - dt.timedelta(days=10), liaison=me)
    visit(slipping[0], TODAY - dt.timedelta(days=45), liaison=me, kind=ActivityKind.LUNCH)
    Activity.objects.create(kind=ActivityKind.CALL, date=TODAY - dt.timedelta(days=3), liaison=me)
    Activity.objects.create(
        kind=ActivityKind.VISIT, date=TODAY - dt.timedelta(days=4), liaison=me, status=ActivityStatus.CANCELLED
    )
    Activity.objects.create(
        kind=ActivityKind.VISIT, date=TODAY - dt.timedelta(days=5), liaison=me, status=ActivityStatus.PLANNED
    )
    Activity.objects.create(kind=ActivityKind.VISIT, date=TODAY - dt.timedelta(days=2), liaison=other)
    # A practice in a territory the liaison holds (not assigned to them directly) counts for the territory.
    north = Territory.objects.create(name="North", liaison=me)
    in_territory = office()
    _assign(in_territory, None, territory=north)
    theirs = office()
    _assign(theirs, other)
    recent, a_year_ago = TODAY - dt.timedelta(days=20), TODAY - dt.timedelta(days=365 + 20)
    referrals_on(seen_lately, [recent] * 3 + [a_year_ago] * 2)
    referrals_on(in_territory, [recent] * 2)
    referrals_on(theirs, [recent] * 7 + [a_year_ago] * 7)
    return me, other, seen_lately, slipping


def test_a_liaison_card_counts_activities_coverage_and_territory_referrals(users):
    me, _, _, slipping = liaison_world(users)
    card = liaison_scorecard(liaison=me, period=PERIOD)
    assert card.activities == {"visit": 1, "lunch": 1, "call": 1}
    assert card.planned_not_done == 1
    # Two practices and their two providers are assigned; only the practices have a cadence (their tier's).
    assert (card.assigned_practices, card.assigned_providers, card.with_cadence) == (2, 2, 2)
    assert [item.entry for item in card.overdue] == [slipping[0]]
    assert card.on_cadence_share == 0.5
    assert (card.referrals, card.referrals_last_year) == (5, 2)
    assert card.referral_change == pytest.approx(1.5)


def test_a_liaison_sees_only_their_own_card(users, client_as):
    me, other, _, _ = liaison_world(users)
    client = client_as("liaison")
    response = client.get("/insights/scorecards/")
    assert response.status_code == 302 and response["Location"] == f"/insights/scorecards/liaisons/{me.pk}/"
    page = client.get(f"/insights/scorecards/liaisons/{me.pk}/")
    assert page.status_code == 200 and "Liaison Tester" in page.content.decode()
    assert client.get(f"/insights/scorecards/liaisons/{other.pk}/").status_code == 404
    assert "export=csv" not in page.content.decode()  # exporting is insights.export: managers and admins
    assert client.get(f"/insights/scorecards/liaisons/{me.pk}/?export=csv&table=overdue").status_code == 403
    assert client.get("/insights/scorecards/clinicians/1/").status_code == 403
    assert client.get("/insights/effectiveness/").status_code == 403


def test_a_manager_sees_every_liaison_and_exports_the_table(users, client_as):
    me, other, _, _ = liaison_world(users)
    client = client_as("manager")
    page = client.get("/insights/scorecards/").content.decode()
    assert f"/insights/scorecards/liaisons/{me.pk}/" in page and f"/insights/scorecards/liaisons/{other.pk}/" in page
    assert client.get(f"/insights/scorecards/liaisons/{other.pk}/").status_code == 200
    query = f"start={PERIOD.start}&end={PERIOD.end}"
    response = client.get(f"/insights/scorecards/?{query}&export=csv&table=liaisons")
    rows = {row[0]: row for row in csv.reader(io.StringIO(response.content.decode()))}
    assert rows["Liaison Tester"][1:4] == ["3", "1", "1"]  # activities, visits, lunches
    assert rows["Liaison Tester"][8:11] == ["5", "2", "150"]
    assert rows["Second Tester"][8:10] == ["7", "7"]
    assert client.get(f"/insights/scorecards/?{query}&export=csv&table=nope").status_code == 400


def test_a_period_that_ends_before_it_starts_is_refused_with_a_message(client_as):
    page = client_as("manager").get("/insights/scorecards/?start=2026-05-01&end=2026-04-01")
    assert page.status_code == 200
    assert "The period ends before it starts." in page.content.decode()


def _referral(source, clinician, *, received, seen=None, reported=None):
    tz = timezone.get_current_timezone()

    def at(day):
        return dt.datetime.combine(day, dt.time(10, 0), tzinfo=tz) if day else None

    referrals_on(source, [received])
    Referral.objects.filter(pk=Referral.objects.latest("pk").pk).update(
        clinician=clinician, seen_at=at(seen), report_sent_at=at(reported)
    )


def test_a_clinician_card_counts_received_seen_and_business_day_turnaround(users, client_as):
    ortega = Clinician.objects.create(first_name="Ana", last_name="Ortega", credentials="MD", npi=next_npi())
    other = Clinician.objects.create(first_name="Bo", last_name="Lind", npi=next_npi())
    source = office()
    march = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    # Seen Monday 2 March, reported Wednesday 4 March: 2 business days. Seen Monday 9, reported Monday 16: 5.
    _referral(source, ortega, received=dt.date(2026, 2, 20), seen=dt.date(2026, 3, 2), reported=dt.date(2026, 3, 4))
    _referral(source, ortega, received=dt.date(2026, 3, 3), seen=dt.date(2026, 3, 9), reported=dt.date(2026, 3, 16))
    _referral(source, ortega, received=dt.date(2026, 3, 20))
    _referral(source, other, received=dt.date(2026, 3, 21))

    card = clinician_scorecard(clinician=ortega, period=march)
    assert (card.received, card.seen, card.reports) == (2, 2, 2)
    assert (card.median_days, card.p90_days, card.within_target) == (3.5, 5, 0.5)

    page = client_as("manager").get(f"/insights/scorecards/clinicians/{ortega.pk}/?start=2026-03-01&end=2026-03-31")
    assert "3.5" in page.content.decode() and "50%" in page.content.decode()
