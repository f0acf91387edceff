"""The manager's dashboard on the demo practice: its numbers are the referrals', filters narrow them, and every
number links to exactly the referrals it counts."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from refloop.directory.models import Territory
from refloop.insights.filters import add_months, default_period
from refloop.insights.models import RollupMember
from refloop.referrals.models import Referral
from refloop.referrals.workflow import State
from tests.conftest import shared_demo

pytestmark = pytest.mark.django_db


demo_loaded = shared_demo(seed=7)


@pytest.fixture
def practice(db, demo_loaded):
    """The tiny demo practice (seed 7), loaded once for this module; each test's writes are rolled back."""


@pytest.fixture
def client_as(practice):
    """A client logged in as one of the demo practice's logins (manager, admin, liaison, coordinator...)."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def login(username: str) -> Client:
        user = get_user_model().objects.get(username=username)
        device, _ = TOTPDevice.objects.get_or_create(user=user, confirmed=True, defaults={"name": "Test"})
        client = Client()
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # the second factor, as after a real login
        session.save()
        return client

    return login


def _period_referrals(start, end):
    from django.utils import timezone

    ids = [
        r.pk
        for r in Referral.objects.only("received_at")
        if start <= timezone.localdate(r.received_at).replace(day=1) <= end
    ]
    return Referral.objects.filter(pk__in=ids)


def _figure(html: str, slug: str) -> str:
    match = re.search(rf'id="figure-{slug}".*?class="figure-value" href="([^"]+)">([^<]+)</a>', html, re.S)
    assert match, f"no figure {slug}"
    return match.group(1).replace("&amp;", "&"), match.group(2)


def _drilled_ids(client, url: str) -> set[int]:
    ids: set[int] = set()
    page = 1
    while True:
        html = client.get(f"{url}&page={page}").content.decode()
        ids |= {int(n) for n in re.findall(r'href="/referrals/(\d+)/"', html)}
        if f"page={page + 1}" not in html:
            return ids
        page += 1


def test_the_manager_sees_the_period_counted_from_the_referrals(practice, client_as):
    start, end = add_months(default_period()[1], -11), default_period()[1]
    response = client_as("manager").get("/insights/", {"start": f"{start:%Y-%m}", "end": f"{end:%Y-%m}"})
    assert response.status_code == 200
    html = response.content.decode()
    referrals = _period_referrals(start, end)
    assert referrals.count() > 100
    _, received = _figure(html, "received")
    assert int(received.replace(",", "")) == referrals.count()
    _, seen = _figure(html, "seen")
    assert int(seen.replace(",", "")) == referrals.filter(seen_at__isnull=False).count()
    closed = referrals.filter(state=State.CLOSED, seen_at__isnull=False).count()
    assert f"{closed:,} of {referrals.filter(seen_at__isnull=False).count():,} seen patients" in html
    for chart in ("chart-trend", "chart-source-types", "chart-conversion", "chart-leakage", "chart-turnaround",
                  "chart-payers"):  # fmt: skip
        assert f'id="{chart}"' in html


def test_every_headline_number_drills_down_to_exactly_its_referrals(practice, client_as):
    client = client_as("manager")
    start, end = add_months(default_period()[1], -5), default_period()[1]
    html = client.get("/insights/", {"start": f"{start:%Y-%m}", "end": f"{end:%Y-%m}"}).content.decode()
    referrals = _period_referrals(start, end)
    url, value = _figure(html, "received")
    assert _drilled_ids(client, url) == set(referrals.values_list("pk", flat=True))
    url, value = _figure(html, "seen")
    assert _drilled_ids(client, url) == set(referrals.filter(seen_at__isnull=False).values_list("pk", flat=True))
    assert len(_drilled_ids(client, url)) == int(value.replace(",", ""))


def test_a_territory_filter_narrows_every_figure_to_its_sources(practice, client_as):
    territory = Territory.objects.order_by("name").first()
    start, end = add_months(default_period()[1], -11), default_period()[1]
    query = {"start": f"{start:%Y-%m}", "end": f"{end:%Y-%m}", "territory": territory.pk}
    html = client_as("manager").get("/insights/", query).content.decode()
    expected = _period_referrals(start, end).filter(referring_provider__territory=territory)
    _, received = _figure(html, "received")
    assert int(received.replace(",", "")) == expected.count() > 0
    assert expected.count() < _period_referrals(start, end).count()
    url, _ = _figure(html, "received")
    assert f"territory={territory.pk}" in url
    drilled = _drilled_ids(client_as("manager"), url)
    assert drilled == set(expected.values_list("pk", flat=True))


def test_a_month_point_of_the_trend_lists_that_months_referrals(practice, client_as):
    start, end = default_period()
    month = end
    url = "/insights/referrals/?" + urlencode(
        {"start": f"{start:%Y-%m}", "end": f"{end:%Y-%m}", "month": f"{month:%Y-%m}"}
    )
    drilled = _drilled_ids(client_as("manager"), url)
    assert drilled == set(_period_referrals(month, month).values_list("pk", flat=True))


def test_lost_reasons_drill_down_to_the_referrals_lost_for_that_reason(practice, client_as):
    start, end = add_months(default_period()[1], -11), default_period()[1]
    lost = _period_referrals(start, end).filter(state=State.LOST)
    assert lost.exists()
    reason = lost.first().lost_reason
    url = "/insights/referrals/?" + urlencode(
        {"start": f"{start:%Y-%m}", "end": f"{end:%Y-%m}", "measure": f"lost_{reason}"}
    )
    assert _drilled_ids(client_as("manager"), url) == set(lost.filter(lost_reason=reason).values_list("pk", flat=True))


def test_a_bad_filter_is_named_and_the_page_still_answers(practice, client_as):
    client = client_as("manager")
    response = client.get("/insights/", {"start": "2026-13", "territory": "999999"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "is not a month" in html
    assert "Select a valid choice" in html
    response = client.get("/insights/referrals/", {"measure": "profit"})
    assert response.status_code == 400
    assert "“profit” is not a figure of the dashboard" in response.content.decode()


def test_the_dashboard_figures_read_rollups_not_referrals(practice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from refloop.insights import selectors
    from refloop.insights.filters import Filters

    start, end = default_period()
    territory = Territory.objects.order_by("name").first()
    for values in ({}, {"territory": territory.pk}, {"territory": territory.pk, "urgency": "routine"}):
        with CaptureQueriesContext(connection) as queries:
            selectors.dashboard(Filters(start=start, end=end, values=values), report_target=2)
        table = Referral._meta.db_table
        assert not [q["sql"] for q in queries.captured_queries if f'"{table}"' in q["sql"]]
    assert RollupMember.objects.count() == Referral.objects.count()


def test_only_managers_and_admins_see_the_dashboard(practice, client_as):
    assert client_as("liaison").get("/insights/").status_code == 403
    assert client_as("coordinator").get("/insights/referrals/").status_code == 403
    assert client_as("admin").get("/insights/referrals/").status_code == 200
