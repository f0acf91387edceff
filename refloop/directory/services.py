"""Writes to the directory. Pages, the API, importers and the demo all come through here.

A person's edit marks the fields they changed as theirs (`manual_fields`), so a later NPPES import, which
owns only the registry's facts (names, credentials, taxonomies, practice-location address, deactivation),
never overwrites what staff corrected by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from refloop.directory.models import (
    DirectoryEntry,
    OtherSource,
    PracticeLocation,
    ProviderPractice,
    ReferringPractice,
    ReferringProvider,
    Source,
    StaffContact,
)

# The fields the NPPES import (file or API) keeps up to date, unless a person has edited them.
PROVIDER_IMPORTED_FIELDS = (
    "first_name",
    "middle_name",
    "last_name",
    "name_prefix",
    "name_suffix",
    "credentials",
    "taxonomy_code",
    "specialty",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "phone",
    "fax",
    "deactivated_on",
    "is_active",
)
PRACTICE_IMPORTED_FIELDS = ("name", "phone", "fax", "deactivated_on", "is_active")


class StaleEdit(Exception):
    """Someone else saved this record after the form was opened; saving would overwrite their change."""


def digits(text: str) -> str:
    return re.sub(r"\D", "", text or "")


def provider_search_text(provider: ReferringProvider) -> str:
    parts = [
        provider.first_name,
        provider.last_name,
        provider.npi,
        provider.credentials,
        provider.specialty,
        provider.city,
        provider.postal_code,
        digits(provider.phone),
        digits(provider.fax),
    ]
    return " ".join(p for p in parts if p).lower()[:400]


def practice_search_text(practice: ReferringPractice, locations: Iterable[PracticeLocation] = ()) -> str:
    parts = [practice.name, practice.npi, digits(practice.phone), digits(practice.fax)]
    for location in locations:
        parts += [location.city, location.postal_code, digits(location.phone), digits(location.fax)]
    return " ".join(p for p in parts if p).lower()[:400]


def _refresh_search_text(entry: DirectoryEntry) -> None:
    if isinstance(entry, ReferringProvider):
        entry.search_text = provider_search_text(entry)
    else:
        locations = entry.locations.all() if entry.pk else []
        entry.search_text = practice_search_text(entry, locations)


def _validate(entry, exclude: Iterable[str] = ()) -> None:
    entry.full_clean(exclude=list(exclude), validate_constraints=True)


def provider_create(*, source: str = Source.MANUAL, **fields: Any) -> ReferringProvider:
    provider = ReferringProvider(source=source, **fields)
    _validate(provider)
    _refresh_search_text(provider)
    provider.save()
    return provider


def practice_create(*, source: str = Source.MANUAL, location: dict | None = None, **fields: Any) -> ReferringPractice:
    """A referring practice, with its first (primary) location when one is given."""
    with transaction.atomic():
        practice = ReferringPractice(source=source, **fields)
        _validate(practice)
        practice.save()
        if location:
            location_save(
                location=PracticeLocation(practice=practice, is_primary=True, **location),
                by_person=source == Source.MANUAL,
            )
        _refresh_search_text(practice)
        practice.save(update_fields=["search_text"])
    return practice


def _entry_update(entry, *, changes: dict[str, Any], expected_version: int | None, by_person: bool, imported):
    model = type(entry)
    with transaction.atomic():
        current = model.objects.select_for_update().get(pk=entry.pk)
        if expected_version is not None and current.version != expected_version:
            raise StaleEdit(f"{current} was changed by someone else after you opened it.")
        changed = [name for name, value in changes.items() if getattr(current, name) != value]
        if not changed:
            return current
        for name in changed:
            setattr(current, name, changes[name])
        _validate(current)
        if by_person:
            current.manual_fields = sorted(set(current.manual_fields) | (set(changed) & set(imported)))
        current.version += 1
        _refresh_search_text(current)
        current.save()
    return current


def provider_update(
    *, provider: ReferringProvider, changes: dict[str, Any], expected_version: int | None = None
) -> ReferringProvider:
    """A person's edit of a provider; the imported fields they change become theirs."""
    return _entry_update(
        provider,
        changes=changes,
        expected_version=expected_version,
        by_person=True,
        imported=PROVIDER_IMPORTED_FIELDS,
    )


def practice_update(
    *, practice: ReferringPractice, changes: dict[str, Any], expected_version: int | None = None
) -> ReferringPractice:
    return _entry_update(
        practice,
        changes=changes,
        expected_version=expected_version,
        by_person=True,
        imported=PRACTICE_IMPORTED_FIELDS,
    )


def location_save(*, location: PracticeLocation, by_person: bool = True) -> PracticeLocation:
    """Add or change a practice location; at most one location of a practice is primary.

    A person's save marks the practice's locations as theirs ("location" in manual_fields), so the NPPES
    import keeps the primary location as staff left it.
    """
    with transaction.atomic():
        _validate(location)
        practice = location.practice
        if location.is_primary or not practice.locations.exclude(pk=location.pk).exists():
            location.is_primary = True
            practice.locations.exclude(pk=location.pk).update(is_primary=False)
        location.save()
        practice.search_text = practice_search_text(practice, practice.locations.all())
        fields = ["search_text"]
        if by_person and "location" not in practice.manual_fields:
            practice.manual_fields = sorted([*practice.manual_fields, "location"])
            fields.append("manual_fields")
        practice.save(update_fields=fields)
    return location


def affiliation_set(
    *,
    provider: ReferringProvider,
    practice: ReferringPractice,
    location: PracticeLocation | None = None,
    days: Iterable[str] = (),
    is_primary: bool = False,
) -> ProviderPractice:
    """Record that a provider works at a practice (at a location, on some weekdays)."""
    if location is not None and location.practice_id != practice.pk:
        raise ValidationError({"location": "That location belongs to another practice."})
    with transaction.atomic():
        affiliation, _ = ProviderPractice.objects.update_or_create(
            provider=provider,
            practice=practice,
            location=location,
            defaults={"days": sorted(set(days), key=_weekday_order), "is_primary": is_primary},
        )
        if is_primary:
            provider.affiliations.exclude(pk=affiliation.pk).update(is_primary=False)
        if provider.territory_id is None and practice.territory_id is not None:
            provider.territory_id = practice.territory_id
            provider.liaison_id = provider.liaison_id or practice.liaison_id
            provider.save(update_fields=["territory", "liaison"])
    return affiliation


def _weekday_order(day: str) -> int:
    order = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    if day not in order:
        raise ValidationError({"days": f"{day!r} is not a weekday (use mon, tue, ... sun)."})
    return order.index(day)


def staff_contact_save(*, contact: StaffContact) -> StaffContact:
    _validate(contact)
    contact.save()
    return contact


def other_source_save(*, source: OtherSource) -> OtherSource:
    _validate(source)
    source.save()
    return source
