"""The day's planned visits in a route order worked out offline from ZIP codes, the same every time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from refloop.outreach.models import ActivityKind
from refloop.outreach.routing import Stop, distance_km, route_order
from refloop.outreach.selectors import week_for
from refloop.practice.models import Practice
from tests.directory.factories import practice
from tests.outreach.factories import activity


def _stop(key, zip_code, time=None):
    return Stop(key=key, name=f"Office {key}", address="", postal_code=zip_code, start_time=time)


def test_nearest_neighbour_from_the_practice_over_known_centroids():
    stops = [_stop(1, "43015"), _stop(2, "43221"), _stop(3, "43065"), _stop(4, "43017")]
    # From Upper Arlington north (43220): Upper Arlington, then Dublin, Powell, and Delaware last.
    assert [s.key for s in route_order(stops, start_zip="43220")] == [2, 4, 3, 1]


def test_unknown_zips_fall_back_to_the_numeric_distance_and_blank_ones_go_last():
    assert distance_km("43220", "43221") < distance_km("43220", "43299") < distance_km("43220", "44101")
    stops = [_stop(1, ""), _stop(2, "44101"), _stop(3, "43299"), _stop(4, "43220-1234")]
    assert [s.key for s in route_order(stops, start_zip="43215")] == [4, 3, 2, 1]


def test_ties_go_to_the_earlier_time_and_the_order_is_stable():
    stops = [_stop(1, "43017", dt.time(14)), _stop(2, "43017", dt.time(9)), _stop(3, "43017")]
    assert [s.key for s in route_order(stops, start_zip="43017")] == [2, 1, 3]
    assert route_order(list(reversed(stops)), start_zip="43017") == route_order(stops, start_zip="43017")


@pytest.mark.django_db
def test_the_week_routes_the_days_planned_visits_from_the_practice_address(users, client_as):
    Practice.objects.create(name="Lakeside Orthopaedics", specialty="Orthopaedics", postal_code="43220")
    day = timezone.localdate() + dt.timedelta(days=1)
    far = practice(
        name="Delaware Family",
        location={"address_line1": "1 Sandusky St", "city": "Delaware", "state": "OH", "postal_code": "43015"},
    )
    near = practice(
        name="Arlington Internal Medicine",
        location={"address_line1": "2 Tremont Rd", "city": "Columbus", "state": "OH", "postal_code": "43221"},
    )
    for office in (far, near):
        activity(by=users["liaison"], kind=ActivityKind.VISIT, practice=office, date=day)
    activity(by=users["liaison"], kind=ActivityKind.CALL, practice=far, date=day)  # a call is not a stop
    week = week_for(liaison=users["liaison"], start=day, route_day=day)
    assert [stop.name for stop, _ in week.route] == ["Arlington Internal Medicine", "Delaware Family"]
    page = client_as("liaison").get(f"/outreach/week/?start={day.isoformat()}&day={day.isoformat()}").content.decode()
    assert page.index("Arlington Internal Medicine") < page.index("2 Tremont Rd") < page.index("1 Sandusky St")
