"""The referral's progress as a BSeR Task: status and businessStatus follow the loop, the sent consult report is a
DocumentReference (PDF inline) in Task.output, and Task is searched by focus, status and _lastUpdated."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.interop.fhir.resources import BSER_STATUS_SYSTEM, TASK_STATUS
from refloop.letters import services as letters
from refloop.referrals.models import Referral
from refloop.referrals.services import referral_transition
from tests.interop.fhir_helpers import api_key, fsh_instance, get
from tests.letters.conftest import ensure_letter_defaults
from tests.letters.factories import seen_referral
from tests.referrals.factories import clinician, location, referral

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(db):
    return api_key("referrals.view", "letters.view")


def task(client, key, item) -> dict:
    response = get(client, f"/fhir/Task/{item.pk}", key)
    assert response.status_code == 200, response.content
    return response.json()


def status_of(client, key, item) -> tuple[str, str]:
    body = task(client, key, item)
    coding = body["businessStatus"]["coding"][0]
    assert coding["system"] == BSER_STATUS_SYSTEM
    return body["status"], coding["code"]


def move(item, name, by, **data):
    return referral_transition(referral=item, name=name, by=by, data=data)


def schedule(item, by):
    when = timezone.now() + dt.timedelta(days=3)
    return move(item, "schedule", by, appointment_at=when, location=location(), clinician=clinician())


def test_the_task_follows_the_referral_around_the_loop(client, users, key):
    by = users["coordinator"]
    item = referral(by=by)
    assert status_of(client, key, item) == ("requested", "2.0")
    item = move(item, "accept", by)
    assert status_of(client, key, item) == ("accepted", "3.0")
    item = schedule(item, by)
    assert status_of(client, key, item) == ("in-progress", "5.1.1")
    assert task(client, key, item)["executionPeriod"]["start"].startswith(f"{item.appointment_at.year}-")
    item = move(item, "mark_no_show", by)
    assert status_of(client, key, item) == ("in-progress", "5.1.2")
    item = schedule(item, by)
    item = move(item, "cancel", by, reason="Patient ill")
    assert status_of(client, key, item) == ("in-progress", "5.1.3")
    item = move(item, "return_to_referrer", by, reason="Could not reschedule")
    assert status_of(client, key, item) == ("cancelled", "6.0")  # closed without being seen: nothing fulfilled


def test_declined_and_lost_referrals_say_so_with_the_reason(client, users, key):
    by = users["coordinator"]
    declined = move(referral(by=by), "decline", by, reason="Outside our scope")
    lost = move(referral(by=by), "mark_lost", by, lost_reason="went_elsewhere")
    assert status_of(client, key, declined) == ("rejected", "4.0")
    assert task(client, key, declined)["statusReason"]["text"] == "Outside our scope"
    assert status_of(client, key, lost) == ("cancelled", "6.0")
    assert task(client, key, lost)["statusReason"]["text"] == "Went elsewhere"


def test_every_business_status_is_a_code_of_the_bser_code_system_with_its_display(reference_dir):
    text = (reference_dir / "fhir/bser/TaskBusinessStatusCS.fsh").read_text()
    codes = dict(re.findall(r'^\* #([\d.]+) "([^"]+)"', text, re.M))
    for _status, code, display in TASK_STATUS.values():
        assert codes[code] == display
    example = fsh_instance(reference_dir / "fhir/bser/task-bser-referraltask.fsh")
    assert example["businessStatus"]["coding"][0]["system"] == BSER_STATUS_SYSTEM


def _sent_report(users):
    ensure_letter_defaults()
    doctor = clinician(user=users["clinician"])
    item = seen_referral(by=users["coordinator"], doctor=doctor)
    report = letters.report_save(referral=item, by=users["clinician"], data={
        "findings": "Medial joint line tenderness.", "assessment": "Meniscus tear.", "plan": "Physical therapy.",
        "recommendations": "NSAIDs as tolerated.", "is_final": True})  # fmt: skip
    report = letters.report_sign(report=report, by=users["clinician"])
    letters.report_send(report=report, by=users["clinician"])
    return move(item, "send_report", users["coordinator"]), report


def test_the_sent_consult_report_is_a_document_reference_in_the_task_output(client, users, key):
    item, report = _sent_report(users)
    body = task(client, key, item)
    assert (body["status"], body["businessStatus"]["coding"][0]["code"]) == ("completed", "7.0")
    assert body["output"][0]["valueReference"] == {"reference": f"DocumentReference/{report.pk}"}
    assert body["output"][0]["type"]["coding"][0]["code"] == "11488-4"

    response = get(client, f"/fhir/DocumentReference/{report.pk}", key)
    assert response.status_code == 200
    document = response.json()
    attachment = document["content"][0]["attachment"]
    pdf = base64.b64decode(attachment["data"])
    assert attachment["contentType"] == "application/pdf" and pdf.startswith(b"%PDF-")
    assert attachment["size"] == len(pdf)
    assert document["context"]["related"] == [{"reference": f"ServiceRequest/{item.pk}"}]
    assert document["author"][0]["identifier"]["value"] == report.clinician.npi
    assert AuditEvent.objects.filter(action="fhir.documentreference.read", target_id=str(report.pk)).count() == 1


def test_a_report_not_yet_sent_is_neither_in_the_output_nor_readable(client, users, key):
    ensure_letter_defaults()
    item = seen_referral(by=users["coordinator"], doctor=clinician(user=users["clinician"]))
    report = letters.report_save(referral=item, by=users["clinician"], data={"findings": "Draft", "is_final": True})
    assert "output" not in task(client, key, item)
    response = get(client, f"/fhir/DocumentReference/{report.pk}", key)
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def test_task_search_by_focus_status_and_last_updated(client, users, key):
    by = users["coordinator"]
    first, second, third = referral(by=by), referral(by=by), referral(by=by)
    move(second, "accept", by)
    Referral.objects.filter(pk=first.pk).update(updated_at=timezone.now() - dt.timedelta(days=10))

    def ids(**params):
        response = get(client, "/fhir/Task", key, **params)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["type"] == "searchset" and body["total"] == len(body.get("entry", []))
        return sorted(int(e["resource"]["id"]) for e in body.get("entry", []))

    assert ids(focus=f"ServiceRequest/{first.pk}") == [first.pk]
    assert ids(focus=f"{first.pk},{third.pk}") == sorted([first.pk, third.pk])
    assert ids(status="accepted") == [second.pk]
    assert ids(status="requested,accepted") == sorted([first.pk, second.pk, third.pk])
    week_ago = (timezone.now() - dt.timedelta(days=7)).date().isoformat()
    assert ids(_lastUpdated=f"lt{week_ago}") == [first.pk]
    assert ids(_lastUpdated=f"ge{week_ago}", status="requested") == [third.pk]
    assert ids(focus="ServiceRequest/999999") == []
    searches = list(AuditEvent.objects.filter(action="fhir.task.search").order_by("pk"))
    assert len(searches) == 7 and searches[-2].detail["referrals"] == [third.pk]
    assert {s.actor_label for s in searches} == {"ehr-referrals.view-letters.view"}


def test_task_search_pages_with_count_and_offset(client, users, key):
    made = sorted(referral(by=users["coordinator"]).pk for _ in range(3))
    page = get(client, "/fhir/Task", key, _count="2").json()
    assert page["total"] == 3 and len(page["entry"]) == 2
    following = next(link["url"] for link in page["link"] if link["relation"] == "next")
    rest = client.get(following, HTTP_AUTHORIZATION=f"Bearer {key}").json()
    seen = [int(e["resource"]["id"]) for e in page["entry"] + rest["entry"]]
    assert sorted(seen) == made


@pytest.mark.parametrize(
    ("params", "expression"),
    [({"patient": "Patient/1"}, "patient"), ({"status": "finished"}, "status"),
     ({"_lastUpdated": "gt2026-13-01"}, "_lastUpdated"), ({"focus": "Patient/1"}, "focus"),
     ({"_count": "many"}, "_count")],  # fmt: skip
)
def test_an_unsupported_search_is_refused_naming_the_parameter(client, key, params, expression):
    response = get(client, "/fhir/Task", key, **params)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == [expression]


def test_an_unknown_task_is_404_with_an_operation_outcome(client, key):
    for path in ("/fhir/Task/999999", "/fhir/Task/abc", "/fhir/ServiceRequest/999999", "/fhir/DocumentReference/x"):
        response = get(client, path, key)
        assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"
