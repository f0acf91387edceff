"""Top, new and growing sources on the dashboard, read from the rollups, with and without filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from refloop.insights import selectors
from refloop.insights.filters import Filters, add_months
from tests.directory.factories import provider
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def _at(month: dt.date, day: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime(month.year, month.month, day, 10))


@pytest.fixture
def period():
    end = timezone.localdate().replace(day=1)
    end = add_months(end, -1)
    return add_months(end, -2), end


def test_new_growing_and_top_sources(users, period):
    start, end = period
    old_friend, newcomer, grower = provider(last_name="Old"), provider(last_name="New"), provider(last_name="Grow")
    by = users["coordinator"]
    referral(by=by, source=old_friend, received_at=_at(add_months(start, -20)))
    referral(by=by, source=old_friend, received_at=_at(start))
    for _ in range(2):
        referral(by=by, source=newcomer, received_at=_at(end), urgency="urgent")
    referral(by=by, source=grower, received_at=_at(add_months(start, -1)))
    for _ in range(4):
        referral(by=by, source=grower, received_at=_at(start, 12))

    filters = Filters(start=start, end=end)
    assert [s["id"] for s in selectors.new_sources(filters)] == [newcomer.pk]
    assert [(s["id"], s["received"], s["before"]) for s in selectors.growing_sources(filters)] == [(grower.pk, 4, 1)]
    assert [(s["id"], s["received"]) for s in selectors.top_sources(filters, "provider")] == [
        (grower.pk, 4), (newcomer.pk, 2), (old_friend.pk, 1),
    ]  # fmt: skip

    urgent = Filters(start=start, end=end, values={"urgency": "urgent"})  # read from the member rows
    assert [s["id"] for s in selectors.new_sources(urgent)] == [newcomer.pk]
    assert [(s["id"], s["received"]) for s in selectors.top_sources(urgent, "provider")] == [(newcomer.pk, 2)]
    assert selectors.growing_sources(urgent) == []
