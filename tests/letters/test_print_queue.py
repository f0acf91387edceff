"""Print and mail: letters for offices that want paper wait in a queue, print as one PDF, and are marked mailed."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from refloop.letters.models import Delivery, DeliveryStatus
from tests.directory.factories import provider
from tests.letters.factories import letterhead, only_rules
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db


def mailed_provider(n: int):
    return provider(
        last_name=f"Paper{n}",
        report_channel="mail",
        address_line1=f"{n} Main St",
        city="Dublin",
        state="OH",
        postal_code="43017",
    )


def test_the_print_batch_holds_every_waiting_letter_then_they_are_marked_mailed(users, client_as):
    letterhead()
    only_rules("receive")
    for n in (1, 2):
        referral(by=users["coordinator"], source=mailed_provider(n))
    queue = Delivery.objects.print_queue()
    assert queue.count() == 2
    client = client_as("coordinator")
    assert b'data-delivery="' in client.get("/letters/?queue=print").content

    batch = client.get("/letters/print/batch.pdf")
    assert batch["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(batch.content))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) == 2 and "1 Main St" in text and "2 Main St" in text

    response = client.post("/letters/print/mailed/", {"delivery": [d.pk for d in queue]})
    assert response.status_code == 302
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert Delivery.objects.print_queue().count() == 0


def test_thank_you_summaries_go_once_per_provider_and_quarter(users, client_as):
    import datetime as dt

    from django.utils import timezone

    from refloop.letters.models import Letter, LetterKind
    from refloop.letters.services import quarter_before

    start, end = quarter_before(timezone.localdate())
    source = mailed_provider(3)
    for _ in range(2):
        referral(
            by=users["coordinator"],
            source=source,
            received_at=timezone.make_aware(dt.datetime.combine(start + dt.timedelta(days=10), dt.time(10))),
        )
    client = client_as("manager")
    client.post("/letters/automation/summaries/")
    client.post("/letters/automation/summaries/")
    summary = Letter.objects.get(kind=LetterKind.THANK_YOU_SUMMARY)
    assert summary.provider == source and summary.period_start == start
    assert "the 2 patients you sent us" in summary.html
