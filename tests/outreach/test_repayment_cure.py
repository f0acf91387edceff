"""The 50% repayment cure: an overage of up to half the limit, repaid in full by the earlier of the year's
end and 180 days after receipt, at most once every three years per physician."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from refloop.accounts.models import AuditEvent
from refloop.outreach.compliance import physician_year, repayment_record
from refloop.outreach.models import Repayment
from tests.outreach.factories import gift, office

pytestmark = pytest.mark.django_db
REASON = "Physician agreed to repay the excess"


def _over(users, doc, *, year: int, over_by: str, on: dt.date | None = None):
    limits = {2021: "429.00", 2022: "452.00", 2023: "489.00", 2024: "507.00"}
    gift(by=users["liaison"], to=doc, cost=limits[year], date=dt.date(year, 1, 10))
    gift(by=users["manager"], to=doc, cost=over_by, date=on or dt.date(year, 3, 1), override_reason=REASON)


def test_an_overage_repaid_in_time_is_cured_and_audited(users):
    doc = office(physicians=1).physicians[0]
    _over(users, doc, year=2024, over_by="60.00")
    repayment = repayment_record(
        physician=doc, year=2024, amount=Decimal("60.00"), repaid_on=dt.date(2024, 5, 1), by=users["manager"]
    )
    assert repayment.received_on == dt.date(2024, 3, 1)  # the item that took the total over
    assert "cured by repayment" in physician_year(doc, 2024).status
    assert AuditEvent.objects.filter(action="compliance.repayment").count() == 1


def test_an_overage_above_half_the_limit_cannot_be_cured(users):
    doc = office(physicians=1).physicians[0]
    _over(users, doc, year=2024, over_by="253.51")  # half of $507 is $253.50
    with pytest.raises(ValidationError, match="more than 50% of the limit"):
        repayment_record(
            physician=doc, year=2024, amount=Decimal("253.51"), repaid_on=dt.date(2024, 4, 1), by=users["admin"]
        )


def test_the_repayment_must_come_by_the_earlier_of_year_end_and_180_days(users):
    doc = office(physicians=1).physicians[0]
    _over(users, doc, year=2024, over_by="10.00", on=dt.date(2024, 9, 1))
    with pytest.raises(ValidationError, match="Dec 31, 2024"):
        repayment_record(
            physician=doc, year=2024, amount=Decimal("10.00"), repaid_on=dt.date(2025, 1, 5), by=users["admin"]
        )
    other = office(physicians=1).physicians[0]
    _over(users, other, year=2024, over_by="10.00", on=dt.date(2024, 1, 15))
    with pytest.raises(ValidationError, match="Jul 13, 2024"):
        repayment_record(
            physician=other, year=2024, amount=Decimal("10.00"), repaid_on=dt.date(2024, 8, 1), by=users["admin"]
        )


def test_the_whole_excess_must_be_repaid(users):
    doc = office(physicians=1).physicians[0]
    _over(users, doc, year=2024, over_by="40.00")
    with pytest.raises(ValidationError, match=r"whole excess, \$40.00"):
        repayment_record(
            physician=doc, year=2024, amount=Decimal("39.99"), repaid_on=dt.date(2024, 4, 1), by=users["admin"]
        )


def test_the_cure_is_available_once_every_three_years(users):
    doc = office(physicians=1).physicians[0]
    _over(users, doc, year=2021, over_by="20.00")
    repayment_record(
        physician=doc, year=2021, amount=Decimal("20.00"), repaid_on=dt.date(2021, 4, 1), by=users["admin"]
    )
    _over(users, doc, year=2023, over_by="20.00")
    with pytest.raises(ValidationError, match="once every three years"):
        repayment_record(
            physician=doc, year=2023, amount=Decimal("20.00"), repaid_on=dt.date(2023, 4, 1), by=users["admin"]
        )
    _over(users, doc, year=2024, over_by="20.00")
    repayment_record(
        physician=doc, year=2024, amount=Decimal("20.00"), repaid_on=dt.date(2024, 4, 1), by=users["admin"]
    )
    assert list(Repayment.objects.order_by("year").values_list("year", flat=True)) == [2021, 2024]


def test_only_a_compliance_role_records_a_repayment(users, client_as):
    doc = office(physicians=1).physicians[0]
    _over(users, doc, year=2024, over_by="20.00")
    with pytest.raises(PermissionDenied):
        repayment_record(
            physician=doc, year=2024, amount=Decimal("20"), repaid_on=dt.date(2024, 4, 1), by=users["liaison"]
        )
    url = f"/outreach/compliance/2024/physicians/{doc.pk}/repayment/"
    form = {"amount": "20.00", "repaid_on": "2024-04-01"}
    assert client_as("liaison").post(url, form).status_code == 403
    assert client_as("manager").post(url, form).status_code == 302
    assert Repayment.objects.get().recorded_by == users["manager"]
