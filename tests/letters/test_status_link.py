"""A referring office's status link: its own patients only, minimum necessary, reports to download; a wrong,
expired or revoked token shows nothing (the same 404 page); every view is audited; requests are rate-limited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.directory.services import affiliation_set
from refloop.letters import services
from refloop.letters.models import ConsultReport, Delivery, DeliveryStatus, StatusLink
from tests.letters.conftest import run_worker
from tests.letters.factories import emailing_provider, only_rules, practice, seen_referral
from tests.referrals.factories import clinician, referral

pytestmark = pytest.mark.django_db


@pytest.fixture
def offices(users):
    """Two referring offices, each with a provider and a referred patient."""
    ours, theirs = practice(name="Dublin Family Medicine"), practice(name="Hilliard Pediatrics", npi="")
    mine, other = emailing_provider(), emailing_provider(first_name="Theo", last_name="Marsh")
    affiliation_set(provider=mine, practice=ours, is_primary=True)
    affiliation_set(provider=other, practice=theirs, is_primary=True)
    coordinator = users["coordinator"]
    mira = referral(
        by=coordinator,
        source=mine,
        patient_data={"first_name": "Mira", "last_name": "Quayle", "birth_date": dt.date(1961, 4, 9)},
    )
    zed = referral(
        by=coordinator,
        source=other,
        patient_data={"first_name": "Zed", "last_name": "Yorke", "birth_date": dt.date(1990, 2, 3)},
    )
    return ours, mira, zed


def test_the_link_shows_only_its_own_office_with_minimum_necessary(users, offices):
    ours, mira, zed = offices
    link, token = services.status_link_create(practice=ours, by=users["coordinator"])
    page = Client().get(f"/r/{token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-referral="{mira.pk}"' in html and f'data-referral="{zed.pk}"' not in html
    assert "M.Q. (born 1961)" in html and "Received" in html
    assert "Mira" not in html and "Quayle" not in html and "Y.Z." not in html and "Z.Y." not in html
    assert page["Cache-Control"] == "private, no-store" and page["Referrer-Policy"] == "no-referrer"
    view = AuditEvent.objects.get(action="letters.status_link.view")
    assert view.target_id == str(link.pk) and view.detail["referrals"] == 1
    assert StatusLink.objects.get().views == 1


def test_the_token_is_stored_hashed():
    from refloop.letters.models import token_hash

    link, token = services.status_link_create(practice=practice(), by=None)
    assert token not in (link.token_hash, link.hint) and link.token_hash == token_hash(token)


def test_wrong_expired_and_revoked_tokens_show_the_same_nothing(users, offices):
    ours, _, _ = offices
    expired, expired_token = services.status_link_create(practice=ours, by=None)
    StatusLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    revoked, revoked_token = services.status_link_create(practice=ours, by=None)
    services.status_link_revoke(link=revoked, by=users["coordinator"])
    bodies = set()
    for token in (expired_token, revoked_token, "not-a-token-at-all", expired_token[:-1] + "x"):
        response = Client().get(f"/r/{token}/")
        assert response.status_code == 404
        bodies.add(response.content)
    assert len(bodies) == 1
    assert b"Quayle" not in bodies.pop()
    assert AuditEvent.objects.filter(action="letters.status_link.refused").count() == 4


def test_a_coordinator_revokes_a_link_and_it_stops_working(users, offices, client_as):
    ours, _, _ = offices
    link, token = services.status_link_create(practice=ours, by=users["coordinator"])
    assert Client().get(f"/r/{token}/").status_code == 200
    assert client_as("coordinator").post(f"/letters/links/{link.pk}/revoke/").status_code == 302
    assert Client().get(f"/r/{token}/").status_code == 404


def test_a_coordinator_creates_a_link_and_sees_it_once(users, offices, client_as):
    ours, _, _ = offices
    response = client_as("coordinator").post(f"/letters/links/new/{ours.pk}/", {"note": "Front desk, Jan"})
    assert response.status_code == 200
    link = StatusLink.objects.get()
    html = response.content.decode()
    url = html.split('id="status-link-url" class="wide"')[0].rsplit('value="', 1)[1].split('"')[0]
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert link.token_hash != token and Client().get(f"/r/{token}/").status_code == 200
    assert client_as("clinician").post(f"/letters/links/new/{ours.pk}/").status_code == 403


def test_requests_beyond_the_limit_are_refused(users, offices, settings):
    settings.LETTERS_RATE_PER_TOKEN = 3
    ours, _, _ = offices
    _, token = services.status_link_create(practice=ours, by=None)
    client = Client()
    assert [client.get(f"/r/{token}/").status_code for _ in range(4)] == [200, 200, 200, 429]
    settings.LETTERS_RATE_PER_TOKEN, settings.LETTERS_RATE_PER_IP = 100, 5
    assert [client.get(f"/r/guess-{n}/").status_code for n in range(2)] == [404, 429]  # 4 + 2 > 5 from this IP


@pytest.mark.django_db(transaction=True)
def test_the_office_downloads_its_sent_report_and_the_download_is_audited(users, smtp, settings):
    settings.LETTERS_EMAIL_ATTACH_PDF = True
    only_rules()
    ours = practice()
    source = emailing_provider()
    affiliation_set(provider=source, practice=ours, is_primary=True)
    doctor = clinician(user=users["clinician"])
    item = seen_referral(by=users["coordinator"], source=source, doctor=doctor)
    report = services.report_save(
        referral=item, data={"assessment": "Meniscus tear", "is_final": True}, by=users["clinician"]
    )
    services.report_sign(report=report, by=users["clinician"])
    letter = services.report_send(report=report, by=users["clinician"])
    _, token = services.status_link_create(practice=ours, by=None)
    assert f"/r/{token}/reports/{letter.pk}/1/" not in Client().get(f"/r/{token}/").content.decode()
    assert Client().get(f"/r/{token}/reports/{letter.pk}/1/").status_code == 404  # not sent yet

    run_worker()
    assert Delivery.objects.get().status == DeliveryStatus.SENT
    page = Client().get(f"/r/{token}/").content.decode()
    assert f"/r/{token}/reports/{letter.pk}/1/" in page and "Report sent" in page
    download = Client().get(f"/r/{token}/reports/{letter.pk}/1/")
    assert download.status_code == 200 and download.content.startswith(b"%PDF-")
    audit = AuditEvent.objects.get(action="letters.report.download")
    assert audit.target_id == str(letter.pk) and audit.actor is None
    other_office, other_token = services.status_link_create(practice=practice(name="Elsewhere", npi=""), by=None)
    assert Client().get(f"/r/{other_token}/reports/{letter.pk}/1/").status_code == 404
    assert ConsultReport.objects.get().status == "sent"
