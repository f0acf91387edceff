"""Two people open the same edit form and both save: the second is told (409, or a form error naming the
conflict) and nothing of theirs is written; the first person's values stay. One case per edit form in the app.

Each case builds the record, names the form's page and the field both people change; the form's own values
(hidden version or stamp included) are read from the page each client opened, as a browser would send them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Model
from django.utils import timezone

from refloop.accounts.roles import Role
from refloop.directory.models import OtherSource, Territory
from refloop.directory.services import other_source_save, staff_contact_save
from refloop.letters.models import ConsultReport, LetterTemplate
from refloop.outreach import services as outreach_services
from refloop.outreach.models import OutreachSettings, StarkLimit
from refloop.practice.models import Clinician, Practice, SecuritySettings
from tests.conftest import log_in_client, make_user
from tests.directory.factories import practice, provider
from tests.letters.factories import letterhead, seen_referral
from tests.outreach.factories import activity, office
from tests.referrals.factories import clinician, location, referral

pytestmark = pytest.mark.django_db

CONFLICT_WORDS = ("someone else", "changed by", "saved this")


@dataclass
class Case:
    """One edit form: `build(users)` returns (url of the form page, post url, the record, the role)."""

    name: str
    build: Callable[[dict], tuple[str, str, Model, str]]
    field: str
    first: str
    second: str
    form_key: str = "form"
    prefix: str = ""
    extra: dict = field(default_factory=dict)
    extra_after: Callable[[dict], dict] | None = None  # fields the page fills outside the form's initial
    read: Callable[[Model], object] | None = None  # how to read the field back (default: the attribute)


def _posted(form: forms.BaseForm) -> dict:
    """What a browser sends for an unbound form as rendered: every field's shown value, hidden ones included."""
    data: dict = {}
    for name, form_field in form.fields.items():
        bound = form[name]
        if isinstance(form_field, forms.FileField):
            continue
        value = bound.value()
        if isinstance(form_field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
            continue
        if isinstance(form_field, (forms.MultipleChoiceField, forms.ModelMultipleChoiceField)):
            data[bound.html_name] = [str(v) for v in (value or [])]
            continue
        data[bound.html_name] = "" if value is None else str(value)
    return data


# The records behind each form


def _provider(users):
    entry = provider()
    return f"/directory/providers/{entry.pk}/edit/", None, entry, "coordinator"


def _directory_practice(users):
    entry = practice()
    return f"/directory/practices/{entry.pk}/edit/", None, entry, "coordinator"


def _directory_location(users):
    entry = practice().locations.first()
    return f"/directory/locations/{entry.pk}/edit/", None, entry, "coordinator"


def _staff(users):
    entry = practice()
    from refloop.directory.models import StaffContact

    contact = staff_contact_save(contact=StaffContact(practice=entry, first_name="Rosa", last_name="Imbert"))
    return f"/directory/staff/{contact.pk}/edit/", None, contact, "liaison"


def _other_source(users):
    source = other_source_save(source=OtherSource(kind="campaign", name="Spring mailer"))
    return f"/directory/sources/{source.pk}/edit/", None, source, "coordinator"


def _activity(users):
    place = office(physicians=1)
    logged = activity(by=users["liaison"], kind="visit", practice=place.practice, purpose="Say hello")
    return f"/outreach/activities/{logged.activity.pk}/edit/", None, logged.activity, "liaison"


def _activity_practice(case_users):
    """The activity page picks its practice by type-ahead (not a form initial): sent as the page shows it."""
    from refloop.outreach.models import Activity

    return {"practice": str(Activity.objects.get().practice_id)}


def _concern(users):
    opened = outreach_services.concern_open(practice=practice(), summary="Reports arrive late", by=users["liaison"])
    return f"/outreach/concerns/{opened.pk}/", f"/outreach/concerns/{opened.pk}/update/", opened, "liaison"


def _outreach_settings(users):
    return "/outreach/settings/edit/", None, OutreachSettings.current(), "manager"


def _stark_limit(users):
    year = timezone.localdate().year
    row = StarkLimit.objects.filter(year=year).first()
    if row is None:
        row = StarkLimit.objects.create(year=year, amount=Decimal("507.00"))
    return f"/outreach/compliance/limits/{year}/", None, row, "admin"


def _reassign(users):
    entry = practice()
    Territory.objects.create(name="North", liaison=users["liaison"])
    Territory.objects.create(name="South")
    return f"/outreach/practices/{entry.pk}/reassign/", None, entry, "manager"


def _letter_template(users):
    template = LetterTemplate.objects.order_by("pk").first()
    return f"/letters/templates/{template.pk}/", None, template, "manager"


def _report_draft(users):
    item = seen_referral(by=users["coordinator"], doctor=clinician(user=users["clinician"]))
    from refloop.letters import services as letter_services

    draft = letter_services.report_save(referral=item, data={"assessment": "First look"}, by=users["clinician"])
    return f"/letters/referrals/{item.pk}/report/", None, draft, "clinician"


def _practice_profile(users):
    letterhead()
    return "/settings/practice/", None, Practice.current(), "manager"


def _practice_location(users):
    place = location()
    return f"/settings/locations/{place.pk}/", None, place, "manager"


def _clinician(users):
    doctor = clinician()
    return f"/settings/clinicians/{doctor.pk}/", None, doctor, "manager"


def _territory(users):
    territory = Territory.objects.create(name="East", description="Old text")
    return f"/settings/territories/{territory.pk}/", None, territory, "manager"


def _security(users):
    current = SecuritySettings.current()
    current.save()
    return "/settings/security/", None, current, "admin"


def _user(users):
    person = make_user("jordan", Role.COORDINATOR)
    return f"/settings/users/{person.pk}/", None, person, "admin"


def _assign(users):
    item = referral(by=users["coordinator"])
    make_user("second_coordinator", Role.COORDINATOR)
    return f"/referrals/{item.pk}/", f"/referrals/{item.pk}/assign/", item, "coordinator"


def _move(users):
    item = referral(by=users["coordinator"])
    return f"/referrals/{item.pk}/move/decline/", None, item, "coordinator"


def _coordinator_named(username):
    return str(get_user_model().objects.get(username=username).pk)


CASES = [
    Case("directory provider", _provider, "notes", "Prefers fax", "Prefers email"),
    Case("directory practice", _directory_practice, "notes", "Lunch on Tuesdays", "Lunch on Fridays"),
    Case("directory practice location", _directory_location, "label", "Main office", "Annex"),
    Case("directory staff contact", _staff, "interests", "Gardening", "Chess"),
    Case("directory other source", _other_source, "name", "Spring mailer 2026", "Spring flyer"),
    Case(
        "outreach activity",
        _activity,
        "purpose",
        "Introduce the hand surgeon",
        "Drop off pens",
        extra_after=_activity_practice,
    ),
    Case("outreach concern", _concern, "resolution", "Called the office manager", "Sent an apology"),
    Case(
        "outreach settings",
        _outreach_settings,
        "warn_percent",
        "70",
        "90",
        extra={"thank_you_milestones": "10, 25, 50, 100"},
    ),
    Case("compliance limit", _stark_limit, "source_note", "CMS 2026 update", "From the newsletter"),
    Case(
        "outreach practice reassign",
        _reassign,
        "territory",
        "North",
        "South",
        read=lambda entry: entry.territory.name if entry.territory else None,
    ),
    Case("letter template", _letter_template, "title", "Thank you, doctor", "Many thanks"),
    Case(
        "consult report draft",
        _report_draft,
        "assessment",
        "Meniscus tear",
        "Ligament sprain",
        read=lambda draft: ConsultReport.objects.get(referral=draft.referral).assessment,
    ),
    Case("practice profile", _practice_profile, "phone", "(614) 555-0101", "(614) 555-0199"),
    Case("practice location", _practice_location, "hours", "Mon-Fri 8-5", "Mon-Thu 7-6"),
    Case("clinician", _clinician, "specialty", "Hand surgery", "Sports medicine"),
    Case("territory", _territory, "description", "Northern suburbs", "Downtown"),
    Case("security settings", _security, "idle_logoff_minutes", "20", "45"),
    Case("user", _user, "phone", "(614) 555-0111", "(614) 555-0122"),
    Case(
        "referral assign",
        _assign,
        "coordinator",
        "coordinator",
        "second_coordinator",
        form_key="assign_form",
        read=lambda item: item.coordinator.username if item.coordinator else None,
    ),
    Case(
        "referral move",
        _move,
        "reason",
        "Out of network",
        "Needs a different specialty",
        form_key="move_form",
        prefix="move-",
        read=lambda item: item.decline_reason,
    ),
]

CHOICE_VALUES = {
    "territory": lambda value: str(Territory.objects.get(name=value).pk),
    "coordinator": _coordinator_named,
}


def _fill(data: dict, case: Case, value: str) -> dict:
    name = f"{case.prefix}{case.field}"
    converted = CHOICE_VALUES[case.field](value) if case.field in CHOICE_VALUES else value
    after = case.extra_after(data) if case.extra_after else {}
    return data | case.extra | after | {name: converted}


def _read(case: Case, record: Model):
    fresh = type(record)._base_manager.get(pk=record.pk)
    return case.read(fresh) if case.read else str(getattr(fresh, case.field))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_second_of_two_people_saving_the_same_form_is_told_and_the_first_save_stays(users, case):
    form_url, post_url, record, role = case.build(users)
    post_url = post_url or form_url
    first, second = log_in_client(users[role]), log_in_client(users[role])  # two people, two open pages
    opened = []
    for client in (first, second):
        page = client.get(form_url)
        assert page.status_code == 200, page.content[:300]
        opened.append(_posted(page.context[case.form_key]))

    saved = first.post(post_url, _fill(opened[0], case, case.first))
    assert saved.status_code == 302, saved.context[case.form_key].errors if saved.context else saved.status_code
    assert _read(case, record) == case.first

    refused = second.post(post_url, _fill(opened[1], case, case.second))
    page = refused.content.decode()
    assert refused.status_code == 409 or (
        refused.status_code in (200, 400) and any(words in page for words in CONFLICT_WORDS)
    ), f"{refused.status_code}: the second save was not refused"
    assert any(words in page for words in CONFLICT_WORDS), "the conflict is not named on the page"
    assert _read(case, record) == case.first  # the first person's value stays: nothing silently overwritten


def test_a_form_opened_after_the_other_save_goes_through(users):
    """The check refuses only a stale page: reloading and saving again works."""
    territory = Territory.objects.create(name="West", description="Old")
    client = log_in_client(users["manager"])
    url = f"/settings/territories/{territory.pk}/"
    stale = _posted(client.get(url).context["form"])
    client.post(url, stale | {"description": "First"})
    assert client.post(url, stale | {"description": "Second"}).status_code == 409
    fresh = _posted(client.get(url).context["form"])
    assert client.post(url, fresh | {"description": "Second"}).status_code == 302
    territory.refresh_from_db()
    assert territory.description == "Second"


def test_the_first_of_two_people_writing_a_new_consult_report_wins(users):
    """No draft when both opened the page: the second save would otherwise overwrite the first's draft."""
    item = seen_referral(by=users["coordinator"], doctor=clinician(user=users["clinician"]))
    url = f"/letters/referrals/{item.pk}/report/"
    first, second = log_in_client(users["clinician"]), log_in_client(users["clinician"])
    forms_opened = [_posted(c.get(url).context["form"]) for c in (first, second)]
    assert first.post(url, forms_opened[0] | {"assessment": "Mine"}).status_code == 302
    refused = second.post(url, forms_opened[1] | {"assessment": "Theirs"})
    assert refused.status_code == 409 and "someone else" in refused.content.decode()
    assert list(ConsultReport.objects.filter(referral=item).values_list("assessment", flat=True)) == ["Mine"]


def test_a_clinician_edit_keeps_the_check_for_models_without_a_timestamp(users):
    """Clinician has neither version nor updated_at: its stamp is a digest of its saved columns."""
    doctor = clinician()
    Clinician.objects.filter(pk=doctor.pk).update(specialty="Before")
    client = log_in_client(users["manager"])
    url = f"/settings/clinicians/{doctor.pk}/"
    opened = _posted(client.get(url).context["form"])
    Clinician.objects.filter(pk=doctor.pk).update(specialty="Changed behind the page")
    assert client.post(url, opened | {"specialty": "Mine"}).status_code == 409
    assert Clinician.objects.get(pk=doctor.pk).specialty == "Changed behind the page"


def test_the_second_save_of_the_letter_rules_page_is_refused_and_the_first_switches_stay(users):
    """The automatic-letter switches are one page of many records: the page carries one stamp for all."""
    from refloop.letters.models import LetterRule

    rules = list(LetterRule.objects.order_by("pk"))
    assert len(rules) >= 2
    first, second = log_in_client(users["manager"]), log_in_client(users["manager"])
    stamps = [c.get("/letters/automation/").context["edit_stamp"] for c in (first, second)]
    saved = first.post("/letters/automation/", {"edit_stamp": stamps[0], "enabled": [rules[0].pk]})
    assert saved.status_code == 302
    refused = second.post("/letters/automation/", {"edit_stamp": stamps[1], "enabled": [rules[1].pk]})
    assert refused.status_code == 409 and "Someone else changed these letter rules" in refused.content.decode()
    assert set(LetterRule.objects.filter(enabled=True).values_list("pk", flat=True)) == {rules[0].pk}


def test_the_second_bulk_assign_from_a_stale_queue_is_refused_and_the_first_stays(users):
    """The work queue's bulk assign carries each row's version: a row changed since is not reassigned."""
    item = referral(by=users["coordinator"])
    other = make_user("second_coordinator", Role.COORDINATOR)
    first, second = log_in_client(users["coordinator"]), log_in_client(users["manager"])
    versions = []
    for client in (first, second):
        page = client.get("/referrals/", {"scope": "all"})
        assert item.pk in [row.pk for row in page.context["page"].object_list]
        assert f'name="version-{item.pk}" value="{item.version}"' in page.content.decode()
        versions.append(str(item.version))
    saved = first.post(
        "/referrals/assign/",
        {"referral": [item.pk], "coordinator": users["coordinator"].pk, f"version-{item.pk}": versions[0]},
    )
    assert saved.status_code == 302
    refused = second.post(
        "/referrals/assign/",
        {"referral": [item.pk], "coordinator": other.pk, f"version-{item.pk}": versions[1]},
        follow=True,
    )
    assert f"#{item.pk} changed after you opened the queue (someone else saved first)" in refused.content.decode()
    item.refresh_from_db()
    assert item.coordinator == users["coordinator"]
