"""A template with an unknown field or broken syntax is refused when it is saved, not when a letter is due."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from refloop.accounts.models import AuditEvent
from refloop.letters import services
from refloop.letters.models import LetterTemplate

pytestmark = pytest.mark.django_db


def template_page(client, template, title, body):
    return client.post(
        f"/letters/templates/{template.pk}/", {"title": title, "body": body, "version": template.version}
    )


def test_an_unknown_field_is_refused_and_named(users, client_as):
    template = LetterTemplate.objects.get(kind="receipt")
    before = template.body
    response = template_page(client_as("manager"), template, "Referral received", "<p>{{ patient.nmae }}</p>")
    assert response.status_code == 400
    assert "Unknown field: {{ patient.nmae }}" in response.content.decode()
    template.refresh_from_db()
    assert template.body == before and template.version == 1


def test_an_unknown_field_behind_a_filter_is_refused_too(users):
    template = LetterTemplate.objects.get(kind="receipt")
    with pytest.raises(ValidationError, match=r"referral\.apointment"):
        services.template_save(
            template=template, title="x", body='{{ referral.apointment|date:"F j" }}', by=users["manager"]
        )


def test_broken_syntax_is_refused_with_its_line(users, client_as):
    template = LetterTemplate.objects.get(kind="scheduled")
    body = "<p>Dear {{ recipient.salutation }},</p>\n{% if referral.appointment %}<p>Booked.</p>\n"
    response = template_page(client_as("manager"), template, "Appointment scheduled", body)
    assert response.status_code == 400
    page = response.content.decode()
    assert "does not compile" in page and "line" in page and "endif" in page
    template.refresh_from_db()
    assert "{% if referral.appointment %}<p>Booked" not in template.body


def test_loading_a_tag_library_is_refused(users):
    template = LetterTemplate.objects.get(kind="free")
    with pytest.raises(ValidationError, match="does not compile"):
        services.template_save(template=template, title="x", body="{% load static %}{{ letter.text }}", by=None)


def test_a_good_template_is_saved_and_audited(users, client_as):
    template = LetterTemplate.objects.get(kind="receipt")
    body = "<p>Dear {{ recipient.salutation }}, we have {{ patient.name }} ({{ referral.number }}).</p>"
    response = template_page(client_as("manager"), template, "We have your referral", body)
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.body == body and template.title == "We have your referral" and template.version == 2
    assert AuditEvent.objects.filter(action="letters.template.save", actor=users["manager"]).exists()


def test_the_live_preview_shows_the_sample_letter_or_the_problem(users, client_as):
    template = LetterTemplate.objects.get(kind="receipt")
    client = client_as("manager")
    good = client.post(f"/letters/templates/{template.pk}/preview/", {"body": "<p>{{ patient.name }}</p>"})
    assert "Jordan Sample" in good.content.decode()
    assert 'srcdoc="&lt;!doctype html&gt;' in good.content.decode()  # the whole letter, escaped into the frame
    bad = client.post(f"/letters/templates/{template.pk}/preview/", {"body": "<p>{{ patient.nmae }}</p>"})
    assert "Unknown field" in bad.content.decode()


def test_every_default_template_passes_its_own_check():
    from refloop.letters.rendering import check_template

    for template in LetterTemplate.objects.all():
        check_template(template.body)


def test_a_coordinator_may_not_edit_templates(users, client_as):
    template = LetterTemplate.objects.get(kind="receipt")
    response = template_page(client_as("coordinator"), template, "x", "<p>x</p>")
    assert response.status_code == 403
