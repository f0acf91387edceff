"""A referring office's status link reaches only that office's patients and documents: changing the ids in the
URL (another office's sent report, a letter that is not a sent consult report, a document number that does not
exist) gets the same 404 as a wrong token, and each refused try is in the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from refloop.accounts.models import AuditEvent
from refloop.directory.services import affiliation_set
from refloop.letters import services
from refloop.letters.models import Delivery, DeliveryStatus, Letter, LetterKind
from tests.letters.conftest import run_worker
from tests.letters.factories import emailing_provider, only_rules, practice, seen_referral
from tests.referrals.factories import clinician

pytestmark = pytest.mark.django_db(transaction=True)  # the worker closes connections (PostgreSQL)


def _sent_report(users, *, office, first_name: str, last_name: str) -> Letter:
    source = emailing_provider(first_name=first_name, last_name=f"Dr{last_name}")
    affiliation_set(provider=source, practice=office, is_primary=True)
    item = seen_referral(
        by=users["coordinator"],
        source=source,
        doctor=clinician(user=users["clinician"]),
        patient_data={"first_name": first_name, "last_name": last_name, "birth_date": dt.date(1958, 6, 2)},
    )
    report = services.report_save(
        referral=item, data={"assessment": f"Assessment for {last_name}", "is_final": True}, by=users["clinician"]
    )
    services.report_sign(report=report, by=users["clinician"])
    return services.report_send(report=report, by=users["clinician"])


@pytest.fixture
def two_offices(users, smtp, settings):
    """Two offices, each with a consult report sent (delivered), and a status link for the first."""
    settings.LETTERS_EMAIL_ATTACH_PDF = True
    only_rules()
    ours, theirs = practice(name="Dublin Family Medicine"), practice(name="Hilliard Pediatrics", npi="")
    our_letter = _sent_report(users, office=ours, first_name="Mira", last_name="Quayle")
    their_letter = _sent_report(users, office=theirs, first_name="Zed", last_name="Yorke")
    run_worker()
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    _, token = services.status_link_create(practice=ours, by=None)
    return {"token": token, "ours": our_letter, "theirs": their_letter}


def _refusals() -> int:
    return AuditEvent.objects.filter(action="letters.status_link.refused").count()


def test_the_link_downloads_its_own_office_s_report(two_offices):
    token, ours = two_offices["token"], two_offices["ours"]
    response = Client().get(f"/r/{token}/reports/{ours.pk}/1/")
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert AuditEvent.objects.filter(action="letters.report.download", target_id=str(ours.pk)).count() == 1


def test_another_office_s_report_id_in_the_url_is_not_found_and_audited(two_offices):
    token, theirs = two_offices["token"], two_offices["theirs"]
    response = Client().get(f"/r/{token}/reports/{theirs.pk}/1/")
    assert response.status_code == 404
    assert b"%PDF" not in response.content and b"Yorke" not in response.content
    assert _refusals() == 1
    assert not AuditEvent.objects.filter(action="letters.report.download", target_id=str(theirs.pk)).exists()


def test_the_status_page_lists_only_its_own_office_s_patients(two_offices):
    token, ours, theirs = two_offices["token"], two_offices["ours"], two_offices["theirs"]
    html = Client().get(f"/r/{token}/").content.decode()
    assert f'data-referral="{ours.referral_id}"' in html
    assert f'data-referral="{theirs.referral_id}"' not in html
    assert f"/reports/{theirs.pk}/" not in html and "Z.Y." not in html
    view = AuditEvent.objects.filter(action="letters.status_link.view").first()
    assert view.detail["shown"] == [ours.referral_id]


def test_a_letter_of_its_own_office_that_is_not_a_consult_report_is_not_found(two_offices):
    token, ours = two_offices["token"], two_offices["ours"]
    others = Letter.objects.filter(referral_id=ours.referral_id).exclude(kind=LetterKind.CONSULT_REPORT)
    for letter in others:
        assert Client().get(f"/r/{token}/reports/{letter.pk}/1/").status_code == 404
    missing = Letter.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    assert Client().get(f"/r/{token}/reports/{missing}/1/").status_code == 404
    assert _refusals() == len(others) + 1


def test_a_document_number_that_does_not_exist_is_not_found(two_offices):
    token, ours = two_offices["token"], two_offices["ours"]
    for number in (0, 2, 99):
        assert Client().get(f"/r/{token}/reports/{ours.pk}/{number}/").status_code == 404
    assert not AuditEvent.objects.filter(action="letters.report.download").exists()


def test_the_secure_letter_link_of_one_delivery_cannot_reach_another_letter(two_offices):
    """The letter link carries no id to change: a number past its own documents is all there is to try."""
    token = two_offices["token"]
    assert Client().get(f"/l/{token}/").status_code == 404  # a status token is not a letter token
    assert Client().get(f"/l/{token}/1/").status_code == 404
