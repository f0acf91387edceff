"""Merging duplicate providers and practices, and reversing the merge exactly."""

from __future__ import annotations

import pytest
from django.db import models

from refloop.accounts.models import AuditEvent
from refloop.directory import merge as merging
from refloop.directory import services
from refloop.directory.merge import MergeRefused, merge_reverse, practice_merge, provider_merge
from refloop.directory.models import (
    Merge,
    PracticeLocation,
    ProviderPractice,
    ProviderTaxonomy,
    ReferringPractice,
    ReferringProvider,
    StaffContact,
)
from refloop.lib.npi import make_npi

pytestmark = pytest.mark.django_db

NPI_A = make_npi("123456789")
NPI_B = make_npi("198765432")
ORG_NPI = make_npi("212345678")


def provider(last_name: str = "Okafor", **fields) -> ReferringProvider:
    return services.provider_create(last_name=last_name, **{"first_name": "Adaeze", **fields})


def practice(name: str, *, postal_code: str = "43215", **fields) -> ReferringPractice:
    location = {"address_line1": f"{len(name)} High St", "city": "Columbus", "state": "OH"}
    return services.practice_create(name=name, location={**location, "postal_code": postal_code}, **fields)


def taxonomy(of: ReferringProvider, code: str, **fields) -> ProviderTaxonomy:
    return ProviderTaxonomy.objects.create(provider=of, code=code, **fields)


def staff(at: ReferringPractice, first_name: str) -> StaffContact:
    return services.staff_contact_save(contact=StaffContact(practice=at, first_name=first_name))


def reverse_relations(model: type[models.Model]) -> list[tuple[type[models.Model], str]]:
    """Every relation pointing at `model`, found through _meta here (not through merge.relations), so a
    relation a later app adds shows up in this test whether or not the merge moves it."""
    found = [
        (rel.related_model, rel.field.name) for rel in model._meta.related_objects if not rel.many_to_many
    ]
    hidden = [
        (rel.related_model, rel.field.name)
        for rel in model._meta.get_fields(include_hidden=True)
        if rel.auto_created and not rel.concrete and not rel.many_to_many and rel.hidden
    ]
    return found + [(m, name) for m, name in hidden if not (m is model and name == "merged_into")]


def related_rows(entry) -> dict[str, set[int]]:
    """{relation: ids of the rows pointing at `entry`} for every relation of its model."""
    return {
        f"{related._meta.label}.{name}": set(
            related._base_manager.filter(**{name: entry}).values_list("pk", flat=True)
        )
        for related, name in reverse_relations(type(entry))
    }


def fresh(entry):
    return type(entry)._base_manager.get(pk=entry.pk)


def _referral(**link) -> None:
    """A referral built by the referrals app's own builder, then pointed at the record under test."""
    from tests.referrals.factories import referral

    row = referral()
    type(row).objects.filter(pk=row.pk).update(**link)


# How to plant one row of a relation that another app owns. A relation missing from both this table and the
# fixtures makes test_every_related_row_moves_and_comes_back fail, naming it.
def _letter(provider) -> None:
    from refloop.letters import services as letters_services

    letters_services.letter_create(kind="free", provider=provider, text="A note for the office.")


def _status_link(practice) -> None:
    from refloop.letters import services as letters_services

    letters_services.status_link_create(practice=practice, by=None)


def _source_alert(entry) -> None:
    import datetime as dt

    from refloop.insights.models import AlertKind, SourceAlert

    key = "provider" if isinstance(entry, ReferringProvider) else "practice"
    day = dt.date(2026, 10, 1)
    SourceAlert.objects.create(
        kind=AlertKind.SLIPPING, since=day, as_of=day, usual_per_month=8.0, recent_per_month=2.0, drop=-0.75,
        confidence=0.95, **{key: entry},
    )  # fmt: skip


def _other_apps_planters() -> dict:
    from tests.outreach.factories import MERGE_PLANTERS

    return {
        "referrals.Referral.referring_provider": lambda entry: _referral(referring_provider=entry),
        "referrals.Referral.referring_practice": lambda entry: _referral(referring_practice=entry),
        "letters.Letter.provider": _letter,
        "letters.StatusLink.practice": _status_link,
        "insights.SourceAlert.provider": _source_alert,
        "insights.SourceAlert.practice": _source_alert,
        **MERGE_PLANTERS,
    }


PLANTERS = _other_apps_planters()


def plant_other_apps_rows(*entries) -> list:
    for entry in entries:
        for related, name in reverse_relations(type(entry)):
            if planter := PLANTERS.get(f"{related._meta.label}.{name}"):
                planter(entry)
    return [fresh(entry) for entry in entries]


@pytest.fixture
def provider_pair():
    """Two records of one provider, each with rows in every relation that points at providers."""
    keep = provider(npi=NPI_A, phone="614-555-0100")
    remove = provider(last_name="Okafr", fax="614-555-0199")
    north, south = practice("North Clinic"), practice("South Clinic")
    services.affiliation_set(provider=keep, practice=north, is_primary=True)
    services.affiliation_set(provider=remove, practice=south, location=south.locations.get(), is_primary=True)
    taxonomy(keep, "207Q00000X", is_primary=True)
    taxonomy(remove, "208D00000X", is_primary=True)
    return plant_other_apps_rows(keep, remove)


@pytest.fixture
def practice_pair():
    """Two records of one office, each with locations, staff, affiliations and the other apps' rows."""
    keep = practice("Riverside Family Medicine", npi=ORG_NPI, phone="614-555-0200")
    remove = practice("Riverside Family Med", postal_code="43214", fax="614-555-0299")
    staff(keep, "Dana")
    staff(remove, "Lee")
    services.affiliation_set(provider=provider(npi=NPI_A), practice=keep)
    services.affiliation_set(
        provider=provider("Reyes", npi=NPI_B), practice=remove, location=remove.locations.get()
    )
    return plant_other_apps_rows(keep, remove)


class TestEveryRelatedRowMoves:
    @pytest.mark.parametrize("pair", ["provider_pair", "practice_pair"])
    def test_every_related_row_moves_and_comes_back(self, pair, request, users):
        keep, remove = request.getfixturevalue(pair)
        kept_before, removed_before = related_rows(keep), related_rows(remove)
        empty = sorted(name for name, ids in removed_before.items() if not ids)
        assert empty == [], f"plant a row of {empty} on the removed record in this test's fixture"

        service = provider_merge if isinstance(keep, ReferringProvider) else practice_merge
        merge = service(keep=keep, remove=remove, by=users["manager"])

        assert related_rows(remove) == {name: set() for name in removed_before}
        # Each row of the duplicate either moved to the kept record or, where the kept record already had the same
        # row (a unique constraint), was kept aside in the merge record to come back on reversal.
        deleted = {(row["model"], row["pk"]) for row in merge.changes["deleted"]}
        after = related_rows(keep)
        for name, ids in removed_before.items():
            label = name.rsplit(".", 1)[0].lower()
            set_aside = {pk for pk in ids if (label, pk) in deleted}
            assert after[name] == kept_before[name] | (ids - set_aside), name
        moved_or_set_aside = len(merge.changes["moved"]) + len(deleted)
        assert moved_or_set_aside == sum(len(ids) for ids in removed_before.values())

        merge_reverse(merge=merge, by=users["manager"])

        assert related_rows(keep) == kept_before
        assert related_rows(remove) == removed_before

    def test_the_merge_finds_the_same_relations_as_this_test(self):
        for model in (ReferringProvider, ReferringPractice):
            found = {(fk.model, fk.name) for fk in merging.relations(model)}
            assert found == set(reverse_relations(model))


class TestProviderMerge:
    def test_the_removed_record_stays_merged_and_inactive(self, provider_pair, users):
        keep, remove = provider_pair
        provider_merge(keep=keep, remove=remove, by=users["coordinator"])
        remove = fresh(remove)
        assert remove.merged_into_id == keep.pk
        assert remove.is_active is False
        current = set(ReferringProvider.objects.current())
        assert keep in current and remove not in current

    def test_the_kept_record_version_goes_up_on_merge_and_on_reversal(self, provider_pair, users):
        keep, remove = provider_pair
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        assert fresh(keep).version == keep.version + 1
        merge_reverse(merge=merge, by=users["manager"])
        assert fresh(keep).version == keep.version + 2

    def test_it_fills_the_npi_from_the_duplicate_and_gives_it_back(self, users):
        keep = provider(phone="614-555-0100")
        remove = provider(npi=NPI_A, email="okafor@example.org", specialty="Family Medicine")
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        keep, remove = fresh(keep), fresh(remove)
        assert (keep.npi, keep.email, keep.specialty) == (NPI_A, "okafor@example.org", "Family Medicine")
        assert keep.phone == "614-555-0100"
        assert remove.npi == ""
        assert merge.changes["filled"] == {"npi": "", "email": "", "specialty": ""}
        assert NPI_A in keep.search_text

        merge_reverse(merge=merge, by=users["manager"])
        keep, remove = fresh(keep), fresh(remove)
        assert (keep.npi, keep.email, keep.specialty) == ("", "", "")
        assert remove.npi == NPI_A
        assert remove.merged_into_id is None and remove.is_active

    def test_an_address_is_filled_only_as_a_whole(self, users):
        keep = provider(city="Dublin", state="OH")
        remove = provider(address_line1="1 High St", city="Columbus", state="OH", postal_code="43215")
        provider_merge(keep=keep, remove=remove, by=users["manager"])
        keep = fresh(keep)
        assert (keep.address_line1, keep.city, keep.postal_code) == ("", "Dublin", "")

    def test_a_field_edited_after_the_merge_keeps_its_new_value_on_reversal(self, users):
        keep, remove = provider(), provider(phone="614-555-0100", email="a@example.org")
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        services.provider_update(provider=fresh(keep), changes={"phone": "614-555-0111"})
        merge = merge_reverse(merge=merge, by=users["manager"])
        keep = fresh(keep)
        assert keep.phone == "614-555-0111"
        assert keep.email == ""
        assert merge.changes["reversal"]["not_restored"] == ["phone"]

    def test_a_hand_edited_field_stays_hand_edited_on_the_kept_record(self, users):
        keep = provider()
        remove = provider()
        services.provider_update(provider=remove, changes={"phone": "614-555-0100"})
        provider_merge(keep=keep, remove=remove, by=users["manager"])
        assert "phone" in fresh(keep).manual_fields

    def test_reversal_takes_back_only_the_hand_edit_marks_the_merge_added(self, users):
        keep, remove = provider(), provider()
        services.provider_update(provider=remove, changes={"phone": "614-555-0100"})
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        services.provider_update(provider=fresh(keep), changes={"specialty": "Pediatrics"})
        merge = merge_reverse(merge=merge, by=users["manager"])
        keep = fresh(keep)
        assert keep.manual_fields == ["specialty"]
        assert keep.phone == ""
        assert merge.changes["reversal"]["not_restored"] == []

    def test_the_later_last_referral_date_is_kept_and_given_back(self, users):
        import datetime as dt

        keep = provider(last_referral_on=dt.date(2026, 1, 5))
        remove = provider(last_referral_on=dt.date(2026, 9, 1))
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        assert fresh(keep).last_referral_on == dt.date(2026, 9, 1)
        merge_reverse(merge=merge, by=users["manager"])
        assert fresh(keep).last_referral_on == dt.date(2026, 1, 5)

    def test_an_inactive_duplicate_is_inactive_again_after_reversal(self, users):
        keep, remove = provider(), provider(is_active=False)
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        merge_reverse(merge=merge, by=users["manager"])
        assert fresh(remove).is_active is False


class TestUniqueConflicts:
    def test_a_taxonomy_both_hold_keeps_the_survivors_row_and_reversal_recreates_the_other(self, users):
        keep, remove = provider(npi=NPI_A), provider()
        mine = taxonomy(keep, "207Q00000X", license_number="OH-1")
        theirs = taxonomy(remove, "207Q00000X", license_number="OH-2", license_state="OH")
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        assert list(ProviderTaxonomy.objects.filter(code="207Q00000X").values_list("pk", flat=True)) == [
            mine.pk
        ]
        assert [row["pk"] for row in merge.changes["deleted"]] == [theirs.pk]

        merge_reverse(merge=merge, by=users["manager"])
        back = ProviderTaxonomy.objects.get(pk=theirs.pk)
        assert (back.provider_id, back.license_number, back.license_state) == (remove.pk, "OH-2", "OH")
        assert ProviderTaxonomy.objects.get(pk=mine.pk).provider_id == keep.pk

    def test_an_affiliation_with_the_same_practice_and_location_is_not_doubled(self, users):
        keep, remove, office = provider(), provider(), practice("North Clinic")
        where = office.locations.get()
        mine = services.affiliation_set(provider=keep, practice=office, location=where, days=["mon"])
        theirs = services.affiliation_set(provider=remove, practice=office, location=where, days=["tue"])
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        assert list(ProviderPractice.objects.values_list("pk", flat=True)) == [mine.pk]
        merge_reverse(merge=merge, by=users["manager"])
        back = ProviderPractice.objects.get(pk=theirs.pk)
        assert (back.provider_id, back.days) == (remove.pk, ["tue"])

    def test_two_affiliations_with_no_location_are_the_same_affiliation(self, users):
        keep, remove, office = provider(), provider(), practice("North Clinic")
        services.affiliation_set(provider=keep, practice=office)
        services.affiliation_set(provider=remove, practice=office)
        provider_merge(keep=keep, remove=remove, by=users["manager"])
        assert ProviderPractice.objects.filter(provider=keep, practice=office).count() == 1

    def test_a_provider_at_both_practices_keeps_one_affiliation(self, users):
        keep, remove = practice("North Clinic"), practice("North Clinic Inc")
        doctor = provider()
        services.affiliation_set(provider=doctor, practice=keep)
        services.affiliation_set(provider=doctor, practice=remove)
        merge = practice_merge(keep=keep, remove=remove, by=users["manager"])
        assert ProviderPractice.objects.filter(provider=doctor).count() == 1
        merge_reverse(merge=merge, by=users["manager"])
        assert set(ProviderPractice.objects.values_list("practice_id", flat=True)) == {keep.pk, remove.pk}

    def test_the_kept_practice_keeps_one_primary_location(self, practice_pair, users):
        keep, remove = practice_pair
        theirs = remove.locations.get()
        merge = practice_merge(keep=keep, remove=remove, by=users["manager"])
        assert keep.locations.filter(is_primary=True).count() == 1
        assert keep.locations.get(is_primary=True).pk != theirs.pk
        merge_reverse(merge=merge, by=users["manager"])
        assert PracticeLocation.objects.get(pk=theirs.pk).is_primary


class TestRefusals:
    def test_a_record_is_not_merged_into_itself(self, users):
        one = provider()
        with pytest.raises(MergeRefused, match="itself"):
            provider_merge(keep=one, remove=one, by=users["manager"])

    def test_a_provider_is_not_merged_into_a_practice(self, users):
        with pytest.raises(MergeRefused, match="provider can only be merged with another provider"):
            provider_merge(keep=practice("North Clinic"), remove=provider(), by=users["manager"])
        with pytest.raises(MergeRefused, match="practice"):
            practice_merge(keep=practice("North Clinic"), remove=provider(), by=users["manager"])

    def test_nothing_is_merged_into_a_merged_record(self, users):
        a, b, c = provider(), provider(), provider()
        provider_merge(keep=a, remove=b, by=users["manager"])
        with pytest.raises(MergeRefused, match="itself merged"):
            provider_merge(keep=b, remove=c, by=users["manager"])
        with pytest.raises(MergeRefused, match="already merged"):
            provider_merge(keep=c, remove=b, by=users["manager"])
        assert Merge.objects.count() == 1

    def test_a_merge_is_reversed_once(self, provider_pair, users):
        merge = provider_merge(keep=provider_pair[0], remove=provider_pair[1], by=users["manager"])
        merge_reverse(merge=merge, by=users["manager"])
        with pytest.raises(MergeRefused, match="already reversed"):
            merge_reverse(merge=merge, by=users["manager"])

    def test_reversal_waits_until_the_kept_record_is_unmerged_itself(self, provider_pair, users):
        keep, remove = provider_pair
        third = provider("Okafor-Bello")
        current = ReferringProvider.objects.current().count()
        first = provider_merge(keep=keep, remove=remove, by=users["manager"])
        second = provider_merge(keep=third, remove=keep, by=users["manager"])
        with pytest.raises(MergeRefused, match="merged into .* after this merge: reverse that one first"):
            merge_reverse(merge=first, by=users["manager"])
        merge_reverse(merge=second, by=users["manager"])
        merge_reverse(merge=first, by=users["manager"])
        assert ReferringProvider.objects.current().count() == current

    def test_a_failure_midway_leaves_nothing_changed(self, provider_pair, users, monkeypatch):
        keep, remove = provider_pair
        before = related_rows(keep), related_rows(remove)

        def broken(**kwargs):
            raise RuntimeError("audit store unavailable")

        monkeypatch.setattr(merging, "audit_record", broken)
        with pytest.raises(RuntimeError):
            provider_merge(keep=keep, remove=remove, by=users["manager"])
        assert (related_rows(keep), related_rows(remove)) == before
        assert fresh(remove).merged_into_id is None
        assert not Merge.objects.exists()


class TestAudit:
    def test_merge_and_reversal_are_each_one_audit_event_on_the_kept_record(self, provider_pair, users):
        keep, remove = provider_pair
        rows = sum(len(ids) for ids in related_rows(remove).values())
        merge = provider_merge(keep=keep, remove=remove, by=users["manager"])
        merge_reverse(merge=merge, by=users["admin"])
        events = AuditEvent.objects.filter(action__startswith="directory.").order_by("pk")
        assert [(e.action, e.actor, e.target_id) for e in events] == [
            ("directory.merge", users["manager"], str(keep.pk)),
            ("directory.merge_reverse", users["admin"], str(keep.pk)),
        ]
        assert events[0].detail["removed_id"] == remove.pk
        assert events[0].detail["moved"] + events[0].detail["deleted"] == rows


class TestPages:
    def url(self, keep, remove) -> str:
        kind = "provider" if isinstance(keep, ReferringProvider) else "practice"
        return f"/directory/duplicates/{kind}/{keep.pk}/{remove.pk}/"

    def test_the_merge_page_shows_both_records_side_by_side(self, provider_pair, client_as):
        keep, remove = provider_pair
        page = client_as("coordinator").get(self.url(keep, remove)).content.decode()
        assert "Adaeze Okafor" in page and "Adaeze Okafr" in page
        assert NPI_A in page
        assert f'name="keep" value="{remove.pk}"' in page

    def test_a_manager_merges_and_the_rows_move_with_one_audit_event(self, practice_pair, client_as):
        keep, remove = practice_pair
        removed_staff = set(remove.staff.values_list("pk", flat=True))
        response = client_as("manager").post(self.url(keep, remove), {"keep": keep.pk}, follow=True)
        assert response.status_code == 200
        assert fresh(remove).merged_into_id == keep.pk
        assert removed_staff <= set(keep.staff.values_list("pk", flat=True))
        merges = AuditEvent.objects.filter(action__startswith="directory.merge")
        assert list(merges.values_list("action", "target_id")) == [("directory.merge", str(keep.pk))]
        page = response.content.decode()
        assert "Merged Riverside Family Med into Riverside Family Medicine." in page
        merge = Merge.objects.get()
        assert f'action="/directory/merges/{merge.pk}/reverse/"' in page
        assert "Reverse this merge" in page
        assert "filled in from the duplicate: NPI" not in page  # the kept one had its own

    def test_the_user_may_keep_the_second_record(self, provider_pair, client_as):
        keep, remove = provider_pair
        client_as("manager").post(self.url(keep, remove), {"keep": remove.pk})
        assert fresh(keep).merged_into_id == remove.pk

    def test_a_liaison_may_not_merge_and_nothing_changes(self, provider_pair, client_as):
        keep, remove = provider_pair
        before = related_rows(keep), related_rows(remove)
        client = client_as("liaison")
        assert client.get(self.url(keep, remove)).status_code == 403
        assert client.post(self.url(keep, remove), {"keep": keep.pk}).status_code == 403
        assert (related_rows(keep), related_rows(remove)) == before
        assert fresh(remove).merged_into_id is None
        assert not Merge.objects.exists()
        assert not AuditEvent.objects.filter(action__startswith="directory.merge").exists()

    def test_a_refused_merge_says_why(self, provider_pair, client_as):
        keep, remove = provider_pair
        client = client_as("manager")
        client.post(self.url(keep, remove), {"keep": keep.pk})
        response = client.post(self.url(keep, remove), {"keep": keep.pk}, follow=True)
        assert "already merged" in response.content.decode()
        assert Merge.objects.count() == 1

    def test_reverse_restores_the_duplicate(self, provider_pair, client_as, users):
        keep, remove = provider_pair
        client = client_as("manager")
        before = related_rows(remove)
        client.post(self.url(keep, remove), {"keep": keep.pk})
        merge = Merge.objects.get()
        response = client.post(f"/directory/merges/{merge.pk}/reverse/", follow=True)
        assert "is its own record again" in response.content.decode()
        assert fresh(remove).merged_into_id is None
        assert related_rows(remove) == before
        merge.refresh_from_db()
        assert merge.reversed_by == users["manager"] and merge.reversed_at is not None

    def test_a_second_reverse_is_refused_with_a_message(self, provider_pair, client_as, users):
        merge = provider_merge(keep=provider_pair[0], remove=provider_pair[1], by=users["manager"])
        client = client_as("coordinator")
        client.post(f"/directory/merges/{merge.pk}/reverse/")
        response = client.post(f"/directory/merges/{merge.pk}/reverse/", follow=True)
        assert "already reversed" in response.content.decode()

    def test_a_liaison_may_not_reverse(self, provider_pair, client_as, users):
        merge = provider_merge(keep=provider_pair[0], remove=provider_pair[1], by=users["manager"])
        assert client_as("liaison").post(f"/directory/merges/{merge.pk}/reverse/").status_code == 403
        assert fresh(provider_pair[1]).merged_into_id == provider_pair[0].pk
