"""Logging a touch from the phone form: practice by type-ahead, attendees as checkboxes, a receipt, a
follow-up; planning one for later and marking it done; what the directory's timeline then shows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from refloop.outreach.models import Activity, ActivityStatus, LedgerEntry, OutreachTask, TaskStatus
from tests.outreach.factories import activity, gift, office

pytestmark = pytest.mark.django_db
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
DAY = dt.date(2024, 6, 3)  # a year with a CMS figure ($507), whatever year the suite runs in


def test_the_type_ahead_finds_the_practice_and_lists_its_people(client_as):
    place = office(physicians=2, others=1, staff=2, name="Big Walnut Family Practice")
    client = client_as("liaison")
    found = client.get("/outreach/activities/practices/", {"practice_q": "walnut"}).content.decode()
    assert f'value="{place.practice.pk}"' in found
    people = client.get("/outreach/activities/attendees/", {"practice": place.practice.pk}).content.decode()
    assert people.count('name="providers"') == 3 and people.count('name="staff"') == 2
    assert people.count("badge physician") == 2  # the nurse practitioner is not a physician under Stark


def test_a_liaison_logs_a_lunch_with_a_receipt_and_a_follow_up(users, client_as):
    place = office(physicians=2, staff=1)
    today = timezone.localdate()
    response = client_as("liaison").post(
        "/outreach/activities/new/",
        {
            "kind": "lunch",
            "date": DAY.isoformat(),
            "practice": place.practice.pk,
            "providers": [p.pk for p in place.physicians],
            "staff": [place.staff[0].pk],
            "cost": "84.50",
            "given_as": "item",
            "purpose": "Sandwiches for the in-service",
            "outcome": "Agreed to send knee MRIs to us first",
            "follow_up_title": "Send the new referral pad",
            "follow_up_due": (today + dt.timedelta(days=7)).isoformat(),
            "receipt": SimpleUploadedFile("receipt.jpg", JPEG, content_type="image/jpeg"),
        },
    )
    logged = Activity.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/outreach/activities/{logged.pk}/"
    assert (logged.status, logged.liaison, logged.cost) == (ActivityStatus.DONE, users["liaison"], Decimal("84.50"))
    assert set(logged.providers.all()) == set(place.physicians) and list(logged.staff.all()) == place.staff
    assert logged.receipt_content_type == "image/jpeg" and len(logged.receipt_sha256) == 64
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [Decimal("42.25"), Decimal("42.25")]
    task = OutreachTask.objects.get()
    assert (task.title, task.owner, task.activity) == ("Send the new referral pad", users["liaison"], logged)
    receipt = client_as("manager").get(f"/outreach/activities/{logged.pk}/receipt/")
    assert b"".join(receipt.streaming_content) == JPEG


def test_a_receipt_that_is_not_an_image_or_pdf_is_refused_and_nothing_is_saved(client_as):
    place = office(physicians=1)
    response = client_as("liaison").post(
        "/outreach/activities/new/",
        {
            "kind": "gift",
            "date": DAY.isoformat(),
            "practice": place.practice.pk,
            "providers": [place.physicians[0].pk],
            "cost": "20.00",
            "given_as": "item",
            "receipt": SimpleUploadedFile("receipt.pdf", b"<html>not a pdf</html>", content_type="application/pdf"),
        },
    )
    assert response.status_code == 200
    assert "is not a PDF, PNG, JPEG or TIFF file" in response.content.decode()
    assert not Activity.objects.exists()


def test_over_the_limit_the_form_says_who_and_a_manager_sees_the_override_box(users, client_as):
    place = office(physicians=1)
    doc = place.physicians[0]
    gift(by=users["liaison"], to=doc, cost="500.00", date=DAY)
    form = {
        "kind": "gift",
        "date": DAY.isoformat(),
        "practice": place.practice.pk,
        "providers": [doc.pk],
        "cost": "10.00",
        "given_as": "item",
    }
    refused = client_as("liaison").post("/outreach/activities/new/", form).content.decode()
    assert "over the" in refused and "Only a compliance role" in refused and 'id="override"' not in refused
    manager = client_as("manager").post("/outreach/activities/new/", form).content.decode()
    assert 'id="override"' in manager
    saved = client_as("manager").post("/outreach/activities/new/", form | {"override_reason": "Approved by compliance"})
    assert saved.status_code == 302
    assert Activity.objects.count() == 2


def test_a_visit_planned_for_next_week_is_planned_and_later_marked_done(users, client_as):
    place = office(physicians=1)
    next_week = timezone.localdate() + dt.timedelta(days=7)
    client = client_as("liaison")
    client.post(
        "/outreach/activities/new/",
        {
            "kind": "visit",
            "date": next_week.isoformat(),
            "practice": place.practice.pk,
            "given_as": "item",
            "start_time": "10:30",
            "purpose": "Introduce the new spine surgeon",
        },
    )
    planned = Activity.objects.get()
    assert planned.status == ActivityStatus.PLANNED and planned.start_time == dt.time(10, 30)
    edit = client.get(f"/outreach/activities/{planned.pk}/edit/?done=1").content.decode()
    assert 'value="done" selected' in edit
    assert f'value="{timezone.localdate().isoformat()}"' in edit  # done early: dated today
    client.post(
        f"/outreach/activities/{planned.pk}/edit/",
        {
            "kind": "visit",
            "date": timezone.localdate().isoformat(),
            "status": "done",
            "practice": place.practice.pk,
            "providers": [place.physicians[0].pk],
            "given_as": "item",
            "outcome": "Met Dr. and the office manager",
        },
    )
    planned.refresh_from_db()
    assert (planned.status, planned.outcome) == (ActivityStatus.DONE, "Met Dr. and the office manager")


def test_only_a_planned_activity_can_be_cancelled(users, client_as):
    place = office(physicians=1)
    planned = activity(by=users["liaison"], practice=place.practice, date=timezone.localdate() + dt.timedelta(days=2))
    done = activity(by=users["liaison"], practice=place.practice)
    client = client_as("liaison")
    client.post(f"/outreach/activities/{planned.activity.pk}/cancel/")
    client.post(f"/outreach/activities/{done.activity.pk}/cancel/")
    statuses = dict(Activity.objects.values_list("pk", "status"))
    assert statuses == {planned.activity.pk: ActivityStatus.CANCELLED, done.activity.pk: ActivityStatus.DONE}


def test_a_follow_up_is_marked_done_from_the_week(users, client_as):
    place = office(physicians=1)
    logged = activity(
        by=users["liaison"],
        practice=place.practice,
        follow_up_title="Drop off the MRI protocol",
        follow_up_due=timezone.localdate(),
    )
    task = OutreachTask.objects.get(activity=logged.activity)
    assert "Drop off the MRI protocol" in client_as("liaison").get("/outreach/week/").content.decode()
    response = client_as("liaison").post(f"/outreach/tasks/{task.pk}/done/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "done" in response.content.decode()
    task.refresh_from_db()
    assert (task.status, task.done_by) == (TaskStatus.DONE, users["liaison"])


def test_the_providers_timeline_shows_the_activity(users, client_as):
    place = office(physicians=1)
    activity(by=users["liaison"], practice=place.practice, providers=place.physicians, purpose="Coffee and bagels")
    page = client_as("liaison").get(f"/directory/providers/{place.physicians[0].pk}/").content.decode()
    assert "Lunch or in-service" in page and "Coffee and bagels" in page
