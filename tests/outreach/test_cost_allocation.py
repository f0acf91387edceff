"""A shared cost splits into parts that add up to it exactly, to the cent, and never through a float."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refloop.outreach.allocation import split_amount, split_cents, to_cents
from refloop.outreach.models import LedgerEntry, OutreachSettings
from tests.outreach.factories import activity, office

cents = st.integers(min_value=0, max_value=10_000_000)


@given(total=cents, weights=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=40))
def test_the_parts_sum_to_the_total_and_each_is_within_a_cent_of_its_share(total, weights):
    if sum(weights) == 0:
        weights = [*weights[:-1], 1]
    parts = split_cents(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact_times_whole = total * weight
        assert abs(part * whole - exact_times_whole) < whole  # |part - exact| < 1 cent


@given(total=cents, count=st.integers(min_value=1, max_value=60))
def test_an_equal_split_in_dollars_adds_up_exactly(total, count):
    amount = Decimal(total) / 100
    parts = split_amount(amount, count)
    assert sum(parts, Decimal("0")) == amount
    assert max(parts) - min(parts) <= Decimal("0.01")
    assert all(p == p.quantize(Decimal("0.01")) for p in parts)


def test_it_refuses_floats_and_fractions_of_a_cent():
    with pytest.raises(TypeError):
        to_cents(10.5)
    with pytest.raises(ValueError):
        to_cents(Decimal("10.005"))


@pytest.mark.django_db
def test_a_lunch_for_three_physicians_is_split_to_the_cent_with_the_odd_cent_on_a_physician(users):
    place = office(physicians=3, staff=2)
    logged = activity(
        by=users["liaison"],
        practice=place.practice,
        providers=place.physicians,
        staff=place.staff,
        cost="100.00",
        date=dt.date(2024, 5, 14),
    )
    amounts = sorted(LedgerEntry.objects.filter(activity=logged.activity).values_list("amount", flat=True))
    assert amounts == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert sum(amounts) == Decimal("100.00")
    assert set(LedgerEntry.objects.values_list("shared_by", flat=True)) == {3}


@pytest.mark.django_db
def test_when_the_policy_says_staff_share_the_meal_only_the_physicians_parts_reach_the_ledger(users):
    OutreachSettings.objects.update_or_create(pk=1, defaults={"staff_share_meal_cost": True})
    place = office(physicians=3, others=1, staff=2)
    logged = activity(
        by=users["liaison"],
        practice=place.practice,
        providers=place.physicians + place.others,
        staff=place.staff,
        cost="100.00",
        date=dt.date(2024, 5, 14),
    )
    entries = LedgerEntry.objects.filter(activity=logged.activity)
    assert entries.count() == 3  # the nurse practitioner and the staff are not physicians under Stark
    # 100.00 / 6 = 16.666...: four parts carry the odd cents, and the physicians come first.
    assert sorted(entries.values_list("amount", flat=True)) == [Decimal("16.67")] * 3
    assert set(entries.values_list("shared_by", flat=True)) == {6}
