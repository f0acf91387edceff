import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from refloop.referrals.models import Referral
from refloop.referrals.workflow import State
from tests.conftest import PASSWORD
from tests.directory.factories import provider
from tests.e2e.conftest import PHONE, TABLET, log_in
from tests.referrals.factories import clinician, location

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def queue_rows(page, queue: str):
    page.goto(f"/referrals/?queue={queue}")
    return page.locator("#queue-rows tbody tr[data-referral]")


def test_a_coordinator_logs_a_faxed_referral_and_follows_it_through_the_queues(users, new_page):
    source = provider(first_name="Imogen", last_name="Castellanos", specialty="Family Medicine")
    for n in range(15):
        provider(first_name="Other", last_name=f"Provider{n:02d}")
    place, doctor = location(), clinician()
    page = new_page(viewport=TABLET)
    log_in(page, "coordinator", PASSWORD)

    page.goto("/referrals/new/")
    page.fill("#provider_q", "castel")
    choice = page.locator(f"input[name=referring_provider][value='{source.pk}']")
    expect(page.locator("#provider-list li")).to_have_count(2)  # the provider, and "None of these"
    choice.check()
    page.fill("#id_patient_last_name", "Quayle")
    page.fill("#id_patient_first_name", "Mira")
    page.fill("#id_patient_birth_date", "1961-04-09")
    page.fill("#id_patient_phone", "614-555-0190")
    page.fill("#id_reason", "Right knee pain; MRI shows a medial meniscus tear")
    page.fill("#id_diagnosis_codes", "M23.221")
    page.select_option("#id_urgency", "urgent")
    page.select_option("#id_location", str(place.pk))
    page.click("button:has-text('Log referral')")
    expect(page.locator("h1")).to_have_text("Mira Quayle")
    item = Referral.objects.get()
    expect(page.locator(".mainnav a[href='/referrals/'] .nav-count")).to_contain_text("1")

    expect(queue_rows(page, "new")).to_have_count(1)
    expect(page.locator(".queue-tabs a[data-queue=new] .tab-count")).to_have_text("1")
    expect(page.locator(".queue-tabs a[data-queue=upcoming] .tab-count")).to_have_text("0")
    page.click("text=Mira Quayle")
    expect(page.locator("#next-action h2")).to_have_text("Next: Contact the patient and triage")
    page.click("button[data-move=accept]")
    expect(page.locator("#referral-state")).to_have_text("Accepted")

    page.click("a[data-move=schedule]")  # the small form arrives in place (htmx)
    appointment = (timezone.localdate() + dt.timedelta(days=3)).isoformat() + "T10:30"
    page.fill("#id_move-appointment_at", appointment)
    page.select_option("#id_move-location", str(place.pk))
    page.select_option("#id_move-clinician", str(doctor.pk))
    page.click("#move-form button[type=submit]")
    expect(page.locator("#referral-state")).to_have_text("Scheduled")
    expect(queue_rows(page, "new")).to_have_count(0)
    expect(queue_rows(page, "upcoming")).to_have_count(1)

    page.click("text=Mira Quayle")
    page.click("button[data-move=mark_seen]")
    expect(page.locator("#referral-state")).to_have_text("Seen")
    rows = queue_rows(page, "report_due")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("due in")
    expect(queue_rows(page, "upcoming")).to_have_count(0)

    item.refresh_from_db()
    assert item.state == State.SEEN and item.seen_at is not None
    assert item.referring_provider == source and item.location == place and item.clinician == doctor
    assert (item.patient.first_name, item.patient.last_name, item.patient.birth_date) == (
        "Mira",
        "Quayle",
        dt.date(1961, 4, 9),
    )
    assert item.urgency == "urgent" and item.diagnosis_codes == ["M23.221"]
    assert timezone.localtime(item.appointment_at).strftime("%Y-%m-%dT%H:%M") == appointment
    assert list(item.events.values_list("action", flat=True)) == ["receive", "accept", "schedule", "mark_seen"]
    assert all(e.by == users["coordinator"] for e in item.events.all())


def test_the_intake_form_offers_the_patient_already_on_file_on_a_phone(users, new_page):
    from tests.referrals.factories import referral

    existing = referral(
        by=users["coordinator"],
        patient_data={"first_name": "Mira", "last_name": "Quayle", "birth_date": dt.date(1961, 4, 9)},
    ).patient
    source = provider(first_name="Theo", last_name="Marsh")
    page = new_page(viewport=PHONE)
    log_in(page, "coordinator", PASSWORD)
    page.goto("/referrals/new/")
    page.fill("#provider_q", "marsh")
    page.check(f"input[name=referring_provider][value='{source.pk}']")
    page.fill("#id_patient_last_name", "quayle")
    page.fill("#id_patient_birth_date", "1961-04-09")
    page.check(f"input[name=patient][value='{existing.pk}']")
    page.fill("#id_reason", "Second opinion on knee surgery")
    page.click("button:has-text('Log referral')")
    expect(page.locator("h1")).to_have_text("Mira Quayle")
    assert Referral.objects.filter(patient=existing).count() == 2
