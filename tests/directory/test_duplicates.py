"""Finding probable duplicate providers and practices, and the page that lists them."""

from __future__ import annotations

import pytest

from bench.bench_duplicates import generate
from refloop.directory import duplicates, services
from refloop.directory.duplicates import find_duplicate_practices, find_duplicate_providers
from refloop.directory.merge import provider_merge
from refloop.directory.models import ReferringPractice, ReferringProvider
from refloop.lib.npi import make_npi

pytestmark = pytest.mark.django_db

NPI_A = make_npi("123456789")
NPI_B = make_npi("198765432")


def provider(first_name: str, last_name: str, **fields) -> ReferringProvider:
    return services.provider_create(first_name=first_name, last_name=last_name, **fields)


def at_the_office(**fields) -> dict:
    return {"address_line1": "410 W 10th Avenue", "city": "Columbus", "state": "OH", "postal_code": "43210",
            "phone": "(614) 555-0100", **fields}  # fmt: skip


def practice(name: str, **fields) -> ReferringPractice:
    location = fields.pop("location", None)
    return services.practice_create(name=name, location=location, **fields)


def pairs_of(found) -> set[frozenset[int]]:
    return {frozenset((p.keep_id, p.remove_id)) for p in found}


class TestProviders:
    def test_a_record_without_npi_matches_the_one_with_it_by_name_and_phone(self):
        full = provider("Adaeze", "Okafor", npi=NPI_A, **at_the_office())
        typed = provider("Adaeze", "Okafr", phone="614.555.0100")
        [pair] = find_duplicate_providers()
        assert (pair.keep_id, pair.remove_id) == (full.pk, typed.pk)
        assert pair.score >= duplicates.MIN_SCORE
        assert "same phone" in pair.reasons
        assert "only one has an NPI" in pair.reasons
        assert any(reason.startswith("name ") and reason.endswith("% similar") for reason in pair.reasons)

    def test_an_initial_at_the_same_address_matches(self):
        provider("Christina", "Johnson", npi=NPI_A, **at_the_office(phone=""))
        provider("C", "Johnson", **at_the_office(phone="", address_line1="410 West 10th Ave"))
        [pair] = find_duplicate_providers()
        assert "same address" in pair.reasons

    def test_a_nickname_with_the_fax_matches(self):
        provider("William", "Price", fax="614-555-0199")
        provider("Bill", "Price", fax="(614) 555-0199")
        [pair] = find_duplicate_providers()
        assert "same fax" in pair.reasons

    def test_a_stub_with_only_a_name_matches_the_full_record(self):
        provider("Adaeze", "Okafor", npi=NPI_A, **at_the_office())
        provider("Adaeze", "Okafor")
        [pair] = find_duplicate_providers()
        assert "no address or phone on one record" in pair.reasons

    def test_colleagues_sharing_the_office_phone_and_address_are_not_listed(self):
        provider("Matthew", "Perkins", **at_the_office())
        provider("Matthew", "Sparks", **at_the_office())
        provider("Priya", "Raman", **at_the_office())
        assert find_duplicate_providers() == []

    def test_a_couple_at_one_office_is_not_listed(self):
        provider("Jane", "Smith", **at_the_office())
        provider("John", "Smith", **at_the_office())
        assert find_duplicate_providers() == []

    def test_two_npis_are_two_people(self):
        provider("Adaeze", "Okafor", npi=NPI_A, **at_the_office())
        provider("Adaeze", "Okafor", npi=NPI_B, **at_the_office())
        assert find_duplicate_providers() == []

    def test_namesakes_in_different_towns_are_not_listed(self):
        provider("Michael", "Smith", **at_the_office())
        provider(
            "Michael", "Smith", address_line1="9 Main St", city="Dayton", state="OH", postal_code="45402"
        )
        assert find_duplicate_providers() == []

    def test_merged_records_are_not_listed_again(self, users):
        keep = provider("Adaeze", "Okafor", npi=NPI_A, **at_the_office())
        remove = provider("Adaeze", "Okafr", phone="614.555.0100")
        provider_merge(keep=keep, remove=remove, by=users["manager"])
        assert find_duplicate_providers() == []

    def test_the_limit_keeps_the_likeliest(self):
        for last in ["Okafor", "Lindqvist", "Abernathy"]:
            provider("Adaeze", last, phone=f"614-555-{len(last):04d}")
            provider("Adaeze", last, phone=f"614-555-{len(last):04d}", postal_code="43210")
        found = find_duplicate_providers(limit=2)
        assert len(found) == 2
        assert found[0].score >= found[1].score


class TestPractices:
    def test_a_practice_typed_another_way_with_the_same_phone_matches(self):
        full = practice(
            "Columbus Orthopaedic Associates, LLC",
            npi=make_npi("212345678"),
            location=at_the_office(),
        )
        typed = practice("Columbus Orthopaedic Assoc.", phone="614 555 0100")
        [pair] = find_duplicate_practices()
        assert (pair.keep_id, pair.remove_id) == (full.pk, typed.pk)
        assert "same phone" in pair.reasons

    def test_a_practice_matches_on_any_of_its_locations(self):
        main = practice("Riverside Pediatrics", location=at_the_office())
        services.location_save(
            location=main.locations.model(
                practice=main, address_line1="22 Oak Street", city="Dublin", state="OH", postal_code="43017"
            )
        )
        practice("Riverside Pediatric", location={"address_line1": "22 Oak St", "postal_code": "43017"})
        [pair] = find_duplicate_practices()
        assert "same address" in pair.reasons

    def test_different_offices_in_one_building_are_not_listed(self):
        practice("Riverside Cardiology Associates", location=at_the_office(phone="614-555-0101"))
        practice("Riverside Dermatology Associates", location=at_the_office(phone="614-555-0102"))
        assert find_duplicate_practices() == []

    def test_a_generic_word_more_or_less_is_the_same_office(self):
        practice("Riverside Pediatrics", location=at_the_office())
        practice("Riverside Pediatric Associates", location=at_the_office(phone=""))
        [pair] = find_duplicate_practices()
        assert "same address" in pair.reasons


class TestScale:
    def test_blocks_find_every_planted_duplicate_without_comparing_all_pairs(self):
        planted = generate(providers=1500, practices=600, rate=0.04, seed=11)
        rows = ReferringProvider.objects.values(*duplicates.PROVIDER_FIELDS)
        records = [duplicates.provider_record(row) for row in rows]
        all_pairs = len(records) * (len(records) - 1) // 2
        assert len(duplicates.candidate_pairs(records)) < all_pairs / 20
        assert planted.providers <= pairs_of(find_duplicate_providers(limit=10_000))
        assert planted.practices <= pairs_of(find_duplicate_practices(limit=10_000))


class TestPage:
    def test_the_page_lists_a_planted_pair_with_its_reasons(self, client_as):
        full = provider("Adaeze", "Okafor", npi=NPI_A, **at_the_office())
        typed = provider("Adaeze", "Okafr", phone="614.555.0100")
        client = client_as("coordinator")
        page = client.get("/directory/duplicates/").content.decode()
        assert 'hx-get="/directory/duplicates/?pairs=provider" hx-trigger="load"' in page
        page = client.get("/directory/duplicates/?pairs=provider", HTTP_HX_REQUEST="true").content.decode()
        assert "Adaeze Okafor" in page and "Adaeze Okafr" in page
        assert "same phone" in page
        assert f'href="/directory/duplicates/provider/{full.pk}/{typed.pk}/"' in page

    def test_a_liaison_sees_the_list_but_no_merge_links(self, client_as):
        provider("Adaeze", "Okafor", npi=NPI_A, **at_the_office())
        provider("Adaeze", "Okafr", phone="614.555.0100")
        response = client_as("liaison").get("/directory/duplicates/?pairs=provider")
        assert response.status_code == 200
        page = response.content.decode()
        assert "Adaeze Okafr" in page
        assert "/directory/duplicates/provider/" not in page

    def test_the_practice_list_says_when_there_is_nothing_to_merge(self, client_as):
        page = client_as("manager").get("/directory/duplicates/?pairs=practice").content.decode()
        assert "No probable duplicate referring practices." in page

    def test_the_page_lists_recent_merges_with_a_reverse_button(self, client_as, users):
        keep = provider("Adaeze", "Okafor", npi=NPI_A, **at_the_office())
        merge = provider_merge(keep=keep, remove=provider("Adaeze", "Okafr"), by=users["manager"])
        page = client_as("manager").get("/directory/duplicates/").content.decode()
        assert f'id="merge-{merge.pk}"' in page
        assert f'action="/directory/merges/{merge.pk}/reverse/"' in page

    def test_a_former_employee_is_sent_to_the_login_page(self, client_as):
        response = client_as("outsider").get("/directory/duplicates/")
        assert response.status_code == 302 and response["Location"].startswith("/login/")
