"""The page where a person resolves electronic referrals that wait: a FHIR referral from a provider the directory
does not hold (add the provider from the link, then try it again) and an HL7 referral that failed after its ACK
(queue it again). The rows show no message body; the patients named on a page are a recorded read."""

from __future__ import annotations

import html

import pytest

from refloop.accounts.models import AuditEvent
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral
from tests.interop.fhir_helpers import HENRY_SEVEN_NPI, api_key, bser_message, henry_seven, post, us_core_contained

pytestmark = pytest.mark.django_db
DIRECT = "Kathy.Fielding@direct.ExampleMedicalPractice.net"  # US Core's practitioner-2, as its example gives it


@pytest.fixture
def waiting(client, reference_dir):
    """A BSeR referral from Henry Seven, MD, whom the directory does not hold: queued for review (202)."""
    assert post(client, "/fhir/Bundle", bser_message(reference_dir), api_key("referrals.edit")).status_code == 202
    return InterfaceMessage.objects.get(status="review")


def test_the_coordinator_sees_who_sent_it_for_whom_and_why_it_waits(waiting, client_as, users):
    page = client_as("coordinator").get("/interfaces/")
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    row = text.split(f'data-message="{waiting.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Patient Everywoman, Eve, born 1955-07-23" in row and f"Requester Henry Seven, NPI {HENRY_SEVEN_NPI}" in row
    assert f"no referring provider with NPI {HENRY_SEVEN_NPI} in the directory" in row
    assert f"/directory/providers/new/?npi={HENRY_SEVEN_NPI}" in row and ">Try again</button>" in row
    assert "<Bundle" not in text and '"resourceType"' not in text  # never the message itself
    [read] = AuditEvent.objects.filter(action="interop.messages.view", actor=users["coordinator"])
    assert read.detail["messages"] == [waiting.pk] and read.detail["patients_shown"] == [waiting.pk]


def test_the_add_link_fills_in_the_npi_and_name_as_sent(waiting, client_as):
    page = client_as("coordinator").get("/interfaces/")
    link = html.unescape(page.content.decode()).split('<a href="/directory/providers/new/?', 1)[1].split('"', 1)[0]
    form = client_as("coordinator").get("/directory/providers/new/?" + link).content.decode()
    assert f'value="{HENRY_SEVEN_NPI}"' in form
    assert 'value="Henry"' in form and 'value="Seven"' in form


def test_trying_again_before_the_provider_is_added_creates_nothing_and_says_why(waiting, client_as):
    response = client_as("coordinator").post(f"/interfaces/{waiting.pk}/retry/", {"show": "waiting"}, follow=True)
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert "still waits" in text and f"no referring provider with NPI {HENRY_SEVEN_NPI} in the directory" in text
    waiting.refresh_from_db()
    assert waiting.status == "review" and not Referral.objects.exists()


def test_once_the_provider_is_in_the_directory_trying_again_makes_the_referral(waiting, client_as, users):
    henry = henry_seven()
    response = client_as("coordinator").post(f"/interfaces/{waiting.pk}/retry/")
    referral = Referral.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/referrals/{referral.pk}/"
    assert referral.referring_provider == henry and referral.patient.last_name == "Everywoman"
    waiting.refresh_from_db()
    assert waiting.status == "accepted" and waiting.referral == referral
    assert AuditEvent.objects.filter(action="interop.message.retry", target_id=str(waiting.pk)).count() == 1
    assert AuditEvent.objects.filter(action="referral.create", actor=users["coordinator"]).count() == 1
    assert "Nothing waits for a person" in client_as("coordinator").get("/interfaces/").content.decode()


def test_an_hl7_message_that_failed_after_its_ack_is_queued_again(client_as):
    failed = InterfaceMessage.objects.create(
        direction="in", protocol="hl7v2", message_type="REF^I12", control_id="MSG00042", sender="EHR^CLINIC",
        status="failed", payload="MSH|^~\\&|...",
        detail="Answered AA, then not made a referral: boom (received by mllp)",
    )  # fmt: skip
    page = client_as("manager").get("/interfaces/?protocol=hl7v2").content.decode()
    assert ">Queue again</button>" in page and "Answered AA, then not made a referral" in html.unescape(page)
    response = client_as("manager").post(f"/interfaces/{failed.pk}/retry/", {"protocol": "hl7v2"})
    assert response.status_code == 302 and response["Location"] == "/interfaces/?protocol=hl7v2"
    failed.refresh_from_db()
    assert failed.status == "queued" and failed.detail == "queued; received by mllp"


def test_a_message_with_nothing_to_retry_is_left_alone(client_as):
    done = InterfaceMessage.objects.create(
        direction="in", protocol="hl7v2", message_type="REF^I12", control_id="MSG00043", status="accepted"
    )
    response = client_as("coordinator").post(f"/interfaces/{done.pk}/retry/", follow=True)
    assert "nothing to retry" in response.content.decode()
    done.refresh_from_db()
    assert done.status == "accepted"
    assert not AuditEvent.objects.filter(action="interop.message.retry").exists()


def test_the_referrals_page_tells_who_may_review_that_referrals_wait(waiting, client_as):
    coordinator = client_as("coordinator").get("/referrals/").content.decode()
    assert 'id="waiting-messages"' in coordinator and "1 electronic referral waits for a person" in coordinator
    assert 'id="waiting-messages"' not in client_as("clinician").get("/referrals/").content.decode()
    assert client_as("clinician").get("/interfaces/").status_code == 403
    assert client_as("liaison").get("/interfaces/").status_code == 403


def test_the_add_link_carries_the_direct_address_the_requester_was_sent_with(client, client_as, reference_dir):
    """US Core's Practitioner example gives Dr Fielding a Direct address: the form opens with it and with reports
    going by Direct, so the coordinator saves it as sent."""
    post(client, "/fhir/ServiceRequest", us_core_contained(reference_dir, "servicerequest-rehab.json"),
         api_key("referrals.edit"))  # fmt: skip
    message = InterfaceMessage.objects.get(status="review")
    page = html.unescape(client_as("coordinator").get("/interfaces/").content.decode())
    assert "Requester Fielding Kathy, NPI 1245319599" in page  # the example's given and family, as sent
    link = page.split('<a href="/directory/providers/new/?', 1)[1].split('"', 1)[0]
    form = client_as("coordinator").get("/directory/providers/new/?" + link).content.decode()
    assert f'value="{DIRECT}"' in form
    assert '<option value="direct" selected>' in form
    saved = client_as("coordinator").post("/directory/providers/new/?" + link, {
        "npi": "1245319599", "first_name": "Fielding", "last_name": "Kathy", "report_channel": "direct",
        "direct_address": DIRECT, "active": "on",
    })  # fmt: skip
    assert saved.status_code == 302 and saved["Location"] == "/interfaces/"
    assert client_as("coordinator").post(f"/interfaces/{message.pk}/retry/").status_code == 302
    assert Referral.objects.get().referring_provider.direct_address == DIRECT
