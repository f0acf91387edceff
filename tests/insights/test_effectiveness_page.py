"""The liaison-effectiveness page: the estimate in words, "too thin to conclude" instead of a number on thin data,
spend against referrals with the sources that got spend and sent nothing, and each table as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from refloop.outreach.models import Activity, ActivityKind, LedgerEntry
from tests.insights.effectiveness_data import office, referrals_on
from tests.insights.test_effectiveness_did import END, START, plant

pytestmark = pytest.mark.django_db

QUERY = f"start={START}&end={END}"


def test_thin_data_reads_too_thin_to_conclude_and_shows_no_number(users, client_as):
    plant(users, treated=3)
    page = client_as("manager").get(f"/insights/effectiveness/?{QUERY}").content.decode()
    assert "Too thin to conclude." in page
    assert "3 events (at least 10 needed)" in page
    assert "referrals per practice in the next 90 days" not in page


def test_enough_data_reads_the_lift_and_exports_it(users, client_as):
    plant(users)
    client = client_as("manager")
    page = client.get(f"/insights/effectiveness/?{QUERY}").content.decode()
    assert "More referrals after." in page and "<strong>2.00</strong>" in page
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/insights/effectiveness/?{QUERY}&export=csv&table=overall").content.decode())
        )
    )
    assert rows[1][:5] == ["All visits and lunches", "12", "12", "84", "2.0"]
    assert rows[1][9:] == ["1.0", "0.0", "0.0", "0.0", "More referrals after"]
    assert 0 < float(rows[1][5]) <= 2 <= float(rows[1][6])
    assert "Read with care" not in page
    assert rows[2][0] == "In-person visit"
    assert rows[2][-1].startswith("Too thin to conclude: 6 events")
    assert f"/insights/scorecards/liaisons/{users['liaison'].pk}/?{QUERY}" in page.replace("&amp;", "&")
    events = list(
        csv.reader(
            io.StringIO(client.get(f"/insights/effectiveness/?{QUERY}&export=csv&table=events").content.decode())
        )
    )
    assert len(events) == 13
    assert events[-1][0] == "2026-02-01" and events[-1][4:7] == ["2", "4", "10"] and events[-1][-1] == "1.0"


def test_spend_against_referrals_flags_spend_with_nothing_back(users, client_as):
    generous, silent = office(), office()
    for source, cost in ((generous, "120.00"), (silent, "75.50")):
        practice, provider = source
        gift = Activity.objects.create(
            kind=ActivityKind.LUNCH, date=dt.date(2026, 3, 2), practice=practice, cost=Decimal(cost)
        )
        LedgerEntry.objects.create(
            physician=provider, activity=gift, year=2026, on=gift.date, amount=Decimal(cost), item="Lunch"
        )
    referrals_on(generous, [dt.date(2026, 3, 20)] * 4)
    response = client_as("manager").get(f"/insights/effectiveness/?{QUERY}&export=csv&table=spend_physicians")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Source", "Spend ($)", "Referrals", "Cost per referral ($)", "Spend and no referrals"]
    assert rows[1][1:] == ["120.00", "4", "30.00", "no"]
    assert rows[2][1:] == ["75.50", "0", "", "yes"]
    practices = client_as("manager").get(f"/insights/effectiveness/?{QUERY}&export=xlsx&table=spend_practices")
    assert practices["Content-Type"].startswith("application/vnd.openxmlformats")


def test_a_pre_trend_is_told_next_to_the_lift(users, client_as):
    plant(users, controls_earlier=4)
    page = client_as("manager").get(f"/insights/effectiveness/?{QUERY}").content.decode()
    assert "Read with care:" in page and "already changing differently" in page
