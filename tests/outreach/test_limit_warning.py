"""A liaison is warned once a physician's year reaches 80% of the limit; below it, nothing is said."""

from __future__ import annotations

import datetime as dt

import pytest

from refloop.outreach.compliance import Level
from refloop.outreach.models import OutreachSettings
from tests.outreach.factories import gift, office

pytestmark = pytest.mark.django_db
DAY = dt.date(2024, 4, 2)  # limit $507; 80% is $405.60


def test_below_80_percent_there_is_no_warning(users):
    doc = office(physicians=1).physicians[0]
    logged = gift(by=users["liaison"], to=doc, cost="405.59", date=DAY)
    assert logged.warnings == []
    assert logged.checks[0].level == Level.OK


def test_at_80_percent_the_liaison_is_warned_with_the_numbers(users):
    doc = office(physicians=1).physicians[0]
    gift(by=users["liaison"], to=doc, cost="400.00", date=DAY)
    logged = gift(by=users["liaison"], to=doc, cost="5.60", date=DAY)
    [warning] = logged.warnings
    assert warning.level == Level.WARN
    assert warning.percent == 80
    assert "$405.60 in 2024: 80.0% of the $507.00 limit" in warning.message


def test_the_warning_threshold_is_a_practice_setting(users):
    OutreachSettings.objects.update_or_create(pk=1, defaults={"warn_percent": 50})
    doc = office(physicians=1).physicians[0]
    logged = gift(by=users["liaison"], to=doc, cost="260.00", date=DAY)
    assert logged.warnings[0].level == Level.WARN


def test_the_lunch_form_preview_shows_the_warning_before_saving(users, client_as):
    place = office(physicians=2)
    gift(by=users["liaison"], to=place.physicians[0], cost="380.00", date=DAY)
    response = client_as("liaison").post(
        "/outreach/activities/preview/",
        {
            "kind": "lunch",
            "date": DAY.isoformat(),
            "practice": place.practice.pk,
            "providers": [p.pk for p in place.physicians],
            "cost": "60.00",
            "given_as": "item",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "$410.00" in page and "80.9%" in page
    assert page.count("level-warn") == 1
