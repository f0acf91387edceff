"""The audit page: search by patient, user, action and dates; export for an auditor; the search is itself audited."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.accounts.models import AuditEvent
from tests.referrals.factories import referral as make_referral

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(users):
    first = make_referral(patient_data={"first_name": "Ada", "last_name": "Quill", "birth_date": dt.date(1960, 1, 2),
                                        "mrn": "MRN-77"})
    second = make_referral(patient_data={"first_name": "Bo", "last_name": "Reed", "birth_date": dt.date(1970, 3, 4)})
    audit_record(actor=users["coordinator"], action="referral.view", target=first)
    audit_record(actor=users["clinician"], action="referral.view", target=second)
    audit_record(actor=users["clinician"], action="letters.report.view", target=first, detail={"note": "=HYPERLINK(1)"})
    return {"ada": first.patient, "bo": second.patient}


def test_an_admin_finds_every_access_to_one_patient_by_mrn(client_as, trail):
    client = client_as("admin")
    response = client.get("/account/audit/?patient=MRN-77")
    events = list(response.context["page"])
    assert {e.action for e in events} == {"patient.create", "referral.create", "referral.view", "letters.report.view"}
    assert all(e.patient_id == str(trail["ada"].pk) for e in events)


def test_a_patient_is_found_by_last_name_and_first(client_as, trail):
    events = client_as("admin").get("/account/audit/?patient=reed, bo").context["page"]
    assert {e.patient_id for e in events} == {str(trail["bo"].pk)}


def test_filters_by_user_action_and_dates(client_as, trail, users):
    client = client_as("admin")
    by_user = client.get("/account/audit/?user=clinician&action=referral.view").context["page"]
    assert [e.actor for e in by_user] == [users["clinician"]]
    by_prefix = client.get("/account/audit/?action=letters.*").context["page"]
    assert {e.action for e in by_prefix} == {"letters.report.view"}
    today = timezone.localdate()
    assert client.get(f"/account/audit/?date_from={today}&date_to={today}").context["page"].paginator.count > 0
    yesterday = today - dt.timedelta(days=1)
    assert client.get(f"/account/audit/?date_to={yesterday}").context["page"].paginator.count == 0


def test_a_from_date_after_the_to_date_is_named(client_as, trail):
    response = client_as("admin").get("/account/audit/?date_from=2026-05-02&date_to=2026-05-01")
    assert b"The From date is after the To date." in response.content
    assert response.context["page"] is None


def test_each_search_is_recorded_with_its_filters(client_as, trail, users):
    client_as("admin").get("/account/audit/?user=clinician")
    event = AuditEvent.objects.filter(action="audit.search").latest("seq")
    assert event.actor == users["admin"] and event.detail == {"user": "clinician"}


def test_only_an_administrator_opens_it(client_as, trail):
    for role in ("manager", "coordinator", "liaison", "clinician"):
        assert client_as(role).get("/account/audit/").status_code == 403
        assert client_as(role).get("/account/audit/export.csv").status_code == 403


def test_the_export_is_csv_oldest_first_formula_safe_and_audited(client_as, trail, users):
    response = client_as("admin").get("/account/audit/export.csv?patient=MRN-77")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["seq", "at_utc", "actor"] and header[-2:] == ["prev_hash", "hash"]
    seqs = [int(row[0]) for row in body]
    assert seqs == sorted(seqs) and len(body) == 4  # patient.create, referral.create, two views
    detail = [row[header.index("detail")] for row in body if row[header.index("action")] == "letters.report.view"]
    assert detail == ['{"note": "=HYPERLINK(1)"}']  # JSON opens with a brace: not a formula
    assert not any(cell.startswith(("=", "+", "@")) for row in body for cell in row)
    assert AuditEvent.objects.filter(action="audit.export", actor=users["admin"]).exists()


def test_a_cell_that_would_be_a_formula_is_neutralised(client_as, users):
    audit_record(actor=None, actor_label="=cmd|' /C calc'!A0", action="auth.login_failed")
    body = b"".join(client_as("admin").get("/account/audit/export.csv?action=auth.login_failed").streaming_content)
    assert "'=cmd|" in body.decode()


def test_the_cli_export_writes_the_same_columns(capsys, trail):
    from django.core.management import call_command

    call_command("audit", "export", "--action", "referral.view")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][0] == "seq" and {row[4] for row in rows[1:]} == {"referral.view"} and len(rows) == 3
