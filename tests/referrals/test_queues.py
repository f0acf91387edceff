"""The coordinator's work queues: which referral sits in which queue, whose, filtered, counted and ordered."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from refloop.accounts.roles import Role
from refloop.practice.models import Location, ServiceLevels
from refloop.referrals.models import Referral
from refloop.referrals.services import referral_log_contact, referral_transition
from refloop.referrals.workflow import TRANSITIONS
from tests.conftest import make_user
from tests.referrals.factories import clinician, location, referral

pytestmark = pytest.mark.django_db


def payload(name: str) -> dict:
    everything = {
        "appointment_at": timezone.now() + dt.timedelta(days=3),
        "location": location(),
        "clinician": clinician(),
        "reason": "Patient asked to wait",
        "follow_up": "Back to Dr Silvestri; recheck in 6 weeks.",
        "lost_reason": "went_elsewhere",
    }
    return {key: everything[key] for key in TRANSITIONS[name].required}


def walked(steps: list[str], *, by, **fields) -> Referral:
    item = referral(by=by, **fields)
    for name in steps:
        item = referral_transition(referral=item, name=name, by=by, data=payload(name))
    return item


def rows(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-referral="(\d+)"', response.content.decode())]


def tab_counts(response) -> dict[str, int]:
    html = response.content.decode()
    return {key: int(n) for key, n in re.findall(r'data-queue="(\w+)".*?<span class="tab-count">(\d+)</span>', html)}


@pytest.fixture
def loop(users):
    """One referral at every step of the loop, all the coordinator's, none stalled."""
    c = users["coordinator"]
    received = walked([], by=c)
    accepted = walked(["accept"], by=c)
    contacted = walked(["accept"], by=c)
    contacted = referral_log_contact(referral=contacted, by=c, note="Left a voicemail")
    return {
        "received": received,
        "accepted": accepted,
        "contacted": contacted,
        "scheduled": walked(["accept", "schedule"], by=c),
        "no_show": walked(["accept", "schedule", "mark_no_show"], by=c),
        "cancelled": walked(["accept", "schedule", "cancel"], by=c),
        "seen": walked(["accept", "schedule", "mark_seen"], by=c),
        "report_sent": walked(["accept", "schedule", "mark_seen", "send_report"], by=c),
        "closed": walked(["accept", "schedule", "mark_seen", "send_report", "send_back"], by=c),
        "declined": walked(["decline"], by=c),
        "lost": walked(["accept", "mark_lost"], by=c),
    }


EXPECTED = {
    "new": {"received", "accepted"},
    "to_schedule": {"contacted"},
    "upcoming": {"scheduled"},
    "no_show": {"no_show", "cancelled"},
    "report_due": {"seen"},
    "send_back": {"report_sent"},
    "stalled": set(),
    "open": {"received", "accepted", "contacted", "scheduled", "no_show", "cancelled", "seen", "report_sent"},
}


@pytest.mark.parametrize("queue", list(EXPECTED))
def test_each_queue_holds_exactly_its_referrals(queue, loop, client_as):
    response = client_as("coordinator").get("/referrals/", {"queue": queue})
    assert response.status_code == 200
    assert set(rows(response)) == {loop[name].pk for name in EXPECTED[queue]}


def test_the_tabs_count_each_queue(loop, client_as):
    counts = tab_counts(client_as("coordinator").get("/referrals/"))
    assert counts == {queue: len(names) for queue, names in EXPECTED.items()}


def test_a_referral_with_no_change_for_longer_than_the_service_level_is_stalled(users, client_as):
    levels = ServiceLevels.current()
    levels.stalled_after_days = 3
    levels.save()
    old = referral(by=users["coordinator"], received_at=timezone.now() - dt.timedelta(days=4))
    fresh = referral(by=users["coordinator"], received_at=timezone.now() - dt.timedelta(days=2))
    response = client_as("coordinator").get("/referrals/", {"queue": "stalled"})
    assert rows(response) == [old.pk]
    assert tab_counts(response)["stalled"] == 1
    assert set(rows(client_as("coordinator").get("/referrals/", {"queue": "new"}))) == {old.pk, fresh.pk}


def test_a_coordinator_sees_their_own_by_default_and_everyone_s_on_request(users, client_as):
    colleague = make_user("colleague", Role.COORDINATOR)
    mine = referral(by=users["coordinator"])
    theirs = referral(by=colleague)
    client = client_as("coordinator")
    assert rows(client.get("/referrals/")) == [mine.pk]
    assert set(rows(client.get("/referrals/", {"scope": "all"}))) == {mine.pk, theirs.pk}
    assert rows(client.get("/referrals/", {"scope": "mine"})) == [mine.pk]


def test_a_manager_sees_everyone_s_by_default(users, client_as):
    colleague = make_user("colleague", Role.COORDINATOR)
    items = {referral(by=users["coordinator"]).pk, referral(by=colleague).pk}
    response = client_as("manager").get("/referrals/")
    assert set(rows(response)) == items
    assert '<option value="all" selected>' in response.content.decode()


def test_a_clinician_s_own_queue_is_the_reports_waiting_on_them(users, client_as):
    doctor = clinician(user=users["clinician"])
    c = users["coordinator"]
    item = referral(by=c)
    for name in ["accept", "schedule", "mark_seen"]:
        data = payload(name) | ({"clinician": doctor} if name == "schedule" else {})
        item = referral_transition(referral=item, name=name, by=c, data=data)
    referral(by=c)
    response = client_as("clinician").get("/referrals/", {"queue": "open"})
    assert rows(response) == [item.pk]
    assert tab_counts(response)["report_due"] == 1


def test_the_location_and_urgency_filters_narrow_every_queue(users, client_as):
    c = users["coordinator"]
    north = Location.objects.create(name="North clinic")
    here = referral(by=c, location=north, urgency="urgent")
    referral(by=c, location=north, urgency="routine")
    referral(by=c, location=location(), urgency="urgent")
    client = client_as("coordinator")
    response = client.get("/referrals/", {"queue": "new", "location": north.pk, "urgency": "urgent"})
    assert rows(response) == [here.pk]
    assert tab_counts(response)["new"] == 1 and tab_counts(response)["open"] == 1
    assert len(rows(client.get("/referrals/", {"location": north.pk}))) == 2
    assert len(rows(client.get("/referrals/", {"urgency": "urgent"}))) == 2


def test_a_stale_filter_value_falls_back_instead_of_failing(users, client_as):
    item = referral(by=users["coordinator"])
    response = client_as("coordinator").get("/referrals/", {"queue": "nonsense", "location": 999, "urgency": "x"})
    assert response.status_code == 200
    assert rows(response) == [item.pk]


def test_overdue_referrals_come_first_and_say_by_how_much(users, client_as):
    c = users["coordinator"]
    now = timezone.now()
    later = referral(by=c)
    late = referral(by=c)
    soon = referral(by=c)
    Referral.objects.filter(pk=later.pk).update(due_at=now + dt.timedelta(days=3, hours=1))
    Referral.objects.filter(pk=late.pk).update(due_at=now - dt.timedelta(days=2, hours=1))
    Referral.objects.filter(pk=soon.pk).update(due_at=now + dt.timedelta(hours=5, minutes=10))
    response = client_as("coordinator").get("/referrals/")
    html = response.content.decode()
    assert rows(response) == [late.pk, soon.pk, later.pk]
    assert f'<tr data-referral="{late.pk}" class="overdue">' in html
    assert f'<tr data-referral="{soon.pk}">' in html
    assert "overdue by 2 days" in html and "due in 5 h" in html and "due in 3 days" in html


def test_the_report_due_queue_says_when_the_report_is_due(users, client_as):
    item = walked(["accept", "schedule", "mark_seen"], by=users["coordinator"])
    Referral.objects.filter(pk=item.pk).update(due_at=timezone.now() - dt.timedelta(hours=7, minutes=5))
    html = client_as("coordinator").get("/referrals/", {"queue": "report_due"}).content.decode()
    assert "overdue by 7 h" in html


def test_rows_show_name_and_birth_date_but_no_address_or_insurance(users, client_as):
    referral(
        by=users["coordinator"],
        patient_data={
            "first_name": "Mira",
            "last_name": "Quayle",
            "birth_date": dt.date(1961, 4, 9),
            "address_line1": "12 Elm Street",
            "payer": "Buckeye Health",
            "member_id": "ZX9981",
        },
    )
    html = client_as("coordinator").get("/referrals/").content.decode()
    assert "Mira Quayle" in html and "04/09/1961" in html
    assert "12 Elm Street" not in html and "Buckeye" not in html and "ZX9981" not in html


def test_the_queue_pages_fifty_rows_at_a_time(users, client_as):
    for _ in range(52):
        referral(by=users["coordinator"])
    client = client_as("coordinator")
    first = client.get("/referrals/")
    assert len(rows(first)) == 50 and "page 1 of 2" in first.content.decode()
    assert len(rows(client.get("/referrals/", {"page": 2}))) == 2


def test_the_queue_page_costs_the_same_queries_for_five_rows_or_fifty(users, client_as, django_assert_max_num_queries):
    for _ in range(50):
        referral(by=users["coordinator"])
    client = client_as("coordinator")
    client.get("/referrals/")  # warm the session and the service levels row
    # 9 for the page, 4 for its one audit record (savepoint, chain head, INSERT, release): the same for any size.
    with django_assert_max_num_queries(13):
        response = client.get("/referrals/")
    assert len(rows(response)) == 50


def test_an_htmx_filter_change_returns_only_the_tabs_and_rows(users, client_as):
    item = referral(by=users["coordinator"])
    response = client_as("coordinator").get("/referrals/", {"scope": "all"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert rows(response) == [item.pk] and "<html" not in html and 'class="tabs queue-tabs"' in html


def test_the_navigation_counts_my_open_and_overdue_referrals(users, client_as):
    c = users["coordinator"]
    first, _second = referral(by=c), referral(by=c)
    client = client_as("coordinator")
    assert re.search(
        r'Referrals <span class="nav-count" [^>]*>2<span class="sr-only"> open', client.get("/search/").content.decode()
    )
    Referral.objects.filter(pk=first.pk).update(due_at=timezone.now() - dt.timedelta(hours=1))
    html = client.get("/search/").content.decode()
    assert re.search(r'<span class="nav-count overdue" [^>]*>1<span class="sr-only"> overdue', html)


def test_a_manager_s_navigation_counts_the_practice_s_overdue_referrals(users, client_as):
    item = referral(by=users["coordinator"])
    Referral.objects.filter(pk=item.pk).update(due_at=timezone.now() - dt.timedelta(hours=1))
    html = client_as("manager").get("/search/").content.decode()
    assert re.search(r'<span class="nav-count overdue" [^>]*>1<', html)


def test_selected_referrals_are_assigned_to_a_coordinator_in_bulk(users, client_as):
    colleague = make_user("colleague", Role.COORDINATOR)
    c = users["coordinator"]
    picked = [referral(by=c), referral(by=c)]
    left = referral(by=c)
    response = client_as("manager").post(
        "/referrals/assign/",
        {"referral": [r.pk for r in picked], "coordinator": colleague.pk, "next": "/referrals/?queue=new&scope=all"},
    )
    assert response.status_code == 302 and response["Location"] == "/referrals/?queue=new&scope=all"
    for item in picked:
        item.refresh_from_db()
        assert item.coordinator == colleague and item.owner == colleague
        assert item.events.filter(action="assign", by=users["manager"]).exists()
    left.refresh_from_db()
    assert left.coordinator == c
    assert set(rows(client_as("coordinator").get("/referrals/"))) == {left.pk}


def test_a_bulk_assign_with_nothing_ticked_changes_nothing_and_says_why(users, client_as):
    c = users["coordinator"]
    item = referral(by=c)
    client = client_as("coordinator")
    response = client.post("/referrals/assign/", {"coordinator": c.pk}, follow=True)
    assert "Tick the referrals to assign first." in response.content.decode()
    assert item.events.count() == 1


def test_a_bulk_assign_never_redirects_off_the_site(users, client_as):
    c = users["coordinator"]
    item = referral(by=c)
    response = client_as("coordinator").post(
        "/referrals/assign/", {"referral": [item.pk], "coordinator": c.pk, "next": "https://evil.example/referrals/"}
    )
    assert response["Location"] == "/referrals/"


def test_a_liaison_is_refused_the_queues_and_the_bulk_assign(users, client_as):
    item = referral(by=users["coordinator"])
    client = client_as("liaison")
    assert client.get("/referrals/").status_code == 403
    response = client.post("/referrals/assign/", {"referral": [item.pk], "coordinator": users["coordinator"].pk})
    assert response.status_code == 403
    assert client_as("clinician").post("/referrals/assign/", {"referral": [item.pk]}).status_code == 403
    assert item.events.count() == 1
