"""A liaison sees the referrals of the sources they own (counts, dates, states) on the source's page, but the
patient and the clinical details only when the practice allows it; other liaisons see nothing of it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.practice.models import SecuritySettings
from refloop.referrals import services
from tests.conftest import log_in_client, make_user
from tests.directory.factories import practice, provider
from tests.referrals.factories import clinician, referral

pytestmark = pytest.mark.django_db

REASON = "Torn meniscus, left knee, locking"


@pytest.fixture
def source(users):
    """A provider at a practice owned by the `liaison` user, with two recent referrals and one from long ago."""
    office = practice(name="Hilliard Family Care", liaison=users["liaison"])
    doctor = provider(last_name="Okafor", liaison=users["liaison"])
    from refloop.directory.services import affiliation_set

    affiliation_set(provider=doctor, practice=office, is_primary=True)
    doc = clinician()
    recent = [
        referral(
            source=doctor,
            by=users["coordinator"],
            patient_data={"first_name": "Marisol", "last_name": "Quintero", "birth_date": dt.date(1961, 3, 9)},
            reason=REASON,
            diagnosis_codes=["M23.205"],
            clinician=doc,
        ),
        referral(source=doctor, by=users["coordinator"], clinician=doc, urgency="urgent"),
    ]
    services.referral_transition(
        referral=recent[1], name="decline", by=users["coordinator"], data={"reason": "Out of network"}
    )
    old = referral(source=doctor, by=users["coordinator"], received_at=timezone.now() - dt.timedelta(days=500))
    return {"office": office, "doctor": doctor, "recent": recent, "old": old}


def _summary_audits():
    return list(AuditEvent.objects.filter(action="referral.source_summary").order_by("seq"))


def test_the_owner_liaison_sees_counts_and_states_but_no_patient_or_clinical_detail(client_as, source):
    response = client_as("liaison").get(reverse("directory:provider", args=[source["doctor"].pk]))
    assert response.status_code == 200
    summary = response.context["referral_summary"]
    assert summary.total == 2  # the 500-day-old referral is outside the 12 months
    assert dict(summary.by_state) == {"Received": 1, "Declined": 1}
    assert not summary.clinical
    assert {r.pk for r in summary.rows} == {r.pk for r in source["recent"]}
    assert all(r.patient == "" and r.reason == "" and r.diagnosis_codes == () for r in summary.rows)
    page = response.content.decode()
    assert 'id="referral-summary"' in page
    for secret in ("Quintero", "Marisol", REASON, "M23.205"):
        assert secret not in page
    # The read is in the audit trail: one record naming the referrals listed, without a patient.
    (event,) = _summary_audits()
    assert event.actor.username == "liaison"
    assert sorted(event.detail["referrals"]) == sorted(r.pk for r in source["recent"])
    assert event.detail["clinical"] is False
    assert "Quintero" not in str(event.detail)


def test_the_owner_liaison_sees_clinical_details_when_the_practice_allows_it(client_as, source):
    SecuritySettings.objects.update_or_create(pk=1, defaults={"liaisons_see_clinical_details": True})
    response = client_as("liaison").get(reverse("directory:practice", args=[source["office"].pk]))
    assert response.status_code == 200
    summary = response.context["referral_summary"]
    assert summary.clinical
    assert summary.total == 2
    page = response.content.decode()
    for shown in ("Marisol Quintero", REASON, "M23.205"):
        assert shown in page
    assert not summary.can_open  # the liaison still cannot open the referral page itself
    assert reverse("referrals:detail", args=[source["recent"][0].pk]) not in page
    assert _summary_audits()[-1].detail["clinical"] is True


def test_another_liaison_sees_no_summary(source):
    stranger = make_user("other_liaison", "liaison")
    response = log_in_client(stranger).get(reverse("directory:provider", args=[source["doctor"].pk]))
    assert response.status_code == 200
    assert response.context["referral_summary"] is None
    assert 'id="referral-summary"' not in response.content.decode()
    assert _summary_audits() == []


def test_the_liaison_of_the_sources_territory_counts_as_owner(users, source):
    from refloop.directory.models import Territory

    territory_liaison = make_user("territory_liaison", "liaison")
    territory = Territory.objects.create(name="West", liaison=territory_liaison)
    source["doctor"].__class__.objects.filter(pk=source["doctor"].pk).update(territory=territory, liaison=None)
    response = log_in_client(territory_liaison).get(reverse("directory:provider", args=[source["doctor"].pk]))
    assert response.context["referral_summary"].total == 2


def test_a_manager_sees_the_summary_with_links_to_the_referrals_but_no_patient(client_as, source):
    response = client_as("manager").get(reverse("directory:provider", args=[source["doctor"].pk]))
    summary = response.context["referral_summary"]
    assert summary.can_open and not summary.clinical  # the referral page behind the link has the rest, audited
    page = response.content.decode()
    assert reverse("referrals:detail", args=[source["recent"][0].pk]) in page
    assert "Quintero" not in page and REASON not in page


def test_the_setting_is_changed_on_the_security_form_and_audited(client_as, users):
    client = client_as("admin")
    opened = client.get(reverse("practice:security_edit"))
    assert "liaisons_see_clinical_details" in opened.content.decode()
    response = client.post(
        reverse("practice:security_edit"), {"idle_logoff_minutes": 15, "liaisons_see_clinical_details": "on"}
    )
    assert response.status_code == 302
    assert SecuritySettings.current().liaisons_see_clinical_details is True
    event = AuditEvent.objects.filter(action="settings.security").first()
    assert event.detail["liaisons_see_clinical_details"] == [False, True]
