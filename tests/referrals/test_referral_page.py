"""The referral page: what it shows, each step of the loop made from it, refusals, documents, the audit trail."""

import datetime as dt
import hashlib
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from refloop.accounts.models import AuditEvent
from refloop.accounts.roles import Role
from refloop.referrals.models import Attachment, Referral
from refloop.referrals.workflow import State
from tests.conftest import make_user
from tests.referrals.factories import clinician, location, referral

pytestmark = pytest.mark.django_db


def small_pdf() -> bytes:
    """A real one-page PDF (what a fax server sends), built by hand with a correct cross-reference table."""
    text = b"BT /F1 12 Tf 72 720 Td (Referral for evaluation) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def small_png() -> bytes:
    """A real 2x2 red PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b"")


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.STORAGES = settings.STORAGES | {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}}
    }


def url(item: Referral, tail: str = "") -> str:
    return f"/referrals/{item.pk}/{tail}"


def move(client, item: Referral, name: str, data: dict | None = None, version: int | None = None):
    fields = {f"move-{k}": v for k, v in (data or {}).items()}
    fields["move-version"] = item.version if version is None else version
    return client.post(url(item, f"move/{name}/"), fields)


def step_data(name: str) -> dict:
    appointment = timezone.localtime() + dt.timedelta(days=3 if name == "schedule" else 4)
    booking = {
        "appointment_at": appointment.strftime("%Y-%m-%dT%H:%M"),
        "location": location().pk,
        "clinician": clinician().pk,
    }
    return {
        "schedule": booking,
        "reschedule": booking,
        "decline": {"reason": "Not a surgical candidate"},
        "cancel": {"reason": "Patient is travelling"},
        "return_to_referrer": {"reason": "Could not rebook after two no-shows"},
        "send_back": {"follow_up": "Back to Dr Silvestri; recheck in 6 weeks."},
        "mark_lost": {"lost_reason": "went_elsewhere"},
        "reopen": {"reason": "Patient called back"},
    }.get(name, {})


def test_the_page_shows_the_patient_the_source_the_history_and_the_next_action(users, client_as):
    item = referral(
        by=users["coordinator"],
        patient_data={
            "first_name": "Mira",
            "last_name": "Quayle",
            "birth_date": dt.date(1961, 4, 9),
            "mrn": "MRN-4471",
            "phone": "614-555-0190",
            "payer": "Buckeye Health",
            "member_id": "ZX9981",
        },
        diagnosis_codes="M25.561, S83.511A",
        urgency="urgent",
        authorization_number="AUTH-77",
    )
    html = client_as("coordinator").get(url(item)).content.decode()
    assert "<h1>Mira Quayle</h1>" in html
    for fact in ["Apr 9, 1961", "MRN-4471", "614-555-0190", "Buckeye Health", "ZX9981", "M25.561, S83.511A", "AUTH-77"]:
        assert fact in html
    assert f'href="/directory/providers/{item.referring_provider_id}/"' in html
    assert "Next: Contact the patient and triage" in html
    assert '<button type="submit" class="primary" data-move="accept">Accept</button>' in html
    assert 'data-move="decline">Decline</a>' in html  # a secondary move, with a form for its reason
    assert "Received</strong>" in html and "coordinator" in html


def test_each_view_of_the_page_is_audited(users, client_as):
    item = referral(by=users["coordinator"])
    client = client_as("clinician")
    client.get(url(item))
    client.get(url(item))
    views = AuditEvent.objects.filter(action="referral.view", target_id=str(item.pk))
    assert views.count() == 2 and {v.actor for v in views} == {users["clinician"]}


@pytest.mark.parametrize(
    "steps",
    [
        ["accept", "schedule", "reschedule", "mark_no_show", "schedule", "cancel", "return_to_referrer"],
        ["accept", "schedule", "mark_seen", "send_report", "send_back"],
        ["decline"],
        ["accept", "mark_lost"],
    ],
)
def test_each_move_through_the_page_changes_the_state_and_writes_an_event(steps, users, client_as):
    from refloop.referrals.workflow import TRANSITIONS

    coordinator = users["coordinator"]
    client = client_as("coordinator")
    item = referral(by=coordinator)
    for name in steps:
        before = item.state
        response = move(client, item, name, step_data(name))
        assert response.status_code == 302, response.content.decode()[:2000]
        item.refresh_from_db()
        assert item.state == TRANSITIONS[name].target
        event = item.events.order_by("-pk").first()
        assert (event.action, event.from_state, event.to_state, event.by) == (name, before, item.state, coordinator)
    assert item.events.count() == len(steps) + 1


def test_a_manager_reopens_a_lost_referral_from_the_page(users, client_as):
    item = referral(by=users["coordinator"])
    coordinator = client_as("coordinator")
    move(coordinator, item, "mark_lost", step_data("mark_lost"))
    item.refresh_from_db()
    assert move(coordinator, item, "reopen", step_data("reopen")).status_code == 409
    assert move(client_as("manager"), item, "reopen", step_data("reopen")).status_code == 302
    item.refresh_from_db()
    assert item.state == State.RECEIVED and item.events.last().note == "Patient called back"


def test_the_schedule_form_saves_the_appointment_in_the_practice_s_time(users, client_as):
    item = referral(by=users["coordinator"])
    client = client_as("coordinator")
    move(client, item, "accept")
    item.refresh_from_db()
    when = (timezone.localdate() + dt.timedelta(days=4)).isoformat() + "T10:30"
    response = move(
        client, item, "schedule", {"appointment_at": when, "location": location().pk, "clinician": clinician().pk}
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert timezone.localtime(item.appointment_at).strftime("%Y-%m-%dT%H:%M") == when
    assert item.location == location() and item.clinician == clinician()
    assert item.due_at == item.appointment_at


def test_an_illegal_move_is_refused_with_the_reason_and_nothing_changes(users, client_as):
    item = referral(by=users["coordinator"])
    response = move(client_as("coordinator"), item, "mark_seen")
    assert response.status_code == 409
    assert "A referral that is received cannot be “Mark seen” (only when scheduled)." in response.content.decode()
    item.refresh_from_db()
    assert item.state == State.RECEIVED and item.version == 1 and item.events.count() == 1


def test_a_move_the_role_may_not_make_is_refused(users, client_as):
    item = referral(by=users["coordinator"])
    move(client_as("coordinator"), item, "accept")
    item.refresh_from_db()
    response = move(client_as("clinician"), item, "schedule", step_data("schedule"))
    assert response.status_code == 409 and "Your role may not “Schedule” a referral." in response.content.decode()
    item.refresh_from_db()
    assert item.state == State.ACCEPTED


def test_a_move_on_a_page_opened_before_someone_else_s_change_is_refused(users, client_as):
    item = referral(by=users["coordinator"])
    opened_version = item.version
    move(client_as("manager"), item, "accept")
    response = move(client_as("coordinator"), item, "decline", {"reason": "Out of network"}, version=opened_version)
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()
    item.refresh_from_db()
    assert item.state == State.ACCEPTED and item.decline_reason == ""


def test_a_move_without_its_required_fields_names_them_and_changes_nothing(users, client_as):
    item = referral(by=users["coordinator"])
    response = move(client_as("coordinator"), item, "decline", {"reason": ""})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    item.refresh_from_db()
    assert item.state == State.RECEIVED


def test_a_move_with_a_garbled_form_is_refused_not_a_crash(users, client_as):
    item = referral(by=users["coordinator"])
    client = client_as("coordinator")
    assert client.post(url(item, "move/accept/"), {"move-version": "abc"}).status_code == 400
    assert client.post(url(item, "move/no_such_step/"), {"move-version": 1}).status_code == 404
    move(client, item, "accept")
    item.refresh_from_db()
    response = move(client, item, "schedule", {"appointment_at": "tomorrow", "location": 999, "clinician": ""})
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.state == State.ACCEPTED


def test_the_move_form_arrives_as_a_partial_for_htmx(users, client_as):
    item = referral(by=users["coordinator"])
    client = client_as("coordinator")
    move(client, item, "accept")
    response = client.get(url(item, "move/schedule/"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "<html" not in html
    assert 'type="datetime-local" name="move-appointment_at"' in html
    assert 'name="move-location"' in html and 'name="move-clinician"' in html and 'name="move-version"' in html
    full = client.get(url(item, "move/schedule/")).content.decode()
    assert "<h1>" in full and 'name="move-appointment_at"' in full


def test_a_contact_is_logged_and_stops_the_first_contact_clock(users, client_as):
    item = referral(by=users["coordinator"])
    response = client_as("coordinator").post(url(item, "contact/"), {"contact-note": "Left a voicemail"})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.first_contact_at is not None
    event = item.events.last()
    assert (event.action, event.note, event.by) == ("contact", "Left a voicemail", users["coordinator"])


def test_a_contact_on_a_closed_referral_is_refused(users, client_as):
    item = referral(by=users["coordinator"])
    client = client_as("coordinator")
    move(client, item, "decline", {"reason": "Out of network"})
    response = client.post(url(item, "contact/"), {"contact-note": "Called"})
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.events.count() == 2


def test_the_coordinator_is_reassigned_from_the_page(users, client_as):
    colleague = make_user("colleague", Role.COORDINATOR)
    item = referral(by=users["coordinator"])
    response = client_as("manager").post(url(item, "assign/"), {"assign-coordinator": colleague.pk})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.coordinator == colleague and item.owner == colleague
    assert item.events.last().action == "assign"


def test_a_clinician_sees_the_page_but_not_the_coordinator_s_forms(users, client_as):
    item = referral(by=users["coordinator"])
    client = client_as("clinician")
    html = client.get(url(item)).content.decode()
    assert 'id="contact"' not in html and 'id="assign"' not in html
    assert client.post(url(item, "contact/"), {"contact-note": "x"}).status_code == 403


def test_a_liaison_cannot_open_a_referral(users, client_as):
    item = referral(by=users["coordinator"])
    assert client_as("liaison").get(url(item)).status_code == 403
    assert not AuditEvent.objects.filter(action="referral.view").exists()


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [("fax-0412.pdf", small_pdf(), "application/pdf"), ("knee.png", small_png(), "image/png")],
)
def test_a_real_pdf_or_png_is_attached_with_its_hash(name, content, kind, users, client_as):
    item = referral(by=users["coordinator"])
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    response = client_as("coordinator").post(url(item, "attachments/"), {"attach-files": upload})
    assert response.status_code == 302
    attachment = Attachment.objects.get(referral=item)
    assert (attachment.original_name, attachment.content_type, attachment.size) == (name, kind, len(content))
    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert attachment.uploaded_by == users["coordinator"]
    with attachment.file.open("rb") as stored:
        assert stored.read() == content
    assert item.events.last().action == "attach"
    html = client_as("coordinator").get(url(item)).content.decode()
    assert name in html and ("PDF" if kind == "application/pdf" else "PNG") in html


def test_a_text_file_named_pdf_is_refused_and_not_stored(users, client_as, tmp_path):
    item = referral(by=users["coordinator"])
    fake = SimpleUploadedFile("referral.pdf", b"Dear Doctor, please see my patient.\n", content_type="application/pdf")
    response = client_as("coordinator").post(url(item, "attachments/"), {"attach-files": fake})
    assert response.status_code == 400
    assert "referral.pdf is not a PDF, PNG, JPEG or TIFF file" in response.content.decode()
    assert not Attachment.objects.exists() and not any(tmp_path.rglob("*.*"))


def test_a_document_over_20_mb_is_refused(users, client_as):
    item = referral(by=users["coordinator"])
    big = SimpleUploadedFile("scan.pdf", b"%PDF-1.4\n" + b"0" * (20 * 1024 * 1024), content_type="application/pdf")
    response = client_as("coordinator").post(url(item, "attachments/"), {"attach-files": big})
    assert response.status_code == 400
    assert "scan.pdf is over the 20 MB limit for attachments (20.0 MB)" in response.content.decode()
    assert not Attachment.objects.exists()


def test_the_same_document_twice_is_refused(users, client_as):
    item = referral(by=users["coordinator"])
    client = client_as("coordinator")
    client.post(url(item, "attachments/"), {"attach-files": SimpleUploadedFile("a.pdf", small_pdf())})
    response = client.post(url(item, "attachments/"), {"attach-files": SimpleUploadedFile("b.pdf", small_pdf())})
    assert response.status_code == 400 and "already attached to this referral (as a.pdf)" in response.content.decode()
    assert Attachment.objects.count() == 1


def test_a_download_is_audited_and_served_as_a_file(users, client_as):
    item = referral(by=users["coordinator"])
    client_as("coordinator").post(
        url(item, "attachments/"), {"attach-files": SimpleUploadedFile("fax.pdf", small_pdf())}
    )
    attachment = Attachment.objects.get()
    response = client_as("clinician").get(url(item, f"attachments/{attachment.pk}/"))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == small_pdf()
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;") and "fax.pdf" in response["Content-Disposition"]
    audit = AuditEvent.objects.get(action="referral.attachment.download")
    assert audit.actor == users["clinician"] and audit.target_id == str(item.pk)
    assert audit.detail == {"attachment": attachment.pk}


def test_a_document_is_only_found_under_its_own_referral(users, client_as):
    item, other = referral(by=users["coordinator"]), referral(by=users["coordinator"])
    client_as("coordinator").post(
        url(item, "attachments/"), {"attach-files": SimpleUploadedFile("fax.pdf", small_pdf())}
    )
    attachment = Attachment.objects.get()
    assert client_as("coordinator").get(url(other, f"attachments/{attachment.pk}/")).status_code == 404
    assert client_as("liaison").get(url(item, f"attachments/{attachment.pk}/")).status_code == 403
    assert not AuditEvent.objects.filter(action="referral.attachment.download").exists()


def test_the_source_s_directory_pages_list_the_referral_with_initials_only(users, client_as):
    from refloop.directory.services import affiliation_set
    from tests.directory.factories import practice, provider

    source, office = provider(), practice()
    affiliation_set(provider=source, practice=office, is_primary=True)
    item = referral(
        by=users["coordinator"],
        source=source,
        patient_data={"first_name": "Mira", "last_name": "Quayle", "birth_date": dt.date(1961, 4, 9)},
    )
    for page in (f"/directory/providers/{source.pk}/", f"/directory/practices/{office.pk}/"):
        html = client_as("manager").get(page).content.decode()
        assert f'<a href="/referrals/{item.pk}/">Referral #{item.pk} · M.Q.</a>' in html
        # The date of birth in any form a page shows it (not "1961" alone: on PostgreSQL an id can read 1961).
        assert "Received" in html and "Quayle" not in html
        assert not any(day in html for day in ("1961-04-09", "04/09/1961", "Apr 9, 1961", "April 9, 1961"))
        assert f"/referrals/{item.pk}/" not in client_as("liaison").get(page).content.decode()
