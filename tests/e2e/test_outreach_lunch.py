"""A liaison on a phone logs a lunch with three physicians and two staff: the per-physician year totals move
as the cost is typed, and the one who crosses 80% of the Stark limit is flagged before and after saving."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from refloop.outreach.models import Activity, LedgerEntry, StarkLimit
from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE, log_in
from tests.outreach.factories import gift, office

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_liaison_logs_a_lunch_on_a_phone_and_sees_the_totals_move(users, new_page):
    year = timezone.localdate().year
    # The suite must not depend on the year it runs in: make sure this year has a figure on file.
    StarkLimit.objects.update_or_create(year=year, defaults={"amount": Decimal("535.00"), "source_note": "test"})
    place = office(physicians=3, staff=2, name="Darby Creek Family Practice", liaison=users["liaison"])
    near, *others = place.physicians
    gift(by=users["liaison"], to=near, cost="330.00")

    page = new_page(viewport=PHONE)
    log_in(page, "liaison", PASSWORD)
    page.goto("/outreach/activities/new/?kind=lunch")
    expect(page.locator("#id_kind")).to_have_value("lunch")
    page.fill("#practice_q", "darby")
    page.check(f"input[name=practice][value='{place.practice.pk}']")
    for person in place.physicians:
        page.check(f"input[name=providers][value='{person.pk}']")
    for contact in place.staff:
        page.check(f"input[name=staff][value='{contact.pk}']")

    def total(person):
        return page.locator(f"#ledger-preview li[data-physician='{person.pk}'] .year-total")

    expect(total(near)).to_have_text("$330.00")
    expect(total(others[0])).to_have_text("$0.00")
    expect(page.locator("#ledger-preview .ledger-warning")).to_have_count(0)

    page.fill("#id_cost", "300.00")
    expect(total(near)).to_have_text("$430.00")
    expect(total(others[0])).to_have_text("$100.00")
    expect(total(others[1])).to_have_text("$100.00")
    warning = page.locator(f"#ledger-preview li[data-physician='{near.pk}'] .ledger-warning")
    expect(warning).to_contain_text("80.4% of the $535.00 limit")
    expect(page.locator("#ledger-preview .ledger-warning")).to_have_count(1)

    page.fill("#id_purpose", "Lunch-and-learn: shoulder exam")
    page.click("#save-activity")
    expect(page).to_have_url(re.compile(r"/outreach/activities/\d+/$"))
    expect(page.locator(".flash-warning")).to_contain_text(near.display_name)
    expect(page.locator(f"#ledger tr[data-physician='{near.pk}'] .year-total")).to_have_text("$430.00")

    lunch = Activity.objects.get(kind="lunch")
    assert lunch.staff.count() == 2 and lunch.providers.count() == 3
    assert (
        sorted(LedgerEntry.objects.filter(activity=lunch).values_list("amount", flat=True)) == [Decimal("100.00")] * 3
    )
