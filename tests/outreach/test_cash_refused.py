"""Cash and cash equivalents are never allowed, whatever the amount and whoever logs it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from refloop.outreach.compliance import GivenAs
from refloop.outreach.models import Activity, LedgerEntry
from tests.outreach.factories import gift, office

pytestmark = pytest.mark.django_db


def test_a_gift_card_is_refused(users):
    doc = office(physicians=1).physicians[0]
    with pytest.raises(ValidationError) as refused:
        gift(by=users["manager"], to=doc, cost="25.00", given_as=GivenAs.CASH_EQUIVALENT, date=dt.date(2024, 2, 1))
    assert "gift cards may never be given" in " ".join(refused.value.messages)
    assert not Activity.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_gift_card_described_as_an_item_is_still_refused(users):
    doc = office(physicians=1).physicians[0]
    with pytest.raises(ValidationError, match="cash equivalents"):
        gift(by=users["liaison"], to=doc, cost="25.00", purpose="Starbucks gift card", date=dt.date(2024, 2, 1))


def test_cash_is_refused_even_with_a_compliance_override(users):
    doc = office(physicians=1).physicians[0]
    with pytest.raises(ValidationError, match="cash equivalents"):
        gift(
            by=users["admin"],
            to=doc,
            cost="10.00",
            given_as=GivenAs.CASH,
            override_reason="x",
            date=dt.date(2024, 2, 1),
        )


def test_a_book_is_an_item_and_is_recorded(users):
    doc = office(physicians=1).physicians[0]
    gift(by=users["liaison"], to=doc, cost="32.50", purpose="Netter's atlas", date=dt.date(2024, 2, 1))
    assert LedgerEntry.objects.get().item == "Netter's atlas"
