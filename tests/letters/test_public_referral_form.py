"""The public referral form: no account, spam-resistant without third parties (honeypot, a signed timestamp
that must be a few seconds to a few hours old, a rate limit), and a received referral with its acknowledgement."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.test import Client

from refloop.directory.models import ReferringProvider
from refloop.letters.forms import FORM_SALT, office_token
from refloop.letters.models import Delivery, Letter, LetterKind
from refloop.referrals.models import Referral
from refloop.referrals.workflow import State
from tests.directory.factories import next_npi, practice, provider

pytestmark = pytest.mark.django_db


def aged_token(seconds: float) -> str:
    return signing.dumps({"t": time.time() - seconds, "n": "test"}, salt=FORM_SALT)


def form(**fields) -> dict:
    return {
        "npi": next_npi(),
        "provider_first_name": "Imogen",
        "provider_last_name": "Castellanos",
        "office_name": "Dublin Family Medicine",
        "phone": "(614) 555-0142",
        "fax": "(614) 555-0143",
        "email": "",
        "patient_first_name": "Mira",
        "patient_last_name": "Quayle",
        "patient_birth_date": "1961-04-09",
        "patient_phone": "614-555-0190",
        "reason": "Right knee pain after a fall",
        "urgency": "urgent",
        "website": "",
        "started": aged_token(30),
    } | fields


def test_the_form_opens_without_an_account():
    page = Client().get("/refer/")
    assert page.status_code == 200 and b'name="website"' in page.content and b'name="started"' in page.content


def test_a_referral_sent_from_the_form_is_received_and_acknowledged():
    data = form()
    response = Client().post("/refer/", data)
    assert response.status_code == 200 and b"W-" in response.content
    referral = Referral.objects.get()
    assert referral.state == State.RECEIVED and referral.channel == "web" and referral.urgency == "urgent"
    assert referral.patient.last_name == "Quayle" and referral.events.get().action == "receive"
    source = ReferringProvider.objects.get(npi=data["npi"])
    assert referral.referring_provider == source and source.source == "referral"
    assert source.report_channel == "fax" and source.report_fax == "(614) 555-0143"
    letter = Letter.objects.get(referral=referral)
    assert letter.kind == LetterKind.RECEIPT and Delivery.objects.get(letter=letter).channel == "fax"
    assert b"Quayle" not in response.content


def test_an_existing_provider_is_found_by_npi_and_not_changed():
    known = provider(report_channel="email", report_email="known@office.example")
    Client().post("/refer/", form(npi=known.npi, provider_last_name="Someone Else", fax="(999) 555-0000"))
    assert Referral.objects.get().referring_provider == known
    known.refresh_from_db()
    assert known.last_name == "Silvestri" and known.report_email == "known@office.example"


def test_the_same_form_sent_twice_makes_one_referral():
    data = form()
    Client().post("/refer/", data)
    Client().post("/refer/", data)
    assert Referral.objects.count() == 1


def test_a_filled_honeypot_is_refused():
    response = Client().post("/refer/", form(website="http://spam.example"))
    assert response.status_code == 400 and not Referral.objects.exists()


def test_a_form_sent_too_fast_or_too_late_or_forged_is_refused(settings):
    for token in (aged_token(0.5), aged_token(settings.LETTERS_FORM_MAX_SECONDS + 60), "forged:token"):
        response = Client().post("/refer/", form(started=token))
        assert response.status_code == 400
    assert not Referral.objects.exists()


def test_an_office_link_ties_a_new_provider_to_the_office():
    office = practice()
    response = Client().post(f"/refer/{office_token(office)}/", form())
    assert response.status_code == 200
    assert Referral.objects.get().referring_practice == office
    assert Client().get("/refer/12:forged/").status_code == 404


def test_invalid_details_are_shown_again_without_losing_the_form():
    response = Client().post("/refer/", form(npi="1234567890", fax="", email=""))
    assert response.status_code == 400
    page = response.content.decode()
    assert "Quayle" in page and not Referral.objects.exists()


def test_submissions_beyond_the_limit_are_refused(settings):
    settings.LETTERS_RATE_PER_IP = 2
    codes = [Client().post("/refer/", form()).status_code for _ in range(3)]
    assert codes == [200, 200, 429] and Referral.objects.count() == 2
