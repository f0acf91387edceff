"""Intake from a faxed referral: source, patient and request in one form, with duplicates and double submits."""

import datetime as dt
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.directory.models import OtherSource, OtherSourceKind, ReferringProvider
from refloop.referrals.models import Attachment, Patient, Referral
from refloop.referrals.services import referral_transition
from refloop.referrals.workflow import State
from tests.directory.factories import provider
from tests.referrals.factories import location, patient_data, referral
from tests.referrals.test_referral_page import small_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.STORAGES = settings.STORAGES | {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}}
    }


def fax(**fields) -> dict:
    """The form as a coordinator fills it from a faxed referral."""
    received = timezone.localtime() - dt.timedelta(minutes=20)
    return {
        "idempotency_key": uuid.uuid4().hex,
        "patient_first_name": "Mira",
        "patient_last_name": "Quayle",
        "patient_birth_date": "1961-04-09",
        "patient_sex": "F",
        "patient_phone": "614-555-0190",
        "patient_payer": "Buckeye Health",
        "patient_member_id": "ZX9981",
        "reason": "Right knee pain; MRI shows a medial meniscus tear",
        "diagnosis_codes": "m23.221, S83.241A",
        "urgency": "urgent",
        "received_at": received.strftime("%Y-%m-%dT%H:%M"),
        "channel": "fax",
        "location": location().pk,
        "authorization_number": "AUTH-77",
        "visits_approved": "3",
        "notes": "Faxed from the front desk",
    } | fields


def test_the_form_opens_with_a_fresh_idempotency_key_and_now_as_the_received_time(client_as):
    client = client_as("coordinator")
    first, second = client.get("/referrals/new/").content.decode(), client.get("/referrals/new/").content.decode()
    keys = [re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html).group(1) for html in (first, second)]
    assert keys[0] != keys[1]
    assert f'value="{timezone.localtime():%Y-%m-%dT}' in first
    assert '<option value="fax" selected>' in first


def test_it_creates_the_referral_and_a_new_patient(users, client_as):
    source = provider(last_name="Castellanos")
    response = client_as("coordinator").post("/referrals/new/", fax(referring_provider=source.pk))
    item = Referral.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/referrals/{item.pk}/"
    patient = item.patient
    assert (patient.first_name, patient.last_name, patient.birth_date) == ("Mira", "Quayle", dt.date(1961, 4, 9))
    assert (patient.sex, patient.phone, patient.payer, patient.member_id) == (
        "F",
        "614-555-0190",
        "Buckeye Health",
        "ZX9981",
    )
    assert item.referring_provider == source and item.state == State.RECEIVED
    assert item.diagnosis_codes == ["M23.221", "S83.241A"]
    assert (item.urgency, item.channel, item.location, item.authorization_number) == (
        "urgent",
        "fax",
        location(),
        "AUTH-77",
    )
    assert item.visits_approved == 3 and item.notes == "Faxed from the front desk"
    assert item.coordinator == users["coordinator"] and item.owner == users["coordinator"]
    assert timezone.localtime(item.received_at).strftime("%Y-%m-%dT%H:%M") == fax()["received_at"]
    assert item.events.get().action == "receive"


def test_an_existing_patient_picked_from_the_candidates_is_used(users, client_as):
    existing = referral(by=users["coordinator"], patient_data=patient_data(last_name="Quayle", mrn="A-1")).patient
    data = fax(referring_provider=provider().pk, patient=existing.pk)
    for name in ("patient_first_name", "patient_last_name", "patient_birth_date"):
        data[name] = ""
    response = client_as("coordinator").post("/referrals/new/", data)
    assert response.status_code == 302
    assert Patient.objects.count() == 1
    assert Referral.objects.filter(patient=existing).count() == 2


def test_the_patient_type_ahead_offers_matches_and_audits_the_patients_offered_by_id(users, client_as):
    existing = Patient.objects.create(first_name="Mira", last_name="Quayle", birth_date=dt.date(1961, 4, 9), mrn="Q-9")
    Patient.objects.create(first_name="Mira", last_name="Quayle", birth_date=dt.date(1970, 1, 1))
    client = client_as("coordinator")
    html = client.post(
        "/referrals/new/patients/", {"patient_last_name": "quayle", "patient_birth_date": "1961-04-09"}
    ).content.decode()
    assert f'name="patient" value="{existing.pk}"' in html and "1970" not in html
    assert "same last name and date of birth" in html
    audit = AuditEvent.objects.get(action="patient.search")
    assert audit.actor == users["coordinator"]
    assert audit.detail == {"where": "intake", "results": 1, "patients": [existing.pk]}  # ids, never the text typed
    by_mrn = client.post("/referrals/new/patients/", {"patient_mrn": "Q-9"}).content.decode()
    assert "same MRN" in by_mrn
    nothing = client.post(
        "/referrals/new/patients/", {"patient_last_name": "Nobody", "patient_birth_date": "1961-04-09"}
    )
    assert "patient" not in nothing.content.decode() and AuditEvent.objects.filter(action="patient.search").count() == 2


def test_the_provider_type_ahead_shows_name_specialty_city_and_npi(client_as):
    source = provider(first_name="Imogen", last_name="Castellanos", specialty="Family Medicine", city="Dublin")
    provider(first_name="Other", last_name="Person")
    html = client_as("coordinator").get("/referrals/new/providers/", {"provider_q": "castel"}).content.decode()
    assert f'name="referring_provider" value="{source.pk}"' in html
    assert "Imogen Castellanos, MD" in html and "Family Medicine" in html and "Dublin" in html and source.npi in html
    assert "Other Person" not in html


def test_a_new_provider_typed_inline_is_added_to_the_directory_from_the_referral(client_as):
    data = fax(
        new_provider_first_name="Theo",
        new_provider_last_name="Marsh",
        new_provider_phone="(614) 555-0101",
        new_provider_fax="(614) 555-0102",
    )
    assert client_as("coordinator").post("/referrals/new/", data).status_code == 302
    source = ReferringProvider.objects.get(last_name="Marsh")
    assert (source.first_name, source.source, source.fax) == ("Theo", "referral", "(614) 555-0102")
    assert Referral.objects.get().referring_provider == source


def test_a_new_provider_with_a_bad_npi_writes_nothing(client_as):
    data = fax(new_provider_first_name="Theo", new_provider_last_name="Marsh", new_provider_npi="1234567890")
    response = client_as("coordinator").post("/referrals/new/", data)
    assert response.status_code == 200
    assert re.search(r'has-error">\s*<label for="id_new_provider_npi"', response.content.decode())
    assert not ReferringProvider.objects.exists() and not Referral.objects.exists() and not Patient.objects.exists()


def test_another_kind_of_source_may_be_chosen_instead_of_a_provider(client_as):
    source = OtherSource.objects.create(kind=OtherSourceKind.CAMPAIGN, name="Knee seminar")
    assert client_as("coordinator").post("/referrals/new/", fax(other_source=source.pk)).status_code == 302
    item = Referral.objects.get()
    assert item.other_source == source and item.referring_provider is None


def test_no_source_or_two_sources_are_refused(client_as):
    source = OtherSource.objects.create(kind=OtherSourceKind.CAMPAIGN, name="Knee seminar")
    client = client_as("coordinator")
    assert "Give the source" in client.post("/referrals/new/", fax()).content.decode()
    both = client.post("/referrals/new/", fax(referring_provider=provider().pk, other_source=source.pk))
    assert "Give one source only" in both.content.decode()
    assert not Referral.objects.exists()


def test_a_patient_without_a_name_or_birth_date_is_refused(client_as):
    data = fax(referring_provider=provider().pk, patient_last_name="", patient_birth_date="")
    html = client_as("coordinator").post("/referrals/new/", data).content.decode()
    assert "Give the patient&#x27;s last name" in html and "Give the patient&#x27;s date of birth" in html
    assert not Referral.objects.exists() and not Patient.objects.exists()


def test_an_open_referral_of_the_same_patient_and_provider_needs_a_confirmation(users, client_as):
    source = provider()
    first = referral(
        by=users["coordinator"],
        source=source,
        patient_data={"first_name": "Mira", "last_name": "Quayle", "birth_date": dt.date(1961, 4, 9)},
    )
    client = client_as("coordinator")
    data = fax(referring_provider=source.pk)
    response = client.post("/referrals/new/", data)
    html = response.content.decode()
    assert response.status_code == 200 and Referral.objects.count() == 1
    assert "Already open for this patient and source" in html and f'href="/referrals/{first.pk}/"' in html
    assert 'name="confirm_duplicate"' in html
    # The same provider radio and the same key come back, so confirming is one tick and one click.
    assert f'value="{source.pk}" checked' in html and data["idempotency_key"] in html
    confirmed = client.post("/referrals/new/", data | {"confirm_duplicate": "on"})
    assert confirmed.status_code == 302 and Referral.objects.count() == 2
    assert Patient.objects.count() == 1


def test_a_closed_referral_or_another_provider_is_not_a_duplicate(users, client_as):
    patient = {"first_name": "Mira", "last_name": "Quayle", "birth_date": dt.date(1961, 4, 9)}
    source = provider()
    referral(by=users["coordinator"], source=provider(last_name="Elsewhere"), patient_data=dict(patient))
    declined = referral(by=users["coordinator"], source=source, patient_data=dict(patient))
    referral_transition(referral=declined, name="decline", by=users["coordinator"], data={"reason": "Out of network"})
    assert client_as("coordinator").post("/referrals/new/", fax(referring_provider=source.pk)).status_code == 302


def test_a_double_submit_with_the_same_key_creates_one_referral(client_as):
    client = client_as("coordinator")
    data = fax(new_provider_first_name="Theo", new_provider_last_name="Marsh")
    first = client.post("/referrals/new/", data)
    second = client.post("/referrals/new/", data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Referral.objects.count() == 1 and Patient.objects.count() == 1
    assert ReferringProvider.objects.filter(last_name="Marsh").count() == 1


def test_a_bad_icd10_code_is_named_and_nothing_is_written(client_as):
    data = fax(referring_provider=provider().pk, diagnosis_codes="M23.221, KNEE1")
    html = client_as("coordinator").post("/referrals/new/", data).content.decode()
    assert "&#x27;KNEE1&#x27; is not an ICD-10-CM code" in html
    assert not Referral.objects.exists() and not Patient.objects.exists()


def test_a_received_time_in_the_future_is_refused(client_as):
    tomorrow = (timezone.localtime() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    html = client_as("coordinator").post("/referrals/new/", fax(referring_provider=provider().pk, received_at=tomorrow))
    assert "The date received is in the future." in html.content.decode()
    assert not Referral.objects.exists()


def test_documents_sent_with_the_form_are_attached(client_as):
    data = fax(referring_provider=provider().pk, attachments=SimpleUploadedFile("fax.pdf", small_pdf()))
    assert client_as("coordinator").post("/referrals/new/", data).status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.referral == Referral.objects.get() and attachment.content_type == "application/pdf"


def test_a_refused_document_stops_the_whole_intake(client_as):
    bad = SimpleUploadedFile("fax.pdf", b"<html><script>alert(1)</script></html>")
    html = client_as("coordinator").post("/referrals/new/", fax(referring_provider=provider().pk, attachments=bad))
    assert "fax.pdf is not a PDF, PNG, JPEG or TIFF file" in html.content.decode()
    assert not Referral.objects.exists() and not Attachment.objects.exists()


def test_only_staff_who_edit_referrals_may_log_one(users, client_as):
    for role in ("liaison", "clinician"):
        client = client_as(role)
        assert client.get("/referrals/new/").status_code == 403
        assert client.post("/referrals/new/", fax(referring_provider=provider().pk)).status_code == 403
        assert client.post("/referrals/new/patients/", {"patient_mrn": "x"}).status_code == 403
    assert not Referral.objects.exists()


def test_the_search_box_finds_a_patient_s_referral_and_audits_the_count(users, client_as):
    item = referral(
        by=users["coordinator"],
        patient_data={"first_name": "Mira", "last_name": "Quayle", "birth_date": dt.date(1961, 4, 9), "mrn": "Q-9"},
    )
    client = client_as("coordinator")
    for query in ["quayle", "Mira Quayle", "Quayle, Mira", "quayle 4/9/1961", "Q-9", f"#{item.pk}"]:
        html = client.get("/search/", {"q": query}, headers={"HX-Request": "true"}).content.decode()
        assert f'href="/referrals/{item.pk}/"' in html, query
    assert "Quayle" not in client.get("/search/", {"q": "quayle 1/1/1999"}).content.decode()
    audits = AuditEvent.objects.filter(action="patient.search")
    assert audits.count() == 6 and all("quayle" not in str(a.detail).lower() for a in audits)
    assert client_as("liaison").get("/search/", {"q": "quayle"}).content.decode().count("/referrals/") == 0
