import pytest

from refloop.accounts.models import AuditEvent
from refloop.directory.models import ProviderPractice, ReferringProvider, ReportChannel, Tier
from tests.directory.factories import practice, provider

pytestmark = pytest.mark.django_db

NEW = {
    "first_name": "Grace",
    "last_name": "Okafor",
    "credentials": "DO",
    "npi": "1234567893",
    "report_channel": "fax",
    "fax": "(614) 555-0100",
    "is_active": "on",
}


def test_the_list_searches_by_part_of_a_name(client_as):
    provider(first_name="Ana", last_name="Silvestri")
    provider(first_name="Bob", last_name="Marsh")
    page = client_as("coordinator").get("/directory/?q=silv").content.decode()
    assert "Ana Silvestri, MD" in page
    assert "Bob Marsh" not in page


def test_search_as_you_type_returns_only_the_rows(client_as):
    provider(last_name="Silvestri")
    response = client_as("coordinator").get("/directory/?q=silv", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "Silvestri" in body
    assert "<html" not in body and 'class="table"' in body


def test_the_list_filters_by_npi_phone_tier_city_and_status(client_as):
    a = provider(last_name="Alpha", city="Dublin", postal_code="43017", phone="(614) 555-1111")
    b = provider(
        last_name="Beta", city="Hilliard", postal_code="43026", phone="(614) 555-2222", is_active=False
    )
    a.tier = Tier.objects.get(code="A")
    a.save()
    client = client_as("manager")

    def names(query):
        return {p.last_name for p in client.get(f"/directory/?{query}").context["page"]}

    assert names(f"q={a.npi}") == {"Alpha"}
    assert names("q=5552222") == {"Beta"}
    assert names("tier=A") == {"Alpha"}
    assert names("place=Hilliard") == {"Beta"}
    assert names("place=430") == {"Alpha", "Beta"}
    assert names("status=inactive") == {"Beta"}
    assert names("status=active") == {"Alpha"}
    assert b.pk


def test_a_coordinator_adds_a_provider(client_as):
    response = client_as("coordinator").post("/directory/providers/new/", NEW)
    assert response.status_code == 302
    created = ReferringProvider.objects.get(npi="1234567893")
    assert (created.first_name, created.last_name, created.source) == ("Grace", "Okafor", "manual")
    assert "okafor" in created.search_text and "1234567893" in created.search_text


def test_a_bad_npi_is_refused_with_the_reason(client_as):
    response = client_as("coordinator").post("/directory/providers/new/", {**NEW, "npi": "1234567890"})
    assert response.status_code == 200
    assert "fails its check digit" in response.content.decode()
    assert not ReferringProvider.objects.exists()


def test_an_npi_already_in_the_directory_is_refused(client_as):
    provider(npi="1234567893")
    response = client_as("coordinator").post("/directory/providers/new/", NEW)
    assert response.status_code == 200
    assert ReferringProvider.objects.count() == 1


def test_reports_by_direct_message_need_a_direct_address(client_as):
    response = client_as("coordinator").post("/directory/providers/new/", {**NEW, "report_channel": "direct"})
    assert response.status_code == 200
    assert "give a Direct address" in response.content.decode()


def test_editing_the_report_channel_marks_it_as_edited_by_hand(client_as):
    existing = provider()
    data = {
        **NEW,
        "npi": existing.npi,
        "report_channel": "email",
        "report_email": "dr@clinic.example",
        "version": existing.version,
    }
    response = client_as("liaison").post(f"/directory/providers/{existing.pk}/edit/", data)
    assert response.status_code == 302
    existing.refresh_from_db()
    assert existing.report_channel == ReportChannel.EMAIL
    assert existing.version == 2
    assert {"first_name", "last_name"} <= set(existing.manual_fields)
    assert "report_channel" not in existing.manual_fields  # not an imported field: the import never sets it


def test_a_stale_edit_is_refused_and_the_newer_change_kept(client_as):
    existing = provider()
    client = client_as("coordinator")
    first = {**NEW, "npi": existing.npi, "notes": "first", "version": 1}
    second = {**NEW, "npi": existing.npi, "notes": "second", "version": 1}
    assert client.post(f"/directory/providers/{existing.pk}/edit/", first).status_code == 302
    response = client.post(f"/directory/providers/{existing.pk}/edit/", second)
    assert response.status_code == 200
    assert "changed by someone else" in response.content.decode()
    existing.refresh_from_db()
    assert existing.notes == "first"


def test_a_clinician_may_look_but_not_edit(client_as):
    existing = provider()
    client = client_as("clinician")
    assert client.get(f"/directory/providers/{existing.pk}/").status_code == 200
    assert client.post(f"/directory/providers/{existing.pk}/edit/", {**NEW, "version": 1}).status_code == 403
    existing.refresh_from_db()
    assert existing.first_name == "Ana"


def test_the_provider_page_shows_practices_taxonomies_and_timeline(client_as):
    office = practice(name="Hilliard Primary Care")
    doc = provider()
    client = client_as("coordinator")
    pick = client.get(f"/directory/providers/{doc.pk}/practices/pick/?practice_q=hilliard")
    assert "Hilliard Primary Care" in pick.content.decode()
    response = client.post(
        f"/directory/providers/{doc.pk}/practices/add/",
        {"practice": office.pk, "days": ["mon", "thu"], "is_primary": "on"},
    )
    assert response.status_code == 302
    link = ProviderPractice.objects.get(provider=doc)
    assert (link.practice, link.days, link.is_primary) == (office, ["mon", "thu"], True)
    page = client.get(f"/directory/providers/{doc.pk}/").content.decode()
    assert "Hilliard Primary Care" in page and "Mon, Thu" in page
    assert "Added (entered by staff)" in page


def test_a_location_of_another_practice_is_refused(client_as):
    office, other = practice(name="One"), practice(name="Two", npi="")
    doc = provider()
    response = client_as("coordinator").post(
        f"/directory/providers/{doc.pk}/practices/add/",
        {"practice": office.pk, "location": other.locations.get().pk},
    )
    assert response.status_code == 302
    assert not ProviderPractice.objects.exists()


def test_the_csv_export_follows_the_filters_and_neutralizes_formulas(client_as):
    provider(last_name='=HYPERLINK("http://evil")', first_name="Eve")
    provider(last_name="Plain")
    response = client_as("manager").get("/directory/providers.csv?q=eve")
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert len(lines) == 2
    assert "'=HYPERLINK" in lines[1]
    assert AuditEvent.objects.filter(action="directory.export").count() == 1


def test_the_global_search_finds_providers_by_phone_and_practices_by_name(client_as):
    provider(last_name="Phoneman", phone="(614) 555-7788")
    practice(name="Scioto Family Practice")
    client = client_as("coordinator")
    assert "Phoneman" in client.get("/search/?q=614-555-7788").content.decode()
    assert "Scioto Family Practice" in client.get("/search/?q=scioto").content.decode()
