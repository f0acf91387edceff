"""The manager opens the dashboard on the demo practice, filters it by territory, and clicks a slipping source to
land on its page with the expected-vs-actual chart and the follow-up button."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from refloop import demo
from refloop.demo import DEMO_PASSWORD
from refloop.insights.models import SourceAlert
from refloop.referrals.models import Referral
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _slipping_alert_in_a_territory() -> SourceAlert:
    """The demo scan's slipping alert on a provider with a territory; one made through the model if the scan
    found none at this tiny scale (the evidence shaped as the scan writes it)."""
    found = (
        SourceAlert.objects.filter(kind="slipping", resolved_at__isnull=True, provider__territory__isnull=False)
        .select_related("provider__territory")
        .first()
    )
    if found:
        return found
    referral = Referral.objects.filter(referring_provider__territory__isnull=False).order_by("-received_at").first()
    today = timezone.localdate()
    weeks = [(today - dt.timedelta(weeks=n)).isoformat() for n in range(12, 0, -1)]
    return SourceAlert.objects.create(
        kind="slipping",
        provider=referral.referring_provider,
        since=today - dt.timedelta(weeks=6),
        usual_per_month=6.0,
        recent_per_month=1.0,
        drop=-0.83,
        confidence=0.97,
        evidence={"weeks": weeks, "actual": [2, 1, 2, 1, 2, 1, 0, 0, 1, 0, 0, 0], "expected": [1.4] * 12,
                  "statistic": 9.1, "threshold": 6.2},  # fmt: skip
        as_of=today,
    )


def test_the_manager_filters_by_territory_and_follows_a_slipping_source(new_page):
    demo.load(seed=7, scale="tiny")
    manager = get_user_model().objects.get(username="manager")
    TOTPDevice.objects.get_or_create(user=manager, confirmed=True, defaults={"name": "Phone"})
    alert = _slipping_alert_in_a_territory()
    provider = alert.provider
    territory = provider.territory

    page = new_page()
    log_in(page, "manager", DEMO_PASSWORD)
    page.goto("/insights/")
    expect(page.locator("h1")).to_have_text("Referral dashboard")
    expect(page.locator("#chart-trend[data-ready]")).to_have_count(1)  # plotly drew the trend from our static files
    all_received = int(page.locator("#figure-received .figure-value").inner_text().replace(",", ""))

    page.select_option("select[name=territory]", str(territory.pk))
    page.click("#dashboard-filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert f"territory={territory.pk}" in page.url
    expect(page.locator("select[name=territory]")).to_have_value(str(territory.pk))
    in_territory = int(page.locator("#figure-received .figure-value").inner_text().replace(",", ""))
    assert 0 < in_territory < all_received

    slipping = page.locator("#source-alerts li.alert-slipping", has_text=str(provider))
    expect(slipping).to_have_count(1)
    slipping.get_by_role("link", name=str(provider)).click()
    page.wait_for_load_state("networkidle")
    assert re.search(rf"/directory/providers/{provider.pk}/$", page.url)
    expect(page.locator("#source-alert-head")).to_contain_text("slipping")
    expect(page.locator("#expected-vs-actual[data-ready]")).to_have_count(1)
    expect(page.locator("#alert-follow-up-button")).to_be_visible()
