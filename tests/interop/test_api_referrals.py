"""Referrals through the JSON API: intake made safe to retry, every step through the workflow with If-Match,
lists with filters and pages, and every read and write of patient data in the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral
from refloop.referrals.workflow import State, transition_problem
from tests.interop.api_support import key_client, world
from tests.referrals import factories

pytestmark = pytest.mark.django_db


def _body(seeded, **fields) -> dict:
    return {
        "patient": {"first_name": "Rosa", "last_name": "Quintero", "birth_date": "1961-04-09", "mrn": "Q-1001"},
        "referring_provider_npi": seeded.office.physicians[1].npi,
        "reason": "Persistent shoulder pain",
        "diagnosis_codes": ["M25.511"],
        "urgency": "urgent",
    } | fields


def _post(client, body, key=None):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/referrals", body, content_type="application/json", **extra)


def test_the_same_request_sent_twice_with_one_idempotency_key_makes_one_referral():
    seeded, client = world(), key_client("referrals.edit", name="Epic referrals")
    first = _post(client, _body(seeded), key="order-77")
    again = _post(client, _body(seeded), key="order-77")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    referral = Referral.objects.get(pk=first.json()["id"])
    assert referral.patient.mrn == "Q-1001" and referral.urgency == "urgent"
    assert referral.diagnosis_codes == ["M25.511"]
    assert Referral.objects.filter(patient__mrn="Q-1001").count() == 1
    message = InterfaceMessage.objects.get(control_id="order-77")
    assert message.referral == referral and message.protocol == "api"


def test_the_same_idempotency_key_with_another_body_is_refused_and_nothing_is_made():
    seeded, client = world(), key_client("referrals.edit")
    assert _post(client, _body(seeded), key="order-78").status_code == 201
    refused = _post(client, _body(seeded, reason="Knee pain instead"), key="order-78")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert not Referral.objects.filter(reason="Knee pain instead").exists()


def test_two_integrations_may_use_the_same_idempotency_key_for_different_referrals():
    seeded = world()
    one, other = key_client("referrals.edit", name="Epic"), key_client("referrals.edit", name="Fax server")
    first = _post(one, _body(seeded), key="1")
    second = _post(other, _body(seeded, reason="Hip pain"), key="1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


def test_a_referral_logged_by_a_key_names_the_key_in_its_history_and_in_the_audit_trail():
    seeded, client = world(), key_client("referrals.edit", name="Epic referrals")
    created = _post(client, _body(seeded)).json()
    referral = Referral.objects.get(pk=created["id"])
    assert referral.events.get(action="receive").by_label == "Epic referrals"
    audit = AuditEvent.objects.filter(target_id=str(referral.pk), action="api.referral.create").get()
    assert audit.actor is None and audit.actor_label == "Epic referrals"


def test_bad_input_is_answered_with_the_field_that_is_wrong():
    seeded, client = world(), key_client("referrals.edit")
    no_reason = _post(client, _body(seeded, reason=""))
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "body.reason"
    bad_email = _post(client, _body(seeded, patient={**_body(seeded)["patient"], "email": "not-an-address"}))
    assert bad_email.status_code == 422
    assert [e["field"] for e in bad_email.json()["errors"]] == ["body.patient.email"]
    unknown_npi = _post(client, _body(seeded, referring_provider_npi="1999999999"))
    assert unknown_npi.status_code == 422
    assert unknown_npi.json()["errors"][0]["field"] == "body.referring_provider_npi"
    assert not Referral.objects.filter(reason="Persistent shoulder pain").exists()


def _step(client, referral_id, name, body=None, etag=None):
    extra = {"HTTP_IF_MATCH": etag} if etag else {}
    return client.post(
        f"/api/referrals/{referral_id}/transitions/{name}", body or {}, content_type="application/json", **extra
    )


def test_a_step_needs_the_etag_the_referral_was_read_with():
    seeded, client = world(), key_client("referrals.view", "referrals.edit")
    referral = seeded.referral
    read = client.get(f"/api/referrals/{referral.pk}")
    assert _step(client, referral.pk, "accept").status_code == 428
    stale = read["ETag"].replace("-v1", "-v0")
    assert _step(client, referral.pk, "accept", etag=stale).status_code == 412
    referral.refresh_from_db()
    assert referral.state == State.RECEIVED and referral.version == 1

    accepted = _step(client, referral.pk, "accept", etag=read["ETag"])
    assert accepted.status_code == 200
    referral.refresh_from_db()
    assert referral.state == State.ACCEPTED and referral.version == 2
    assert accepted["ETag"] != read["ETag"] and accepted.json()["version"] == 2
    assert _step(client, referral.pk, "decline", {"reason": "x"}, etag=read["ETag"]).status_code == 412


def test_a_step_made_by_a_key_names_the_key_in_the_history_and_the_audit_trail():
    seeded, client = world(), key_client("referrals.edit", name="Epic referrals")
    referral = seeded.referral
    etag = f'"referral-{referral.pk}-v{referral.version}"'
    assert _step(client, referral.pk, "accept", etag=etag).status_code == 200
    assert referral.events.get(action="accept").by_label == "Epic referrals"
    audit = AuditEvent.objects.get(target_id=str(referral.pk), action="referral.accept")
    assert audit.actor is None and audit.actor_label == "Epic referrals"


def test_a_step_the_loop_does_not_allow_is_refused_with_the_workflows_reason():
    seeded, client = world(), key_client("referrals.edit")
    referral = seeded.referral
    etag = f'"referral-{referral.pk}-v{referral.version}"'
    refused = _step(client, referral.pk, "send_back", {"follow_up": "See in 6 weeks"}, etag=etag)
    assert refused.status_code == 409
    assert refused.json()["message"] == transition_problem("send_back", referral.state, "coordinator")
    referral.refresh_from_db()
    assert referral.state == State.RECEIVED and referral.follow_up == ""


def test_scheduling_needs_what_the_workflow_asks_for_and_then_books_the_appointment():
    seeded, client = world(), key_client("referrals.edit")
    referral = seeded.referral
    accepted = _step(client, referral.pk, "accept", etag=f'"referral-{referral.pk}-v1"')
    missing = _step(client, referral.pk, "schedule", {}, etag=accepted["ETag"])
    assert missing.status_code == 422
    assert "appointment" in missing.json()["message"]
    when = (timezone.now() + dt.timedelta(days=3)).replace(microsecond=0)
    body = {"appointment_at": when.isoformat(), "location_id": seeded.location.pk, "clinician_id": seeded.clinician.pk}
    booked = _step(client, referral.pk, "schedule", body, etag=accepted["ETag"])
    assert booked.status_code == 200
    referral.refresh_from_db()
    assert referral.state == State.SCHEDULED and referral.appointment_at == when
    assert referral.location == seeded.location and referral.clinician == seeded.clinician
    assert referral.events.filter(action="schedule").exists()


def test_an_integration_cannot_reopen_a_declined_referral():
    seeded, client = world(), key_client("referrals.edit")
    referral = seeded.referral
    declined = _step(client, referral.pk, "decline", {"reason": "Out of network"}, etag=f'"referral-{referral.pk}-v1"')
    assert declined.status_code == 200
    refused = _step(client, referral.pk, "reopen", {"reason": "Insurance fixed"}, etag=declined["ETag"])
    assert refused.status_code == 403
    referral.refresh_from_db()
    assert referral.state == State.DECLINED


def test_lists_filter_and_page():
    seeded = world()
    other_source = seeded.office.physicians[1]
    old = factories.referral(source=other_source, received_at=timezone.now() - dt.timedelta(days=40), urgency="stat")
    for _ in range(3):
        factories.referral(source=other_source)
    client = key_client("referrals.view")

    def ids(query: str) -> list[int]:
        response = client.get(f"/api/referrals?{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["items"]]

    assert ids("urgency=stat") == [old.pk]
    assert ids(f"provider_npi={seeded.office.physicians[0].npi}") == [seeded.referral.pk]
    cutoff = (timezone.localdate() - dt.timedelta(days=30)).isoformat()
    assert ids(f"received_to={cutoff}") == [old.pk]
    assert old.pk not in ids(f"received_from={cutoff}")
    assert ids("state=accepted") == []
    overdue = ids("overdue=true")
    assert old.pk in overdue and seeded.referral.pk not in overdue
    first = client.get("/api/referrals?limit=2").json()
    assert (first["count"], len(first["items"]), first["next_offset"]) == (5, 2, 2)
    last = client.get("/api/referrals?limit=2&offset=4").json()
    assert len(last["items"]) == 1 and last["next_offset"] is None
    too_many = client.get("/api/referrals?limit=1000")
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "query.limit"


def test_every_read_of_patient_data_is_audited_with_who_read_it(client_as, users):
    seeded = world()
    client = key_client("referrals.view", name="Analytics")
    client.get(f"/api/referrals/{seeded.referral.pk}")
    client.get("/api/referrals")
    client.get(f"/api/patients/{seeded.referral.patient_id}")
    client.get("/api/patients?last_name=doe1")
    actions = list(AuditEvent.objects.filter(actor_label="Analytics").order_by("pk").values_list("action", flat=True))
    assert actions == ["api.referral.read", "api.referral.list", "api.patient.read", "api.patient.list"]
    listed = AuditEvent.objects.get(actor_label="Analytics", action="api.referral.list")
    assert listed.detail["ids"] == [seeded.referral.pk]
    client_as("clinician").get(f"/api/referrals/{seeded.referral.pk}")
    assert AuditEvent.objects.filter(actor=users["clinician"], action="api.referral.read").count() == 1
