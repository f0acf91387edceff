"""A drill-down list's total is the figure's own number from the rollups (no COUNT over the member rows), and it
is always exactly the number of referrals the list holds."""

from __future__ import annotations

import itertools
import re

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from refloop.directory.models import Territory
from refloop.insights import selectors
from refloop.insights.filters import Filters, add_months, default_period
from refloop.insights.models import RollupMember
from refloop.practice.models import Location
from tests.conftest import shared_demo

pytestmark = pytest.mark.django_db
REPORT_TARGET = 5


demo_loaded = shared_demo(seed=7)


@pytest.fixture
def practice(db, demo_loaded):
    """The tiny demo practice (seed 7), loaded once for this module; each test's writes are rolled back."""


def _year() -> Filters:
    end = default_period()[1]
    return Filters(start=add_months(end, -11), end=end)


def _drill(filters: Filters, **params) -> selectors.Drilldown:
    query = QueryDict(mutable=True)
    query.update({k: str(v) for k, v in params.items()})
    return selectors.drilldown_members(filters, query, report_target=REPORT_TARGET)


def test_every_figure_counts_exactly_the_rows_it_lists(practice):
    year = _year()
    territory = Territory.objects.order_by("name").first()
    location = Location.objects.order_by("pk").first()
    member = RollupMember.objects.filter(month__gte=year.start, payer__gt="").exclude(source_kind="provider").first()
    filter_sets = [
        year,
        Filters(start=year.start, end=year.end, values={"territory": territory.pk}),
        Filters(start=year.start, end=year.end, values={"location": location.pk, "urgency": "routine"}),
    ]
    figures = [{"measure": m} for m in [*selectors.MEASURE_FILTERS, "within_target"]] + [
        {"month": f"{year.end:%Y-%m}", "measure": "seen"},
        {"kind": member.source_kind},
        {"kind": "provider", "measure": "scheduled"},
        {"payer_is": member.payer, "measure": "report_sent"},
        {"payer_is": ""},
        *({"measure": m, "turnaround": i} for m, i in itertools.product(["report_sent", "seen", "received"], [0, 3])),
        {"measure": "contacted", "contact_bucket": 2},
        {"measure": "scheduled", "appointment_bucket": 1},
        {"measure": "scheduled", "appointment_bucket": 99},
    ]
    counted = 0
    for filters, figure in itertools.product(filter_sets, figures):
        drill = _drill(filters, **figure)
        assert drill.count is not None, figure
        assert drill.count == drill.rows.count(), (filters, figure)
        counted += drill.count
    assert counted > 1000  # the demo's year holds enough of each for the comparison to mean something


def test_a_list_the_rollups_cannot_count_is_counted_row_by_row(practice):
    year = _year()
    provider_id = RollupMember.objects.filter(month__gte=year.start).exclude(provider_id=0).first().provider_id
    for figure in (
        {"provider": provider_id},
        {"measure": "closed_loop", "turnaround": 2},  # a closed loop is not implied by a turnaround
        {"measure": "received", "turnaround": 2, "contact_bucket": 1},
    ):
        drill = _drill(year, **figure)
        assert drill.count is None, figure


def test_the_drilldown_page_shows_the_figure_without_counting_member_rows(practice, client):
    from django.contrib.auth import get_user_model
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = get_user_model().objects.get(username="manager")
    device, _ = TOTPDevice.objects.get_or_create(user=user, confirmed=True, defaults={"name": "Test"})
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    year = _year()
    expected = RollupMember.objects.filter(month__gte=year.start, month__lte=year.end, report_sent=True).count()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(
            "/insights/referrals/",
            {"start": f"{year.start:%Y-%m}", "end": f"{year.end:%Y-%m}", "measure": "report_sent"},
        )
    assert response.status_code == 200
    assert re.search(rf"\b{expected} referrals\b", response.content.decode())
    table = RollupMember._meta.db_table
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"] and table in q["sql"]]
